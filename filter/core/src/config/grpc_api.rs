//! `[grpc_api]` checked: its port is none of Envoy's other ports, each sidecar replica is a
//! `host:port` named once, and the OpenAI listener the replicas call is a plain-HTTP URL without
//! a path (by default `[listener]`'s own address, a wildcard taken as loopback); the result is
//! the plan's [`GrpcApi`].

use super::error::{ConfigError, Locator};
use super::raw::RawGrpcApi;
use super::url::{self, BaseUrl};
use super::{Admin, Endpoint, GrpcApi, Listener, Sidecar};

/// Checks `[grpc_api]` against the listener, admin and sidecar it sits beside, pushing what is
/// wrong to `errs`; the plan's gRPC API when its values hold. `sidecar` is the plan's sidecar
/// (always there when `[grpc_api]` is: the sidecar serves the API).
pub(super) fn compile_grpc_api(
    loc: &Locator,
    raw: &RawGrpcApi,
    listener: &Listener,
    admin: &Admin,
    sidecar: Option<&Sidecar>,
    errs: &mut Vec<ConfigError>,
) -> Option<GrpcApi> {
    let before = errs.len();
    let port = *raw.port.get_ref();
    for (taken, by) in [
        (listener.port, "[listener]'s port"),
        (admin.port, "[admin]'s port"),
    ] {
        if port == taken {
            errs.push(loc.error(
                raw.port.span(),
                "grpc_api.port",
                format!("{port} is already {by}; choose another"),
            ));
        }
    }
    let sidecars = match (&raw.sidecars, sidecar) {
        (Some(list), _) => sidecar_list(loc, list, errs),
        (None, Some(s)) => vec![Endpoint {
            host: s.address.clone(),
            port: s.grpc_port,
        }],
        (None, None) => Vec::new(),
    };
    let openai = match &raw.openai_url {
        Some(written) => match openai_url(written.get_ref()) {
            Ok(u) => Some(u),
            Err(why) => {
                errs.push(loc.error(written.span(), "grpc_api.openai_url", why));
                None
            }
        },
        None => url::parse(&listener_url(listener)).ok(),
    };
    let openai = openai.filter(|_| errs.len() == before)?;
    Some(GrpcApi {
        address: raw.address.clone(),
        port,
        reflection: raw.reflection,
        sidecars,
        openai,
    })
}

/// `[listener]` as a URL the sidecar can connect to: a wildcard address is taken as loopback.
fn listener_url(listener: &Listener) -> String {
    let host = match listener.address.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "[::1]",
        other => other,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{}", listener.port)
    } else {
        format!("http://{host}:{}", listener.port)
    }
}

/// The OpenAI listener's URL: `http://host[:port]`, nothing more.
fn openai_url(text: &str) -> Result<BaseUrl, String> {
    let parsed = url::parse(text)?;
    if parsed.tls || parsed.grpc {
        return Err(
            "must start with http://: the sidecar speaks plain HTTP to Envoy's listener".into(),
        );
    }
    if !parsed.path_prefix.is_empty() {
        return Err("must have no path: the API's paths (/v1/...) are added to it".into());
    }
    Ok(parsed)
}

/// The written replicas: a non-empty list of distinct `host:port`s.
fn sidecar_list(
    loc: &Locator,
    list: &toml::Spanned<Vec<toml::Spanned<String>>>,
    errs: &mut Vec<ConfigError>,
) -> Vec<Endpoint> {
    if list.get_ref().is_empty() {
        errs.push(loc.error(
            list.span(),
            "grpc_api.sidecars",
            "must name at least one sidecar (or leave the key out for the one of [sidecar])",
        ));
    }
    let mut out: Vec<Endpoint> = Vec::new();
    for item in list.get_ref() {
        match endpoint(item.get_ref()) {
            Ok(e) if out.contains(&e) => errs.push(loc.error(
                item.span(),
                "grpc_api.sidecars",
                format!("`{}` is named twice", item.get_ref()),
            )),
            Ok(e) => out.push(e),
            Err(why) => errs.push(loc.error(
                item.span(),
                "grpc_api.sidecars",
                format!("`{}` {why}", item.get_ref()),
            )),
        }
    }
    out
}

/// `host:port` (`[v6]:port` for IPv6), the port written out.
pub(super) fn endpoint(text: &str) -> Result<Endpoint, String> {
    let has_port = text.rsplit_once(':').is_some_and(|(host, p)| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (!host.contains(':') || host.ends_with(']'))
    });
    if !has_port {
        return Err("must be host:port (the sidecar's grpc_port)".into());
    }
    let parsed = url::parse(&format!("http://{text}"))?;
    if !parsed.path_prefix.is_empty() {
        return Err("must be host:port, without a path".into());
    }
    Ok(Endpoint {
        host: parsed.host,
        port: parsed.port,
    })
}

#[cfg(test)]
mod tests;
