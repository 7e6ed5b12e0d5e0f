//! `[backends.NAME]` as written: the protocol, the base URL, one source of credentials, the
//! timeouts, the rate limit and the health check, each with its default.

use serde::Deserialize;
use toml::Spanned;

use super::SecretText;

/// The protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BackendKind {
    /// Any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, TEI, OpenAI, Mistral, xAI, ...).
    Openai,
    /// NVIDIA Triton over KServe v2 gRPC, served through the sidecar (`url = "grpc://host:8001"`).
    Triton,
    /// Anthropic's Messages API (`url = "https://api.anthropic.com/v1"`): chat requests are
    /// translated to it and its answers back; the key goes in `x-api-key`.
    Anthropic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawBackend {
    /// What the backend speaks.
    pub kind: BackendKind,
    /// Base URL as an OpenAI SDK would take it: scheme, host, optional port and path prefix,
    /// e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. `https` means TLS with SNI.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub url: Spanned<String>,
    /// The backend's API key, written in the file (prefer `api_key_env`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub api_key: Option<SecretText>,
    /// Name of an environment variable of Envoy's process holding the backend's API key.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub api_key_env: Option<Spanned<String>>,
    /// Start without the key while `api_key_env` is unset or empty: the backend's targets are
    /// then skipped (a router passes over its routes) instead of Envoy refusing to start.
    #[serde(default)]
    pub api_key_optional: bool,
    /// Pass the client's own key through to this backend (only when it has no key of its own).
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub pass_client_key: Option<Spanned<bool>>,
    /// TCP (and TLS) connect timeout in milliseconds (default 5000).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Whole-response timeout in milliseconds, streams included (default 600000; 0 = none).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Longest silence on a response, e.g. between two stream chunks, in milliseconds (default 300000; 0 = none).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Longest cool-down a 429 from this backend can start, in milliseconds, whatever its
    /// `Retry-After` or `x-ratelimit-reset-*` ask (default 3600000, one hour; 0 = 429s start none).
    #[serde(default = "default_max_cooldown")]
    pub max_cooldown_ms: u64,
    /// At most this many requests per sliding window, counted across Envoy's workers; a target at
    /// its limit is skipped.
    #[cfg_attr(feature = "schema", schemars(with = "Option<RawRateLimit>"))]
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    /// Envoy's active health check of the backend: `GET path` every `interval_ms`; a backend that
    /// fails it is skipped by failover.
    pub health_check: Option<RawHealthCheck>,
    /// `kind = "anthropic"` only: the API version sent and how chat requests are translated.
    #[cfg_attr(feature = "schema", schemars(with = "Option<RawAnthropic>"))]
    pub anthropic: Option<Spanned<RawAnthropic>>,
}

/// `[backends.NAME.anthropic]`: how OpenAI chat requests become Messages requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawAnthropic {
    /// The `anthropic-version` header sent (default `2023-06-01`).
    #[serde(default = "default_anthropic_version")]
    pub version: String,
    /// `max_tokens` sent when the client gave neither `max_tokens` nor
    /// `max_completion_tokens` (Anthropic requires one; default 4096).
    #[serde(default = "default_anthropic_max_tokens")]
    pub default_max_tokens: u32,
    /// What happens to OpenAI parameters the Messages API lacks (`n`, `logprobs`, `seed`, ...):
    /// `"refuse"` (a 400 naming the parameter, the default) or `"drop"`.
    #[serde(default)]
    pub unsupported_parameters: Unsupported,
}

/// What happens to a parameter a backend's API lacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Unsupported {
    /// Refused with a 400 naming the parameter.
    #[default]
    Refuse,
    /// Left out of the backend's request.
    Drop,
}

impl Default for RawAnthropic {
    fn default() -> Self {
        RawAnthropic {
            version: default_anthropic_version(),
            default_max_tokens: default_anthropic_max_tokens(),
            unsupported_parameters: Unsupported::Refuse,
        }
    }
}

fn default_anthropic_version() -> String {
    crate::config::DEFAULT_ANTHROPIC_VERSION.to_string()
}

fn default_anthropic_max_tokens() -> u32 {
    4096
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawHealthCheck {
    /// Path to GET, e.g. `/health` (vLLM) or `/v1/models`.
    pub path: String,
    /// Milliseconds between checks (default 10000).
    #[serde(default = "default_health_interval")]
    pub interval_ms: u64,
}

fn default_health_interval() -> u64 {
    10_000
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawRateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, in milliseconds (default 60000).
    #[serde(default = "default_window")]
    pub window_ms: u64,
}

fn default_window() -> u64 {
    60_000
}

fn default_connect_timeout() -> u64 {
    5_000
}
fn default_timeout() -> u64 {
    600_000
}
fn default_idle_timeout() -> u64 {
    300_000
}
fn default_max_cooldown() -> u64 {
    crate::limits::DEFAULT_MAX_COOLDOWN_MS
}
