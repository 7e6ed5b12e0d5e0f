//! `[backends.NAME]` checked: the name, the base URL and its scheme for the backend's kind, one
//! source of credentials (looked up in the environment when named there), the timeouts and the
//! rate limit. The result is the plan's [`Backend`]s, indexed by name for the models to find.

use std::collections::{BTreeMap, HashMap};

use super::error::{ConfigError, Locator};
use super::raw::{RawBackend, Unsupported};
use super::{url, Anthropic, Backend, BackendKind, Credential, Secret};

/// Checks every backend, pushing what is wrong to `errs` and the environment variables named but
/// unset to `missing_env`. Returns the backends that compiled, in name order, and each one's
/// index by name.
pub(super) fn compile_backends(
    loc: &Locator,
    raw: &BTreeMap<String, RawBackend>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<ConfigError>,
    missing_env: &mut Vec<String>,
) -> (Vec<Backend>, HashMap<String, usize>) {
    let mut backends = Vec::new();
    let mut backend_index = HashMap::new();
    for (name, b) in raw {
        if let Some(backend) = compile_backend(loc, name, b, env, errs, missing_env) {
            backend_index.insert(name.clone(), backends.len());
            backends.push(backend);
        }
    }
    (backends, backend_index)
}

fn valid_backend_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}

/// Whether `name` is a POSIX environment variable name (letters, digits, `_`; no leading digit).
pub(super) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn compile_backend(
    loc: &Locator,
    name: &str,
    b: &RawBackend,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<ConfigError>,
    missing_env: &mut Vec<String>,
) -> Option<Backend> {
    let key = |field: &str| format!("backends.{name}.{field}");
    if !valid_backend_name(name) {
        errs.push(loc.error(
            b.url.span(),
            format!("backends.{name}"),
            "backend names are 1-64 characters of letters, digits, `_`, `.` and `-`, starting with a letter or digit",
        ));
        return None;
    }
    let url = match url::parse(b.url.get_ref()) {
        Ok(u) => u,
        Err(why) => {
            errs.push(loc.error(
                b.url.span(),
                key("url"),
                format!("`{}` {why}", url::redact(b.url.get_ref())),
            ));
            return None;
        }
    };
    let scheme_ok = match b.kind {
        BackendKind::Openai | BackendKind::Anthropic => !url.grpc,
        BackendKind::Triton => url.grpc,
    };
    if !scheme_ok {
        let want = if b.kind == BackendKind::Triton {
            "grpc:// or grpcs://"
        } else {
            "http:// or https://"
        };
        errs.push(loc.error(
            b.url.span(),
            key("url"),
            format!("a `{}` backend's URL starts with {want}", kind_name(b.kind)),
        ));
        return None;
    }
    let pass = b.pass_client_key.as_ref().is_some_and(|p| *p.get_ref());
    if b.kind == BackendKind::Triton && (b.api_key.is_some() || b.api_key_env.is_some() || pass) {
        errs.push(loc.error(
            b.url.span(),
            format!("backends.{name}"),
            "Triton backends take no API key",
        ));
        return None;
    }
    let chosen = [b.api_key.is_some(), b.api_key_env.is_some(), pass];
    if chosen.iter().filter(|c| **c).count() > 1 {
        let span = b
            .api_key_env
            .as_ref()
            .map(|s| s.span())
            .or(b.pass_client_key.as_ref().map(|s| s.span()))
            .unwrap_or(b.url.span());
        errs.push(loc.error(
            span,
            format!("backends.{name}"),
            "choose one of api_key, api_key_env and pass_client_key",
        ));
        return None;
    }
    let mut key_env = None;
    let credential = if let Some(k) = &b.api_key {
        if k.get_ref().is_empty() {
            errs.push(loc.error(k.span(), key("api_key"), "is empty"));
        }
        Credential::Key(Secret(k.get_ref().clone()))
    } else if let Some(var) = &b.api_key_env {
        if !valid_env_name(var.get_ref()) {
            errs.push(loc.error(
                var.span(),
                key("api_key_env"),
                format!("`{}` is not an environment variable name", var.get_ref()),
            ));
            return None;
        }
        key_env = Some(var.get_ref().clone());
        match env(var.get_ref()).filter(|v| !v.is_empty()) {
            Some(v) => Credential::Key(Secret(v)),
            None => {
                if !b.api_key_optional {
                    missing_env.push(var.get_ref().clone());
                }
                Credential::None
            }
        }
    } else if pass {
        Credential::PassThrough
    } else {
        Credential::None
    };
    let anthropic = match (b.kind, &b.anthropic) {
        (BackendKind::Anthropic, raw) => {
            let a = raw
                .as_ref()
                .map(|r| r.get_ref().clone())
                .unwrap_or_default();
            let span = raw.as_ref().map_or(b.url.span(), |r| r.span());
            if a.default_max_tokens == 0 {
                errs.push(loc.error(
                    span.clone(),
                    key("anthropic.default_max_tokens"),
                    "must be above 0",
                ));
            }
            let version_ok = !a.version.is_empty()
                && a.version.len() <= 64
                && a.version.bytes().all(|c| c.is_ascii_graphic());
            if !version_ok {
                errs.push(loc.error(
                    span,
                    key("anthropic.version"),
                    "must be a version such as `2023-06-01`",
                ));
            }
            Some(Anthropic {
                version: a.version,
                default_max_tokens: a.default_max_tokens,
                drop_unsupported: a.unsupported_parameters == Unsupported::Drop,
            })
        }
        (_, Some(raw)) => {
            errs.push(loc.error(
                raw.span(),
                key("anthropic"),
                "only `kind = \"anthropic\"` backends take an `anthropic` table",
            ));
            None
        }
        (_, None) => None,
    };
    if b.connect_timeout_ms == 0 {
        errs.push(loc.error(b.url.span(), key("connect_timeout_ms"), "must be above 0"));
    }
    let rate_limit = b.rate_limit.as_ref().map(|r| {
        let raw = r.get_ref();
        if raw.requests == 0 || raw.window_ms == 0 {
            errs.push(loc.error(
                r.span(),
                key("rate_limit"),
                "requests and window_ms must be above 0",
            ));
        }
        crate::limits::RateLimit {
            requests: raw.requests,
            window_ms: raw.window_ms,
        }
    });
    Some(Backend {
        name: name.to_string(),
        kind: b.kind,
        url,
        credential,
        key_env,
        key_optional: b.api_key_optional,
        connect_timeout_ms: b.connect_timeout_ms,
        timeout_ms: b.timeout_ms,
        idle_timeout_ms: b.idle_timeout_ms,
        max_cooldown_ms: b.max_cooldown_ms,
        rate_limit,
        health_check: b
            .health_check
            .as_ref()
            .map(|h| (h.path.clone(), h.interval_ms.max(100))),
        anthropic,
    })
}

fn kind_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Openai => "openai",
        BackendKind::Triton => "triton",
        BackendKind::Anthropic => "anthropic",
    }
}

#[cfg(test)]
mod tests;
