//! `[[keys]]` and `[[admin_keys]]` as written: who holds a key, the key or its hash, the models
//! it may use and its per-minute limits.

use serde::Deserialize;
use toml::Spanned;

use super::SecretText;

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
