//! `[grpc_api]` as written: where Envoy serves the gRPC client API (`airouter.v1.Router`, with
//! its HTTP/JSON routes), the sidecar replicas that serve it behind Envoy, and the OpenAI
//! listener those replicas send each call to.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawGrpcApi {
    /// Address Envoy's gRPC listener binds (default `0.0.0.0`).
    #[serde(default = "default_address")]
    pub address: String,
    /// Port of Envoy's gRPC listener (default 50051): gRPC over HTTP/2 (cleartext), and the
    /// same calls as HTTP/JSON (`POST /v1/route`, `POST /v1/route:stream`) over HTTP/1.1 or 2.
    #[serde(default = "default_port")]
    #[cfg_attr(feature = "schema", schemars(with = "u16"))]
    pub port: Spanned<u16>,
    /// Serve gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), so tools such as
    /// grpcurl and Postman find the service without its `.proto` (default true).
    #[serde(default = "default_reflection")]
    pub reflection: bool,
    /// The sidecar replicas serving the API, each the `host:port` of its gRPC port; Envoy
    /// spreads calls over them round robin, skipping those whose health check fails (default:
    /// the one sidecar of `[sidecar]`, at its `address` and `grpc_port`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub sidecars: Option<Spanned<Vec<Spanned<String>>>>,
    /// Envoy's OpenAI listener as the sidecars reach it, `http://host:port` (default: `[listener]`'s
    /// address and port, `0.0.0.0` and `::` taken as loopback). Every call goes through it, so
    /// keys, limits, failover and renaming apply as to any OpenAI client.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub openai_url: Option<Spanned<String>>,
}

fn default_address() -> String {
    "0.0.0.0".into()
}

/// The gRPC listener's port when the file names none (the port gRPC's examples use).
pub const DEFAULT_GRPC_API_PORT: u16 = 50051;

fn default_port() -> Spanned<u16> {
    Spanned::new(0..0, DEFAULT_GRPC_API_PORT)
}

fn default_reflection() -> bool {
    true
}
