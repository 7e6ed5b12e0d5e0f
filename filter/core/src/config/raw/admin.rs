//! `[admin]` as written: Envoy's admin interface, on loopback by default.

use serde::Deserialize;

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

/// Loopback: the default address of Envoy's admin interface and of the sidecar.
pub(super) fn default_admin_address() -> String {
    "127.0.0.1".into()
}
fn default_admin_port() -> u16 {
    9901
}
