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

fn default_sidecar_port() -> u16 {
    8090
}
