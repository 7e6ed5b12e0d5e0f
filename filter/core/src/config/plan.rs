//! The compiled configuration: [`Plan`], built once by [`super::compile`] and shared read-only by
//! every request, and the types it holds, one file per section of `airouter.toml`. Nothing in a
//! plan is "filled in later": every reference is resolved and every secret looked up.

mod backend;
mod discovery;
mod global_limits;
mod grpc_api;
mod listener;
mod model;
mod router;
mod secret;
mod session_log;
mod sidecar;
mod target;
mod tracing;
mod triton;

pub use backend::{Anthropic, Backend, DEFAULT_ANTHROPIC_VERSION};
pub use discovery::Discovery;
pub use global_limits::GlobalLimits;
pub use grpc_api::{Endpoint, GrpcApi};
pub use listener::{Admin, Listener};
pub use model::{Model, ModelTarget, DEFAULT_OWNED_BY};
pub use router::{Classifier, Enrich, Route, Router};
pub use secret::{Credential, Secret};
pub use session_log::{Capture, SessionLog};
pub use sidecar::Sidecar;
pub use target::Target;
pub use tracing::{Telemetry, Tracing};
pub use triton::{TemplateSource, TritonModel, BUILTIN_TEMPLATES};

use crate::auth::KeyRing;
use crate::resolve::ModelResolver;

/// The whole configuration, checked and ready; shared read-only by every request.
#[derive(Debug)]
pub struct Plan {
    /// The file the plan was compiled from, as named to [`super::compile`].
    pub source: String,
    pub listener: Listener,
    pub admin: Admin,
    /// Every backend, in name order; [`ModelTarget::backend`] indexes it.
    pub backends: Vec<Backend>,
    /// Every model, in file order.
    pub models: Vec<Model>,
    /// Client model names to models, per API.
    pub resolver: ModelResolver,
    /// Client keys; none means the router is open.
    pub keys: KeyRing,
    /// Keys for the admin endpoints; none means the endpoints are off.
    pub admin_keys: KeyRing,
    /// The sidecar, when any backend is a Triton server or limits are global.
    pub sidecar: Option<Sidecar>,
    /// Limits kept in Redis by the sidecar for several Envoys; `None`: per-Envoy limits.
    pub global_limits: Option<GlobalLimits>,
    /// The per-request session log; `None`: no records are made.
    pub session_log: Option<SessionLog>,
    /// The gRPC client API; `None`: not served.
    pub grpc_api: Option<GrpcApi>,
    /// OpenTelemetry tracing; `None`: nothing is traced.
    pub tracing: Option<Tracing>,
    /// The GenAI measurements (`[telemetry]`); all off by default.
    pub telemetry: Telemetry,
    /// Environment variables named by `api_key_env` that were not set when the plan was built.
    pub missing_env: Vec<String>,
    /// Counter names for every key, model and backend.
    pub metric_names: crate::metrics::Names,
    /// Virtual models served by classifier routing, in file order.
    pub routers: Vec<Router>,
    /// Models discovered from the backends (`[discovery]`); `None`: no backend is asked.
    pub discovery: Option<Discovery>,
}

impl Plan {
    /// Why the filter inside Envoy refuses this plan, if it does: environment variables its
    /// backends' keys name that Envoy's process does not show the filter (`None`: none missing).
    /// Both builds say it in these words.
    pub fn missing_env_error(&self, file: &str) -> Option<String> {
        (!self.missing_env.is_empty()).then(|| {
            format!(
                "{file}: environment variables not visible to the filter: {} (set them in Envoy's environment; the configuration `airouter envoy` renders shows them to the filter)",
                self.missing_env.join(", ")
            )
        })
    }

    /// Whether routed requests are measured for telemetry: their GenAI facts gathered as the
    /// response passes (`[telemetry]` or `[tracing]`).
    pub fn measures_gen_ai(&self) -> bool {
        self.tracing.is_some() || self.telemetry.metrics || self.telemetry.access_log
    }

    /// The router whose virtual model is `name`, serving `api`.
    pub fn router(&self, api: crate::api::Api, name: &str) -> Option<&Router> {
        self.routers
            .iter()
            .find(|r| r.name == name && r.apis.contains(api))
    }
}
