//! The gRPC client API as compiled (`[grpc_api]`): Envoy's listener for it, the sidecar replicas
//! behind that listener, and where those replicas send the OpenAI requests each call becomes.

use crate::config::url::BaseUrl;

/// The gRPC client API (`airouter.v1.Router`): Envoy listens for it and routes it to the sidecar
/// replicas, which turn each call into an OpenAI request to Envoy's OpenAI listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcApi {
    /// Address of Envoy's gRPC listener.
    pub address: String,
    /// Port of Envoy's gRPC listener.
    pub port: u16,
    /// Whether gRPC server reflection is served (and routed by Envoy).
    pub reflection: bool,
    /// The sidecar replicas' gRPC endpoints, at least one, none twice.
    pub sidecars: Vec<Endpoint>,
    /// Envoy's OpenAI listener as the sidecars reach it: plain HTTP, no path prefix.
    pub openai: BaseUrl,
}

/// One sidecar replica's gRPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    /// Its gRPC port.
    pub port: u16,
}
