//! `airouter.toml` as written: serde types that refuse unknown keys and keep the spans of the
//! values later checks may need to point at. [`super::compile`] turns them into a [`super::Plan`].

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

use crate::api::Api;

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
}

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
    /// Port the sidecar serves Envoy's rate limit service on, at `sidecar.address` (default 8091).
    #[serde(default = "default_limiter_port")]
    pub port: u16,
    /// Completion tokens reserved for a request that sets no `max_tokens` (default 1024).
    #[serde(default = "default_reserved_completion")]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub default_max_tokens: Spanned<u32>,
}

fn default_limiter_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 200)
}
fn default_limiter_port() -> u16 {
    8091
}
fn default_reserved_completion() -> Spanned<u32> {
    Spanned::new(0..0, 1024)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawSidecar {
    /// Address the sidecar listens on, for Envoy only (default `127.0.0.1`).
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// Port the sidecar listens on (default 8090).
    #[serde(default = "default_sidecar_port")]
    pub port: u16,
    /// Environment variable holding a secret Envoy sends with each request; without it, the
    /// sidecar accepts requests from loopback peers only.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub secret_env: Option<Spanned<String>>,
}

impl Default for RawSidecar {
    fn default() -> Self {
        RawSidecar {
            address: default_admin_address(),
            port: default_sidecar_port(),
            secret_env: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawListener {
    /// Address to bind (default `0.0.0.0`).
    #[serde(default = "default_listen_address")]
    pub address: String,
    /// Port to bind (default 8080).
    #[serde(default = "default_listen_port")]
    pub port: u16,
    /// Largest request body accepted, in bytes (default 32 MiB); larger bodies get 413.
    #[serde(default = "default_max_body")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub max_body_bytes: Spanned<u64>,
    /// Time a client has to send a request's headers once it started them, in milliseconds
    /// (default 10000; 0 = none). A connection that has not finished them by then is closed.
    #[serde(default = "default_request_headers_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub request_headers_timeout_ms: Spanned<u64>,
    /// Time a client has to send a whole request, headers and body, in milliseconds (default
    /// 300000; 0 = none). Expiry answers 408.
    #[serde(default = "default_request_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub request_timeout_ms: Spanned<u64>,
    /// Longest silence on a request before it is routed, in milliseconds (default 300000;
    /// 0 = none); a routed request's backend `idle_timeout_ms` replaces it. Expiry answers 408.
    #[serde(default = "default_stream_idle_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub stream_idle_timeout_ms: Spanned<u64>,
    /// How long a client connection with no request in flight stays open, in milliseconds
    /// (default 60000; 0 = no limit).
    #[serde(default = "default_connection_idle_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub idle_timeout_ms: Spanned<u64>,
    /// Longest life of a client connection, in milliseconds (default 0 = no limit); at the end
    /// it is drained: requests in flight finish, then it closes.
    #[serde(default = "default_max_connection_duration")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub max_connection_duration_ms: Spanned<u64>,
    /// Most client connections open at once, across Envoy's workers (default 10000); further
    /// connections are closed as they arrive.
    #[serde(default = "default_max_connections")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub max_connections: Spanned<u64>,
}

impl Default for RawListener {
    fn default() -> Self {
        RawListener {
            address: default_listen_address(),
            port: default_listen_port(),
            max_body_bytes: default_max_body(),
            request_headers_timeout_ms: default_request_headers_timeout(),
            request_timeout_ms: default_request_timeout(),
            stream_idle_timeout_ms: default_stream_idle_timeout(),
            idle_timeout_ms: default_connection_idle_timeout(),
            max_connection_duration_ms: default_max_connection_duration(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_request_headers_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 10_000)
}
fn default_request_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 300_000)
}
fn default_stream_idle_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 300_000)
}
fn default_connection_idle_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 60_000)
}
fn default_max_connection_duration() -> Spanned<u64> {
    Spanned::new(0..0, 0)
}
fn default_max_connections() -> Spanned<u64> {
    Spanned::new(0..0, 10_000)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawAdmin {
    /// Envoy admin address (default `127.0.0.1`; keep it on loopback).
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// Envoy admin port (default 9901).
    #[serde(default = "default_admin_port")]
    pub port: u16,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            address: default_admin_address(),
            port: default_admin_port(),
        }
    }
}

/// The protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BackendKind {
    /// Any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, TEI, OpenAI, Mistral, xAI, ...).
    Openai,
    /// NVIDIA Triton over KServe v2 gRPC, served through the sidecar (`url = "grpc://host:8001"`).
    Triton,
}

/// How a Triton model is driven (see docs/config.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TritonFamily {
    /// Triton's vLLM backend: no batch dimension, `sampling_parameters` JSON.
    #[serde(rename = "vllm")]
    Vllm,
    /// A TensorRT-LLM `ensemble`: batch dimension, one tensor per parameter.
    #[serde(rename = "trtllm")]
    Trtllm,
    /// TensorRT-LLM's `tensorrt_llm_bls` model: as `trtllm`, possibly cumulative text.
    #[serde(rename = "trtllm-bls")]
    TrtllmBls,
    /// Text in (`BYTES [N,1]`), vectors out (`FP32 [N,D]`).
    #[serde(rename = "embeddings")]
    Embeddings,
}

impl TritonFamily {
    /// The name written in `airouter.toml`.
    pub fn config_name(self) -> &'static str {
        match self {
            TritonFamily::Vllm => "vllm",
            TritonFamily::Trtllm => "trtllm",
            TritonFamily::TrtllmBls => "trtllm-bls",
            TritonFamily::Embeddings => "embeddings",
        }
    }
}

/// Whether streamed text arrives as deltas or as the whole text so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum StreamText {
    Delta,
    Cumulative,
    /// Decided from the first two responses: cumulative only if the second strictly extends the first.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTritonModel {
    /// The model family: `vllm`, `trtllm`, `trtllm-bls` or `embeddings`.
    pub family: TritonFamily,
    /// A built-in chat template: `llama3`, `chatml`, `mistral`, `gemma` or `plain`.
    pub template: Option<String>,
    /// A Hugging Face `chat_template` (Jinja), inline.
    pub chat_template: Option<String>,
    /// A file holding a Hugging Face `chat_template`, relative to this file.
    pub chat_template_file: Option<String>,
    /// `bos_token` for templates.
    pub bos_token: Option<String>,
    /// `eos_token` for templates; also removed from the end of generated text.
    pub eos_token: Option<String>,
    /// `max_tokens` when the client gives none (default 256).
    pub max_tokens: Option<u32>,
    /// Streamed text shape (default `auto`).
    #[serde(default)]
    pub stream_text: StreamText,
    /// Strings removed from the end of generated text (default: the template's end-of-turn marker).
    pub stop_strings: Option<Vec<String>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawModel {
    /// Client-visible name, or a glob pattern (`*` any run, `?` one character) such as `gpt-4*`.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
    /// The OpenAI APIs this model serves.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<Api>"))]
    pub apis: Spanned<Vec<Api>>,
    /// Where requests for this model go (or use `targets`).
    pub target: Option<RawTarget>,
    /// Several targets in priority order: when one fails (connection failure, reset, timeout,
    /// 5xx, 429) or is over its limit, the next serves the request.
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<RawTarget>>"))]
    pub targets: Option<Spanned<Vec<RawTarget>>>,
    /// Serve requests naming an unknown model on each of this model's APIs.
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub default: Option<Spanned<bool>>,
    /// `owned_by` in `/v1/models` (default `airouter`).
    pub owned_by: Option<String>,
    /// How to drive the model when its backend is a Triton server (required then).
    #[cfg_attr(feature = "schema", schemars(with = "Option<RawTritonModel>"))]
    pub triton: Option<Spanned<RawTritonModel>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTarget {
    /// A backend's name from `[backends]`.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub backend: Spanned<String>,
    /// The model's name at the backend (default: the name the client used).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub model: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawKey {
    /// Who holds the key; used in logs and metrics, never the key itself.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
    /// The key in plain text (development only).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub key: Option<SecretText>,
    /// Lower-case hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub sha256: Option<Spanned<String>>,
    /// Model names or patterns this key may use (default: all).
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub models: Option<Vec<Spanned<String>>>,
    /// At most this many requests per minute for this key, across Envoy's workers (client keys).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub requests_per_minute: Option<Spanned<u32>>,
    /// At most this many tokens (the backends' `usage.total_tokens`) per minute for this key.
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub tokens_per_minute: Option<Spanned<u32>>,
}

fn default_listen_address() -> String {
    "0.0.0.0".into()
}
fn default_listen_port() -> u16 {
    8080
}
fn default_max_body() -> Spanned<u64> {
    Spanned::new(0..0, 32 * 1024 * 1024)
}
fn default_admin_address() -> String {
    "127.0.0.1".into()
}
fn default_admin_port() -> u16 {
    9901
}
fn default_sidecar_port() -> u16 {
    8090
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
