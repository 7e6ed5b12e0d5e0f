//! `airouter.toml` compiled once into an immutable [`Plan`]: every reference resolved, every
//! pattern checked, every secret looked up. Nothing in a plan is "filled in later".
//!
//! [`compile`] parses the text into [`raw`]'s serde shapes (unknown keys refused, spans kept),
//! then checks each section in a file of its own (`listener`, `admin`, `backends`, `models` with
//! `triton`, `keys`, `global_limits`, `session_log`, `sidecar`). Every problem found is reported, not only the
//! first, each as a [`ConfigError`] naming the file, the line and the key; a file with any problem
//! is refused whole. The compiled types live in `plan`, one file per section, re-exported here.

mod admin;
mod backends;
mod error;
mod global_limits;
mod keys;
mod listener;
mod models;
mod plan;
pub mod raw;
mod session_log;
mod sidecar;
mod triton;
pub mod url;

use error::Locator;
pub use error::{ConfigError, ConfigErrors};
pub use plan::{
    Admin, Backend, Capture, Credential, GlobalLimits, Listener, Model, ModelTarget, Plan, Secret,
    SessionLog, Sidecar, Target, TemplateSource, TritonModel, BUILTIN_TEMPLATES, DEFAULT_OWNED_BY,
};
use raw::RawConfig;
pub use raw::{BackendKind, StreamText, TritonFamily};

use crate::metrics::Names;
use crate::resolve::{Entry, ModelResolver};

/// Parses and checks one configuration text. `file` names it in errors; `env` looks up
/// environment variables (the process's own in the sidecar, WASI's inside Envoy).
pub fn compile(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigErrors> {
    let loc = Locator { file, text };
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![loc.toml_error(&e)]))?;
    let mut errs = Vec::new();
    let mut missing_env = Vec::new();

    // The order of the checks is the order of the errors reported.
    let listener = listener::compile_listener(&loc, &raw.listener, &mut errs);
    let admin = admin::compile_admin(&raw.admin);
    let (backends, backend_index) =
        backends::compile_backends(&loc, &raw.backends, env, &mut errs, &mut missing_env);
    let models = models::compile_models(
        &loc,
        &raw.models,
        &raw.backends,
        &backends,
        &backend_index,
        &mut errs,
    );
    let keys = keys::compile_keys(&loc, "keys", &raw.keys, &mut errs);
    let admin_keys = keys::compile_admin_keys(&loc, &raw.admin_keys, &mut errs);
    let global_limits = raw
        .global_limits
        .as_ref()
        .and_then(|g| global_limits::compile_global_limits(&loc, g, &mut errs));
    let session_log = raw
        .session_log
        .as_ref()
        .and_then(|s| session_log::compile_session_log(&loc, s, &mut errs));
    let needs_sidecar = global_limits.is_some()
        || raw.session_log.is_some()
        || backends.iter().any(|b| b.kind == BackendKind::Triton);
    let sidecar = sidecar::compile_sidecar(
        &loc,
        &raw.sidecar,
        raw.global_limits.as_ref().and_then(|g| g.port.as_ref()),
        needs_sidecar,
        env,
        &mut errs,
        &mut missing_env,
    );

    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    let resolver = ModelResolver::new(models.iter().map(|m| Entry {
        name: &m.name,
        pattern: m.pattern.as_ref(),
        apis: m.apis,
        default: m.default,
    }));
    let metric_names = Names::new(
        &backends.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        &models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        &keys
            .keys()
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
    );
    Ok(Plan {
        source: file.to_string(),
        listener,
        admin,
        backends,
        models,
        resolver,
        keys,
        admin_keys,
        sidecar,
        global_limits,
        session_log,
        missing_env,
        metric_names,
    })
}

#[cfg(test)]
mod tests;
