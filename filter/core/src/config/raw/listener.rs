//! `[listener]` as written: where Envoy takes client connections, the body limit, the
//! client-side timeouts and the connection cap, each with its default.

use serde::Deserialize;
use toml::Spanned;

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

fn default_listen_address() -> String {
    "0.0.0.0".into()
}
fn default_listen_port() -> u16 {
    8080
}
fn default_max_body() -> Spanned<u64> {
    Spanned::new(0..0, 32 * 1024 * 1024)
}
