//! `[sidecar]` as written: where the sidecar listens for Envoy and the secret Envoy sends it.

use serde::Deserialize;
use toml::Spanned;

use super::admin::default_admin_address;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawSidecar {
    /// Address the sidecar listens on, for Envoy only (default `127.0.0.1`).
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// Port the sidecar serves HTTP on: the OpenAI requests of Triton-backed models, and
    /// `/health` (default 8090).
    #[serde(default = "default_sidecar_port")]
    pub port: u16,
    /// Port the sidecar serves gRPC on: every gRPC service Envoy calls (the rate limit service
    /// of `[global_limits]`, the access log service of `[session_log]`, the client API of
    /// `[grpc_api]`) shares it (default 8091,
    /// or `global_limits.port` where an older file sets that).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u16>"))]
    pub grpc_port: Option<Spanned<u16>>,
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
            grpc_port: None,
            secret_env: None,
        }
    }
}

fn default_sidecar_port() -> u16 {
    8090
}

/// The sidecar's gRPC port when the file names none.
pub const DEFAULT_GRPC_PORT: u16 = 8091;
