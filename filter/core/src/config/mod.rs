//! `airouter.toml` compiled once into an immutable [`Plan`]: every reference resolved, every
//! pattern checked, every secret looked up. Nothing in a plan is "filled in later".
//!
//! [`compile`] parses the text into [`raw`]'s serde shapes (unknown keys refused, spans kept),
//! then checks each section in a file of its own (`listener`, `admin`, `backends`, `models` with
//! `triton`, `keys`, `global_limits`, `session_log`, `discovery`, `sidecar`, `grpc_api`, `tracing`,
//! `routers` with `routes` and `prompts`). What a file refers to outside its text (environment
//! variables, prompt files, time zones) is looked up through [`Sources`]: [`compile`] gives the
//! environment only, as the filter has it; [`compile_with`] gives more, as the sidecar does. Every problem found is reported, not only the
//! first, each as a [`ConfigError`] naming the file, the line and the key; a file with any problem
//! is refused whole. The compiled types live in `plan`, one file per section, re-exported here.
//!
//! The text may also be the configuration's JSON form (what Istio and Envoy Gateway pass from a
//! `google.protobuf.Struct`): [`json`] maps it to the TOML document holding the same values, which
//! compiles as any other; errors then point at lines of that TOML document.

mod admin;
mod backends;
mod discovery;
mod error;
mod global_limits;
mod grpc_api;
pub mod json;
mod json_index;
mod keys;
mod listener;
mod models;
mod plan;
mod prompts;
pub mod raw;
mod routers;
mod routes;
mod secrets;
mod session_log;
mod sidecar;
mod sources;
mod tracing;
mod triton;
pub mod url;

use error::Locator;
pub use error::{ConfigError, ConfigErrors};
pub use plan::{
    Admin, Anthropic, Backend, Capture, Classifier, Credential, Discovery, Enrich, GlobalLimits,
    Listener, Model, ModelTarget, Plan, Route, Router, Secret, SessionLog, Sidecar, Target,
    Telemetry, TemplateSource, Tracing, TritonModel, BUILTIN_TEMPLATES, DEFAULT_ANTHROPIC_VERSION,
    DEFAULT_OWNED_BY,
};
pub use plan::{Endpoint, GrpcApi};
pub use prompts::MAX_PROMPT_BYTES;
use raw::RawConfig;
pub use raw::{BackendKind, StreamText, TritonFamily};
pub use sources::{Sources, NO_FILES};

use crate::metrics::{Names, RouterNames};
use crate::resolve::{Entry, ModelResolver};

/// Parses and checks one configuration text (TOML, or its JSON form: see [`json`]). `file` names it in errors; `env` looks up
/// environment variables (the process's own in the sidecar, WASI's inside Envoy). No file is
/// read and there is no tz database: `*_file` keys are refused and time zones need their
/// rules in `[time_zones]`, as in the configuration `airouter envoy` writes for Envoy.
pub fn compile(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigErrors> {
    compile_with(file, text, &Sources::env_only(env))
}

/// [`compile`] as the filter inside Envoy does it: the same, with plain secrets refused
/// ([`secrets`]: Envoy's `/config_dump` shows the configuration).
pub fn compile_in_envoy(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigErrors> {
    compile_with(file, text, &Sources::in_envoy(env))
}

/// [`compile`], looking up what the file refers to through `sources`.
///
/// The JSON form ([`json`]) compiles as the TOML document it maps to; its errors are reported at
/// the JSON file's own line and column (the key's, or its nearest written ancestor's), and a key
/// written twice in one object is refused, as TOML refuses it.
pub fn compile_with(file: &str, text: &str, sources: &Sources) -> Result<Plan, ConfigErrors> {
    if !json::is_json(text) {
        return compile_toml(file, text, sources);
    }
    let json_loc = Locator { file, text };
    let toml = json::toml_text(text).map_err(|message| {
        let mut error = json_loc.error(0..0, "", message);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            // serde_json counts an error at a line's end as column 0, and may count one line
            // past the text's end: kept within the text.
            let lines = text.split('\n').count();
            (error.line, error.column) = (e.line().clamp(1, lines), e.column().max(1));
        }
        ConfigErrors(vec![error])
    })?;
    let index = json_index::index(text).map_err(|dup| {
        let at = dup.offset..dup.offset;
        ConfigErrors(vec![json_loc.error(at, dup.path, "duplicate key")])
    })?;
    compile_toml(file, &toml, sources).map_err(|ConfigErrors(errors)| {
        let relocated = errors.into_iter().map(|mut e| {
            let at = index.offset_of(&e.key).unwrap_or(0);
            (e.line, e.column) = json_loc.line_col(at);
            e
        });
        ConfigErrors(relocated.collect())
    })
}

/// [`compile_with`] of a TOML document.
fn compile_toml(file: &str, text: &str, sources: &Sources) -> Result<Plan, ConfigErrors> {
    let env = sources.env;
    let loc = Locator { file, text };
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![loc.toml_error(&e)]))?;
    let mut errs = Vec::new();
    let mut missing_env = Vec::new();
    if !sources.plain_secrets {
        secrets::refuse_plain_secrets(&loc, &raw, &mut errs);
    }

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
    let tracing = raw
        .tracing
        .as_ref()
        .and_then(|t| tracing::compile_tracing(&loc, t, &mut errs));
    let discovery = raw
        .discovery
        .as_ref()
        .and_then(|d| discovery::compile_discovery(&loc, d, &models, &backends, &mut errs));
    let needs_sidecar = global_limits.is_some()
        || raw.session_log.is_some()
        || raw.grpc_api.is_some()
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
    let grpc_api = raw.grpc_api.as_ref().and_then(|g| {
        grpc_api::compile_grpc_api(&loc, g, &listener, &admin, sidecar.as_ref(), &mut errs)
    });

    let resolver = ModelResolver::new(models.iter().map(|m| Entry {
        name: &m.name,
        pattern: m.pattern.as_ref(),
        apis: m.apis,
        default: m.default,
    }));
    let routers = routers::compile_routers(
        &loc,
        &raw.routers,
        &routers::Context {
            models: &models,
            backends: &backends,
            resolver: &resolver,
            time_zones: &raw.time_zones,
            sources,
        },
        &mut errs,
    );

    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    let mut metric_names = Names::new(
        &backends.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        &models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        &keys
            .keys()
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
    );
    metric_names.routers = routers
        .iter()
        .map(|r| RouterNames::new(&r.name, &r.labels()))
        .collect();
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
        grpc_api,
        tracing,
        telemetry: raw
            .telemetry
            .as_ref()
            .map_or_else(Telemetry::default, |t| Telemetry {
                metrics: t.metrics,
                access_log: t.access_log,
            }),
        missing_env,
        metric_names,
        routers,
        discovery,
    })
}

#[cfg(test)]
mod form_tests;
#[cfg(test)]
mod tests;
