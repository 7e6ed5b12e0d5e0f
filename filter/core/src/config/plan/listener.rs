//! Envoy's two endpoints as compiled: the [`Listener`] clients connect to and Envoy's [`Admin`]
//! interface (`[listener]`, `[admin]`).

/// Where and how Envoy takes client connections. Durations in milliseconds, 0 = none.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Address to bind.
    pub address: String,
    /// Port to bind.
    pub port: u16,
    /// Largest request body accepted, in bytes (larger bodies get 413).
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

/// Envoy's admin interface, as `airouter envoy` renders it.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Address to bind (loopback unless the operator says otherwise).
    pub address: String,
    /// Port to bind.
    pub port: u16,
}
