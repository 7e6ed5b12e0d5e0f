//! The sidecar as compiled (`[sidecar]`): where Envoy reaches it and the secret it is sent.

use super::Secret;

/// The sidecar, present when any backend is a Triton server, or `[global_limits]`,
/// `[session_log]` or `[grpc_api]` is set.
#[derive(Debug, Clone)]
pub struct Sidecar {
    /// Address the sidecar listens on, for Envoy only.
    pub address: String,
    /// Port the sidecar serves HTTP on (Triton-backed models, `/health`).
    pub port: u16,
    /// Port the sidecar serves every gRPC service on (rate limits, access logs, the gRPC client
    /// API): one server,
    /// so a later service is one more service on it, not one more port.
    pub grpc_port: u16,
    /// Shared secret Envoy sends in
    /// [`SIDECAR_SECRET_HEADER`](crate::contract::SIDECAR_SECRET_HEADER); `None`: loopback
    /// peers only.
    pub secret: Option<Secret>,
    /// The environment variable the secret comes from, when one is named.
    pub secret_env: Option<String>,
}
