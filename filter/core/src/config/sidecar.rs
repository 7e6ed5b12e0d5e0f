//! `[sidecar]` compiled: the sidecar is in the plan when something needs it (a Triton backend or
//! `[global_limits]`), with its shared secret looked up in the environment; `secret_env` must be
//! an environment variable name whether or not the sidecar is needed.

use super::backends::valid_env_name;
use super::error::{ConfigError, Locator};
use super::raw::RawSidecar;
use super::{Secret, Sidecar};

/// The plan's sidecar when `needed`. Pushes what is wrong to `errs` and an unset `secret_env` to
/// `missing_env`.
pub(super) fn compile_sidecar(
    loc: &Locator,
    raw: &RawSidecar,
    needed: bool,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<ConfigError>,
    missing_env: &mut Vec<String>,
) -> Option<Sidecar> {
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
