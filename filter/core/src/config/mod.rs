//! `airouter.toml` compiled once into an immutable [`Plan`]: every reference resolved, every
//! pattern checked, every secret looked up. Nothing in a plan is "filled in later".

mod error;
pub mod raw;
pub mod url;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use error::Locator;
pub use error::{ConfigError, ConfigErrors};
pub use raw::{BackendKind, StreamText, TritonFamily};
use raw::{RawBackend, RawConfig, RawKey, RawModel, RawTritonModel};

use crate::api::{Api, ApiSet};
use crate::auth::{ClientKey, KeyRing};
use crate::resolve::{ModelResolver, Pattern};

/// A secret (a backend key): shown as `<redacted>` by `Debug`, so dumps and logs never carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must never be shown.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a backend is sent as credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization` header: the client's is removed.
    None,
    /// `Authorization: Bearer <key>`, replacing the client's.
    Key(Secret),
    /// The client's own key, as `Authorization: Bearer`.
    PassThrough,
}

/// Where and how Envoy takes client connections. Durations in milliseconds, 0 = none.
#[derive(Debug, Clone)]
pub struct Listener {
    pub address: String,
    pub port: u16,
    pub max_body_bytes: u64,
    /// From a request's first header byte to its last.
    pub request_headers_timeout_ms: u64,
    /// From a request's start until it is wholly received.
    pub request_timeout_ms: u64,
    /// Longest silence on a request not yet routed (a route's backend idle timeout replaces it).
    pub stream_idle_timeout_ms: u64,
    /// How long a connection without requests in flight stays open.
    pub idle_timeout_ms: u64,
    /// Longest life of a connection, after which it is drained.
    pub max_connection_duration_ms: u64,
    /// Most client connections open at once, across workers (at least 1).
    pub max_connections: u64,
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub kind: BackendKind,
    pub url: url::BaseUrl,
    pub credential: Credential,
    /// The environment variable the key comes from, when it does (Envoy must expose it to the VM).
    pub key_env: Option<String>,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// Longest cool-down a 429 from the backend can start, in ms (0: none).
    pub max_cooldown_ms: u64,
    pub rate_limit: Option<crate::limits::RateLimit>,
    /// (path, interval in ms) of Envoy's active health check, when configured.
    pub health_check: Option<(String, u64)>,
}

impl Backend {
    /// The Envoy cluster serving this backend.
    pub fn cluster_name(&self) -> String {
        format!("airouter_backend_{}", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    /// The client-visible name, or the pattern's text.
    pub name: String,
    pub pattern: Option<Pattern>,
    pub apis: ApiSet,
    /// Where requests go, in priority order (never empty; more than one means failover).
    pub targets: Vec<ModelTarget>,
    pub default: bool,
    pub owned_by: String,
    /// How to drive the model, when its backend is a Triton server.
    pub triton: Option<TritonModel>,
}

/// One target of a model: a backend and the model's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTarget {
    /// Index into [`Plan::backends`].
    pub backend: usize,
    /// `None` passes the client's name through.
    pub backend_model: Option<String>,
}

impl Model {
    /// Every target in priority order.
    pub fn targets(&self) -> &[ModelTarget] {
        &self.targets
    }

    /// The first target.
    pub fn primary(&self) -> Option<&ModelTarget> {
        self.targets.first()
    }

    /// Whether Envoy fails over between several targets.
    pub fn fails_over(&self) -> bool {
        self.targets.len() > 1
    }

    /// The model's name at a target: the configured one, or the name the client used.
    pub fn name_at<'a>(target: &'a ModelTarget, client_name: &'a str) -> &'a str {
        target.backend_model.as_deref().unwrap_or(client_name)
    }

    /// What a target's state (its cool-down after a 429) is kept under at its backend: the
    /// configured model name there, or, for a target that passes the client's name through, this
    /// model's configured name or pattern. Never the client's text, so the state a client can make
    /// the router keep is bounded by the configuration.
    pub fn state_name_at<'a>(&'a self, target: &'a ModelTarget) -> &'a str {
        target.backend_model.as_deref().unwrap_or(&self.name)
    }

    /// The Envoy route key of a model's failover over its targets from `first` on.
    pub fn failover_key(index: usize, first: usize) -> String {
        format!("@failover-{index}-{first}")
    }
}

/// Where a Triton model's chat template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// No template: legacy completions only.
    None,
    /// One of [`BUILTIN_TEMPLATES`].
    Builtin(String),
    /// A Hugging Face `chat_template`, inline.
    Inline(String),
    /// A file holding one, as written in the config (relative to the config file).
    File(String),
}

/// Built-in chat templates and the end-of-turn strings their models emit.
pub const BUILTIN_TEMPLATES: [(&str, &[&str]); 5] = [
    ("llama3", &["<|eot_id|>", "<|end_of_text|>"]),
    ("chatml", &["<|im_end|>"]),
    ("mistral", &["</s>"]),
    ("gemma", &["<end_of_turn>"]),
    ("plain", &[]),
];

/// A Triton model's settings, checked.
#[derive(Debug, Clone)]
pub struct TritonModel {
    pub family: TritonFamily,
    pub template: TemplateSource,
    pub bos_token: String,
    pub eos_token: String,
    pub max_tokens: u32,
    pub stream_text: StreamText,
    /// Strings removed from the end of generated text.
    pub stop_strings: Vec<String>,
}

/// The sidecar, present when any backend is a Triton server.
#[derive(Debug, Clone)]
pub struct Sidecar {
    pub address: String,
    pub port: u16,
    /// Shared secret Envoy sends in [`SIDECAR_SECRET_HEADER`]; `None`: loopback peers only.
    pub secret: Option<Secret>,
    pub secret_env: Option<String>,
}

/// Limits shared by several Envoy instances (`[global_limits]`).
#[derive(Debug, Clone)]
pub struct GlobalLimits {
    /// The Redis URL; it may carry a password.
    pub redis: Secret,
    /// Requests pass while the limiter is unreachable.
    pub fail_open: bool,
    pub timeout_ms: u64,
    pub port: u16,
    pub default_max_tokens: u32,
}

/// The header carrying the sidecar's shared secret.
pub const SIDECAR_SECRET_HEADER: &str = "x-airouter-sidecar-secret";

/// The whole configuration, checked and ready; shared read-only by every request.
#[derive(Debug)]
pub struct Plan {
    pub source: String,
    pub listener: Listener,
    pub admin: Admin,
    pub backends: Vec<Backend>,
    pub models: Vec<Model>,
    pub resolver: ModelResolver,
    pub keys: KeyRing,
    /// Keys for the admin endpoints; none means the endpoints are off.
    pub admin_keys: KeyRing,
    pub sidecar: Option<Sidecar>,
    /// Limits kept in Redis by the sidecar for several Envoys; `None`: per-Envoy limits.
    pub global_limits: Option<GlobalLimits>,
    /// Environment variables named by `api_key_env` that were not set when the plan was built.
    pub missing_env: Vec<String>,
    /// Counter names for every key, model and backend.
    pub metric_names: crate::metrics::Names,
}

/// Largest body limit: Envoy's buffers count in 32-bit sizes.
const MAX_BODY_LIMIT: u64 = 1 << 30;

/// Longest listener timeout: one day.
const MAX_LISTENER_TIMEOUT_MS: u64 = 86_400_000;

/// Most client connections `listener.max_connections` may allow.
const MAX_CONNECTIONS: u64 = 1_000_000;

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

    let max_body = *raw.listener.max_body_bytes.get_ref();
    if max_body == 0 || max_body > MAX_BODY_LIMIT {
        errs.push(loc.error(
            raw.listener.max_body_bytes.span(),
            "listener.max_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}"),
        ));
    }

    let listener_timeouts = [
        (
            "request_headers_timeout_ms",
            &raw.listener.request_headers_timeout_ms,
        ),
        ("request_timeout_ms", &raw.listener.request_timeout_ms),
        (
            "stream_idle_timeout_ms",
            &raw.listener.stream_idle_timeout_ms,
        ),
        ("idle_timeout_ms", &raw.listener.idle_timeout_ms),
        (
            "max_connection_duration_ms",
            &raw.listener.max_connection_duration_ms,
        ),
    ];
    for (name, value) in listener_timeouts {
        if *value.get_ref() > MAX_LISTENER_TIMEOUT_MS {
            errs.push(loc.error(
                value.span(),
                format!("listener.{name}"),
                format!("must be at most {MAX_LISTENER_TIMEOUT_MS} (one day); 0 means none"),
            ));
        }
    }
    let max_connections = *raw.listener.max_connections.get_ref();
    if max_connections == 0 || max_connections > MAX_CONNECTIONS {
        errs.push(loc.error(
            raw.listener.max_connections.span(),
            "listener.max_connections",
            format!("must be between 1 and {MAX_CONNECTIONS}"),
        ));
    }

    let mut backends = Vec::new();
    let mut backend_index = HashMap::new();
    for (name, b) in &raw.backends {
        if let Some(backend) = compile_backend(&loc, name, b, env, &mut errs, &mut missing_env) {
            backend_index.insert(name.clone(), backends.len());
            backends.push(backend);
        }
    }

    let mut models = Vec::new();
    for (i, m) in raw.models.iter().enumerate() {
        let kinds = |b: usize| backends.get(b).map(|b: &Backend| b.kind);
        if let Some(model) =
            compile_model(&loc, i, m, &raw.backends, &backend_index, &kinds, &mut errs)
        {
            models.push(model);
        }
    }
    check_model_overlaps(&loc, &raw.models, &models, &mut errs);

    let keys = compile_keys(&loc, "keys", &raw.keys, &mut errs);
    let admin_keys = compile_keys(&loc, "admin_keys", &raw.admin_keys, &mut errs);
    for (i, k) in raw.admin_keys.iter().enumerate() {
        if let Some(first) = k.models.as_ref().and_then(|m| m.first()) {
            errs.push(loc.error(
                first.span(),
                format!("admin_keys[{i}].models"),
                "admin keys have no model allow-list",
            ));
        }
    }

    let global_limits = raw
        .global_limits
        .as_ref()
        .and_then(|g| compile_global_limits(&loc, g, &mut errs));
    if let Some(g) = &raw.global_limits {
        if g.port == raw.sidecar.port {
            errs.push(loc.error(
                g.redis.span(),
                "global_limits.port",
                format!("{} is already the sidecar's port; choose another", g.port),
            ));
        }
    }
    let sidecar = (global_limits.is_some()
        || backends.iter().any(|b| b.kind == BackendKind::Triton))
    .then(|| {
        let secret_env = raw.sidecar.secret_env.as_ref().map(|v| v.get_ref().clone());
        let secret = secret_env.as_ref().and_then(|var| {
            let value = env(var).filter(|v| !v.is_empty());
            if value.is_none() {
                missing_env.push(var.clone());
            }
            value.map(Secret)
        });
        Sidecar {
            address: raw.sidecar.address.clone(),
            port: raw.sidecar.port,
            secret,
            secret_env,
        }
    });
    if let Some(var) = &raw.sidecar.secret_env {
        if !valid_env_name(var.get_ref()) {
            errs.push(loc.error(
                var.span(),
                "sidecar.secret_env",
                format!("`{}` is not an environment variable name", var.get_ref()),
            ));
        }
    }

    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    let resolver = ModelResolver::new(&models);
    let metric_names = crate::metrics::Names::new(&backends, &models, keys.keys());
    Ok(Plan {
        source: file.to_string(),
        listener: Listener {
            address: raw.listener.address,
            port: raw.listener.port,
            max_body_bytes: max_body,
            request_headers_timeout_ms: *raw.listener.request_headers_timeout_ms.get_ref(),
            request_timeout_ms: *raw.listener.request_timeout_ms.get_ref(),
            stream_idle_timeout_ms: *raw.listener.stream_idle_timeout_ms.get_ref(),
            idle_timeout_ms: *raw.listener.idle_timeout_ms.get_ref(),
            max_connection_duration_ms: *raw.listener.max_connection_duration_ms.get_ref(),
            max_connections,
        },
        admin: Admin {
            address: raw.admin.address,
            port: raw.admin.port,
        },
        backends,
        models,
        resolver,
        keys,
        admin_keys,
        sidecar,
        global_limits,
        missing_env,
        metric_names,
    })
}

fn compile_global_limits(
    loc: &Locator,
    g: &raw::RawGlobalLimits,
    errs: &mut Vec<ConfigError>,
) -> Option<GlobalLimits> {
    let url = g.redis.get_ref();
    let mut ok = true;
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        errs.push(loc.error(
            g.redis.span(),
            "global_limits.redis",
            "must be a `redis://`, `rediss://` or `unix://` URL",
        ));
        ok = false;
    }
    let timeout_ms = *g.timeout_ms.get_ref();
    if timeout_ms == 0 || timeout_ms > 60_000 {
        errs.push(loc.error(
            g.timeout_ms.span(),
            "global_limits.timeout_ms",
            "must be between 1 and 60000",
        ));
        ok = false;
    }
    let default_max_tokens = *g.default_max_tokens.get_ref();
    if default_max_tokens == 0 {
        errs.push(loc.error(
            g.default_max_tokens.span(),
            "global_limits.default_max_tokens",
            "must be above 0",
        ));
        ok = false;
    }
    ok.then(|| GlobalLimits {
        redis: Secret(url.clone()),
        fail_open: g.failure_mode == raw::FailureMode::Open,
        timeout_ms,
        port: g.port,
        default_max_tokens,
    })
}

fn valid_backend_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}

fn valid_env_name(name: &str) -> bool {
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
        BackendKind::Openai => !url.grpc,
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
                missing_env.push(var.get_ref().clone());
                Credential::None
            }
        }
    } else if pass {
        Credential::PassThrough
    } else {
        Credential::None
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
        connect_timeout_ms: b.connect_timeout_ms,
        timeout_ms: b.timeout_ms,
        idle_timeout_ms: b.idle_timeout_ms,
        max_cooldown_ms: b.max_cooldown_ms,
        rate_limit,
        health_check: b
            .health_check
            .as_ref()
            .map(|h| (h.path.clone(), h.interval_ms.max(100))),
    })
}

fn kind_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Openai => "openai",
        BackendKind::Triton => "triton",
    }
}

fn compile_model(
    loc: &Locator,
    i: usize,
    m: &RawModel,
    raw_backends: &BTreeMap<String, RawBackend>,
    backend_index: &HashMap<String, usize>,
    kinds: &dyn Fn(usize) -> Option<BackendKind>,
    errs: &mut Vec<ConfigError>,
) -> Option<Model> {
    let key = |field: &str| format!("models[{i}].{field}");
    let name = m.name.get_ref();
    let pattern = if Pattern::is_pattern(name) {
        match Pattern::new(name) {
            Ok(p) => Some(p),
            Err(why) => {
                errs.push(loc.error(m.name.span(), key("name"), why));
                return None;
            }
        }
    } else {
        if let Err(why) = check_model_name(name) {
            errs.push(loc.error(m.name.span(), key("name"), why));
            return None;
        }
        None
    };
    if m.apis.get_ref().is_empty() {
        errs.push(loc.error(m.apis.span(), key("apis"), "must list at least one API"));
    }
    let (targets, targets_span, targets_key) = match (&m.target, &m.targets) {
        (Some(t), None) => (vec![t.clone()], t.backend.span(), "target"),
        (None, Some(list)) if !list.get_ref().is_empty() => {
            (list.get_ref().clone(), list.span(), "targets")
        }
        (None, Some(list)) => {
            errs.push(loc.error(list.span(), key("targets"), "must list at least one target"));
            return None;
        }
        _ => {
            errs.push(loc.error(
                m.name.span(),
                key("target"),
                "give exactly one of `target` and `targets`",
            ));
            return None;
        }
    };
    let mut resolved = Vec::new();
    for (j, t) in targets.iter().enumerate() {
        let tkey = if targets_key == "target" {
            key("target")
        } else {
            format!("models[{i}].targets[{j}]")
        };
        let backend_name = t.backend.get_ref();
        let Some(&backend) = backend_index.get(backend_name) else {
            if !raw_backends.contains_key(backend_name) {
                let known: Vec<&str> = raw_backends.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                errs.push(loc.error(
                    t.backend.span(),
                    format!("{tkey}.backend"),
                    format!("no backend named `{backend_name}` (defined: {known})"),
                ));
            }
            return None;
        };
        if resolved.iter().any(|r: &ModelTarget| r.backend == backend) {
            errs.push(loc.error(
                t.backend.span(),
                format!("{tkey}.backend"),
                format!("backend `{backend_name}` is already a target of this model"),
            ));
            return None;
        }
        let backend_model = match &t.model {
            Some(tm) => {
                if let Err(why) = check_model_name(tm.get_ref()) {
                    errs.push(loc.error(tm.span(), format!("{tkey}.model"), why));
                }
                Some(tm.get_ref().clone())
            }
            None => None,
        };
        resolved.push(ModelTarget {
            backend,
            backend_model,
        });
    }
    let targets = resolved;
    let default = m.default.as_ref().is_some_and(|d| *d.get_ref());
    if default && pattern.is_some() {
        if let Some(d) = &m.default {
            errs.push(loc.error(
                d.span(),
                key("default"),
                "a default model needs a concrete name, not a pattern",
            ));
        }
    }
    let apis: ApiSet = m.apis.get_ref().iter().copied().collect();
    let on_triton = targets
        .iter()
        .map(|t| t.backend)
        .any(|b| kinds(b) == Some(BackendKind::Triton));
    let triton = match (on_triton, &m.triton) {
        (true, Some(t)) => compile_triton(loc, i, t.get_ref(), t.span(), apis, errs),
        (true, None) => {
            errs.push(loc.error(
                targets_span.clone(),
                key("triton"),
                "a model on a Triton backend needs a `triton` table (family, template)",
            ));
            None
        }
        (_, Some(t)) => {
            errs.push(loc.error(
                t.span(),
                key("triton"),
                "only models on Triton backends take a `triton` table",
            ));
            None
        }
        (_, None) => None,
    };
    Some(Model {
        name: name.clone(),
        pattern,
        apis,
        targets,
        default,
        owned_by: m.owned_by.clone().unwrap_or_else(|| "airouter".into()),
        triton,
    })
}

fn compile_triton(
    loc: &Locator,
    i: usize,
    t: &RawTritonModel,
    span: std::ops::Range<usize>,
    apis: ApiSet,
    errs: &mut Vec<ConfigError>,
) -> Option<TritonModel> {
    let key = format!("models[{i}].triton");
    let mut fail = |msg: String| errs.push(loc.error(span.clone(), key.clone(), msg));
    let llm_apis: ApiSet = [Api::Chat, Api::Completions].into_iter().collect();
    let fits = match t.family {
        TritonFamily::Embeddings => apis.iter().all(|a| a == Api::Embeddings),
        _ => apis.iter().all(|a| llm_apis.contains(a)),
    };
    if !fits {
        fail(
            "this family serves only `embeddings`; LLM families serve `chat` and `completions`"
                .into(),
        );
        return None;
    }
    let sources = [
        t.template.is_some(),
        t.chat_template.is_some(),
        t.chat_template_file.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        fail("choose one of template, chat_template and chat_template_file".into());
        return None;
    }
    let template = match (&t.template, &t.chat_template, &t.chat_template_file) {
        (Some(name), _, _) => match BUILTIN_TEMPLATES.iter().find(|(n, _)| n == name) {
            Some(_) => TemplateSource::Builtin(name.clone()),
            None => {
                let known: Vec<&str> = BUILTIN_TEMPLATES.iter().map(|(n, _)| *n).collect();
                fail(format!(
                    "unknown template `{name}` (built in: {})",
                    known.join(", ")
                ));
                return None;
            }
        },
        (_, Some(inline), _) => TemplateSource::Inline(inline.clone()),
        (_, _, Some(file)) => TemplateSource::File(file.clone()),
        _ => TemplateSource::None,
    };
    if apis.contains(Api::Chat) && template == TemplateSource::None {
        fail("a chat model needs template, chat_template or chat_template_file".into());
        return None;
    }
    if t.max_tokens == Some(0) {
        fail("max_tokens must be above 0".into());
        return None;
    }
    let eos_token = t.eos_token.clone().unwrap_or_default();
    let stop_strings = match &t.stop_strings {
        Some(list) => list.clone(),
        None => {
            let mut list: Vec<String> = match &template {
                TemplateSource::Builtin(name) => BUILTIN_TEMPLATES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, stops)| stops.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            if !eos_token.is_empty() && !list.contains(&eos_token) {
                list.push(eos_token.clone());
            }
            list
        }
    };
    Some(TritonModel {
        family: t.family,
        template,
        bos_token: t.bos_token.clone().unwrap_or_default(),
        eos_token,
        max_tokens: t.max_tokens.unwrap_or(256),
        stream_text: t.stream_text,
        stop_strings: stop_strings.into_iter().filter(|s| !s.is_empty()).collect(),
    })
}

fn check_model_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err("must be 1-256 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Two models may share a name only for different APIs; one default per API.
fn check_model_overlaps(
    loc: &Locator,
    raw: &[RawModel],
    models: &[Model],
    errs: &mut Vec<ConfigError>,
) {
    // Models that failed to compile are skipped, so map by name back to the raw entry for spans.
    let span_of = |name: &str, nth: usize| -> (usize, std::ops::Range<usize>) {
        raw.iter()
            .enumerate()
            .filter(|(_, r)| r.name.get_ref() == name)
            .nth(nth)
            .map_or((0, 0..0), |(i, r)| (i, r.name.span()))
    };
    let mut seen: HashMap<&str, Vec<ApiSet>> = HashMap::new();
    for m in models {
        let earlier = seen.entry(m.name.as_str()).or_default();
        if earlier.iter().any(|a| a.intersects(m.apis)) {
            let (i, span) = span_of(&m.name, earlier.len());
            errs.push(loc.error(
                span,
                format!("models[{i}].name"),
                format!("`{}` is defined twice for the same API", m.name),
            ));
        }
        earlier.push(m.apis);
    }
    let mut defaults: [Option<&str>; Api::ALL.len()] = [None; Api::ALL.len()];
    for (i, r) in raw.iter().enumerate() {
        let Some(d) = r.default.as_ref().filter(|d| *d.get_ref()) else {
            continue;
        };
        for api in r.apis.get_ref() {
            let slot = &mut defaults[api.index()];
            match slot {
                Some(other) => errs.push(loc.error(
                    d.span(),
                    format!("models[{i}].default"),
                    format!(
                        "API `{}` already has a default model, `{other}`",
                        api.config_name()
                    ),
                )),
                None => *slot = Some(r.name.get_ref()),
            }
        }
    }
}

fn compile_keys(
    loc: &Locator,
    section: &str,
    raw: &[RawKey],
    errs: &mut Vec<ConfigError>,
) -> KeyRing {
    let mut keys = Vec::new();
    let mut names = HashMap::new();
    for (i, k) in raw.iter().enumerate() {
        let key = |field: &str| format!("{section}[{i}].{field}");
        let name = k.name.get_ref();
        if name.is_empty() || name.chars().any(char::is_control) {
            errs.push(loc.error(
                k.name.span(),
                key("name"),
                "must be a non-empty printable name",
            ));
        }
        if names.insert(name.clone(), i).is_some() {
            errs.push(loc.error(
                k.name.span(),
                key("name"),
                format!("`{name}` names two keys"),
            ));
        }
        let hash = match (&k.key, &k.sha256) {
            (Some(plain), None) if !plain.get_ref().is_empty() => KeyRing::hash(plain.get_ref()),
            (Some(plain), None) => {
                errs.push(loc.error(plain.span(), key("key"), "is empty"));
                continue;
            }
            (None, Some(hex)) => match KeyRing::parse_hex(hex.get_ref()) {
                Some(h) => h,
                None => {
                    errs.push(loc.error(
                        hex.span(),
                        key("sha256"),
                        "must be 64 hexadecimal characters",
                    ));
                    continue;
                }
            },
            _ => {
                errs.push(loc.error(
                    k.name.span(),
                    key("key"),
                    "give exactly one of `key` and `sha256`",
                ));
                continue;
            }
        };
        let mut allow = Vec::new();
        for (j, p) in k.models.iter().flatten().enumerate() {
            match Pattern::new(p.get_ref()) {
                Ok(pat) => allow.push(pat),
                Err(why) => {
                    errs.push(loc.error(p.span(), format!("{section}[{i}].models[{j}]"), why))
                }
            }
        }
        if keys.iter().any(|c: &ClientKey| c.hash == hash) {
            errs.push(loc.error(k.name.span(), key("key"), "the same key is given twice"));
        }
        let requests_per_minute = k.requests_per_minute.as_ref().map(|r| {
            if *r.get_ref() == 0 {
                errs.push(loc.error(r.span(), key("requests_per_minute"), "must be above 0"));
            }
            if section != "keys" {
                errs.push(loc.error(
                    r.span(),
                    key("requests_per_minute"),
                    "only client keys are limited",
                ));
            }
            *r.get_ref()
        });
        let tokens_per_minute = k.tokens_per_minute.as_ref().map(|r| {
            if *r.get_ref() == 0 || section != "keys" {
                errs.push(loc.error(
                    r.span(),
                    key("tokens_per_minute"),
                    "must be above 0, on client keys only",
                ));
            }
            *r.get_ref()
        });
        keys.push(ClientKey {
            name: name.clone(),
            hash,
            allow: k.models.as_ref().map(|_| allow),
            requests_per_minute,
            tokens_per_minute,
        });
    }
    KeyRing::new(keys)
}

#[cfg(test)]
mod tests;
