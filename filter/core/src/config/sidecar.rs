//! `[sidecar]` compiled: the sidecar is in the plan when something needs it (a Triton backend,
//! `[global_limits]`, `[session_log]` or `[grpc_api]`), with its shared secret looked up in the
//! environment; `secret_env` must be an environment variable name whether or not the sidecar is
//! needed. Its two ports: HTTP (`port`) and gRPC (`grpc_port`, which an older file names
//! `global_limits.port`); they must differ.

use super::backends::valid_env_name;
use super::error::{ConfigError, Locator};
use super::raw::{RawSidecar, DEFAULT_GRPC_PORT};
use super::{Secret, Sidecar};
use toml::Spanned;

/// The plan's sidecar when `needed`; `limits_port` is `global_limits.port`, when written. Pushes
/// what is wrong to `errs` and an unset `secret_env` to `missing_env`.
pub(super) fn compile_sidecar(
    loc: &Locator,
    raw: &RawSidecar,
    limits_port: Option<&Spanned<u16>>,
    needed: bool,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<ConfigError>,
    missing_env: &mut Vec<String>,
) -> Option<Sidecar> {
    let grpc_port = grpc_port(loc, raw, limits_port, errs);
    let sidecar = needed.then(|| {
        let secret_env = raw.secret_env.as_ref().map(|v| v.get_ref().clone());
        let secret = secret_env.as_ref().and_then(|var| {
            let value = env(var).filter(|v| !v.is_empty());
            if value.is_none() {
                missing_env.push(var.clone());
            }
            value.map(Secret)
        });
        Sidecar {
            address: raw.address.clone(),
            port: raw.port,
            grpc_port,
            secret,
            secret_env,
        }
    });
    if let Some(var) = &raw.secret_env {
        if !valid_env_name(var.get_ref()) {
            errs.push(loc.error(
                var.span(),
                "sidecar.secret_env",
                format!("`{}` is not an environment variable name", var.get_ref()),
            ));
        }
    }
    sidecar
}

/// The gRPC port: `sidecar.grpc_port`, else `global_limits.port`, else the default; the two keys
/// must agree when both are written, and the port must not be the HTTP port.
fn grpc_port(
    loc: &Locator,
    raw: &RawSidecar,
    limits_port: Option<&Spanned<u16>>,
    errs: &mut Vec<ConfigError>,
) -> u16 {
    let (key, written) = match (&raw.grpc_port, limits_port) {
        (Some(g), Some(l)) if g.get_ref() != l.get_ref() => {
            errs.push(loc.error(
                l.span(),
                "global_limits.port",
                format!(
                    "is the sidecar's gRPC port, which sidecar.grpc_port sets to {}: remove this key or make them agree",
                    g.get_ref()
                ),
            ));
            ("sidecar.grpc_port", Some(g))
        }
        (Some(g), _) => ("sidecar.grpc_port", Some(g)),
        (None, Some(l)) => ("global_limits.port", Some(l)),
        (None, None) => ("sidecar.grpc_port", None),
    };
    let port = written.map_or(DEFAULT_GRPC_PORT, |p| *p.get_ref());
    if port == raw.port {
        let span = written.map_or(0..0, Spanned::span);
        errs.push(loc.error(
            span,
            key,
            format!("{port} is already the sidecar's HTTP port (sidecar.port); choose another"),
        ));
    }
    port
}
