//! `[global_limits]` as written: the Redis store and how Envoy asks the sidecar's limiter.

use serde::Deserialize;
use toml::Spanned;

use super::SecretText;

/// What Envoy does with a request when the shared limiter cannot be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FailureMode {
    /// Let the request through (availability over strictness).
    #[default]
    Open,
    /// Refuse it with 503.
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawGlobalLimits {
    /// The shared store, `redis://[:password@]host:port[/db]`; read by the sidecar only.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub redis: SecretText,
    /// `open` (default): requests pass while the limiter is unreachable; `closed`: they get 503.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// How long Envoy waits for the limiter's answer, in milliseconds (default 200).
    #[serde(default = "default_limiter_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub timeout_ms: Spanned<u64>,
    /// The sidecar's gRPC port, as files written before `sidecar.grpc_port` name it: the same
    /// port (when both are set they must agree).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u16>"))]
    pub port: Option<Spanned<u16>>,
    /// Completion tokens reserved for a request that sets no `max_tokens` (default 1024).
    #[serde(default = "default_reserved_completion")]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub default_max_tokens: Spanned<u32>,
}

fn default_limiter_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 200)
}
fn default_reserved_completion() -> Spanned<u32> {
    Spanned::new(0..0, 1024)
}
