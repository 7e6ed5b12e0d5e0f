//! `airouter.toml` as written: serde types that refuse unknown keys and keep the spans of the
//! values later checks may need to point at, one file per section. [`super::compile`] turns them
//! into a [`super::Plan`].

mod admin;
mod backends;
mod discovery;
mod global_limits;
mod grpc_api;
mod keys;
mod listener;
mod models;
mod routers;
mod session_log;
mod sidecar;
mod tracing;
mod triton;

pub use admin::RawAdmin;
pub use backends::{
    BackendKind, RawAnthropic, RawBackend, RawHealthCheck, RawRateLimit, Unsupported,
};
pub use discovery::RawDiscovery;
pub use global_limits::{FailureMode, RawGlobalLimits};
pub use grpc_api::{RawGrpcApi, DEFAULT_GRPC_API_PORT};
pub use keys::RawKey;
pub use listener::RawListener;
pub use models::{RawModel, RawTarget};
pub use routers::{
    RawClassifier, RawEnrich, RawInject, RawMetaRule, RawRoute, RawRouter, RawSystemPromptMode,
    RawTransition,
};
pub use session_log::{Capture, RawSessionLog};
pub use sidecar::{RawSidecar, DEFAULT_GRPC_PORT};
pub use tracing::{RawTelemetry, RawTracing};
pub use triton::{RawTritonModel, StreamText, TritonFamily};

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::Deserialize;
use toml::Spanned;

/// A secret as written in the file (a key, a URL that may carry a password), with its span.
/// `Debug` shows `<redacted>`, so a dump of the raw configuration never carries it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub Spanned<String>);

impl Deref for SecretText {
    type Target = Spanned<String>;
    fn deref(&self) -> &Spanned<String> {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Deserializes one section of the file in a function of its own. Left to the optimizer, every
/// section's deserializer is inlined into one 62 KB function, and v8's peak memory while Envoy
/// compiles the module follows its largest functions (split, the peak fell by about 5 MB).
#[inline(never)]
fn separately<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(title = "airouter.toml", description = "AI Router configuration")
)]
pub struct RawConfig {
    /// Where Envoy listens for OpenAI clients.
    #[serde(default, deserialize_with = "separately")]
    pub listener: RawListener,
    /// Envoy's admin interface (rendered by `airouter envoy`).
    #[serde(default, deserialize_with = "separately")]
    pub admin: RawAdmin,
    /// Backends by name: the servers requests are sent to.
    #[serde(default, deserialize_with = "separately")]
    pub backends: BTreeMap<String, RawBackend>,
    /// Client-visible models, each mapped to a backend target.
    #[serde(default, deserialize_with = "separately")]
    pub models: Vec<RawModel>,
    /// Client keys. When there are none, the router is open.
    #[serde(default, deserialize_with = "separately")]
    pub keys: Vec<RawKey>,
    /// The sidecar that serves Triton backends (used when any backend has `kind = "triton"`).
    #[serde(default, deserialize_with = "separately")]
    pub sidecar: RawSidecar,
    /// Keys for the router's admin endpoints (`/router/*`, `/auth/*`), separate from client keys.
    #[serde(default, deserialize_with = "separately")]
    pub admin_keys: Vec<RawKey>,
    /// Limits shared by several Envoy instances: Envoy's global rate limit filter asks the
    /// sidecar, which keeps the counts in Redis. Without this section limits are per Envoy.
    #[serde(default, deserialize_with = "separately")]
    pub global_limits: Option<RawGlobalLimits>,
    /// Virtual models whose requests a classifier model labels, each label picking a route.
    #[serde(default, deserialize_with = "separately")]
    pub routers: Vec<RawRouter>,
    /// The rules of the time zones routes name, by IANA name: their offset changes from 2020
    /// to 2100. `airouter envoy` writes them into the configuration Envoy holds (the filter has
    /// no time zone database); there is no need to write them by hand.
    #[serde(default, deserialize_with = "separately")]
    pub time_zones: BTreeMap<String, Vec<RawTransition>>,
    /// One JSON record per request (who, which model and backend, usage, timings and, as
    /// `capture` says, the conversation), carried by Envoy's gRPC access log service to the
    /// sidecar, which writes and rotates them. Without this section no record is made.
    #[serde(default, deserialize_with = "separately")]
    pub session_log: Option<RawSessionLog>,
    /// Models discovered from the backends: the filter asks each backend a pattern model passes
    /// the client's name through to for its own models (`GET /v1/models`) on a timer, and
    /// `/v1/models` lists those the pattern serves. Without this section no backend is asked.
    #[serde(default, deserialize_with = "separately")]
    pub discovery: Option<RawDiscovery>,
    /// The gRPC client API (`airouter.v1.Router`): Envoy listens for it and the sidecar serves
    /// it, each call sent through the OpenAI listener. Without this section there is none.
    #[serde(default, deserialize_with = "separately")]
    pub grpc_api: Option<RawGrpcApi>,
    /// OpenTelemetry tracing: Envoy's tracer on the OpenAI listener (its span carrying the
    /// GenAI attributes the filter sets) and the sidecar's own spans, both exported over
    /// OTLP/gRPC. Without this section nothing is traced.
    #[serde(default, deserialize_with = "separately")]
    pub tracing: Option<RawTracing>,
    /// The GenAI measurements of each routed request: histograms in Envoy's stats and fields
    /// in its JSON access log. Without this section neither is taken.
    #[serde(default, deserialize_with = "separately")]
    pub telemetry: Option<RawTelemetry>,
}
