//! `[discovery]` as written: how often the filter asks the backends behind pattern models for
//! their own models (`GET /v1/models`), how long it waits, and how long a backend that stopped
//! answering keeps its models listed.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawDiscovery {
    /// Milliseconds between two fetches of a backend's model list (default 60000, at least
    /// 1000; each wait is jittered by up to a tenth either way).
    #[serde(default = "default_interval")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub interval_ms: Spanned<u64>,
    /// Deadline of one fetch, in milliseconds (default 5000, between 100 and 60000, and
    /// shorter than `interval_ms`).
    #[serde(default = "default_timeout")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub timeout_ms: Spanned<u64>,
    /// How long after its last successful fetch a backend's models stay listed while fetches
    /// fail, in milliseconds (default 600000; at least twice `interval_ms`).
    #[serde(default = "default_grace")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub grace_ms: Spanned<u64>,
    /// At most this many models are kept per backend, the first the backend lists (default
    /// 1000, between 1 and 10000).
    #[serde(default = "default_max_models")]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub max_models: Spanned<u32>,
}

fn default_interval() -> Spanned<u64> {
    Spanned::new(0..0, 60_000)
}
fn default_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 5_000)
}
fn default_grace() -> Spanned<u64> {
    Spanned::new(0..0, 600_000)
}
fn default_max_models() -> Spanned<u32> {
    Spanned::new(0..0, 1000)
}
