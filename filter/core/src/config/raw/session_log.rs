//! `[session_log]` as written: one JSON record per request, how much of the conversation it
//! captures, and where the sidecar keeps the records and for how long.

use serde::Deserialize;
use toml::Spanned;

/// How much of a request's conversation its record holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Capture {
    /// Who, what, where, how long and how many tokens; nothing of the conversation.
    None,
    /// Also its shape: the request body's size and number of messages, the response text's size.
    #[default]
    Metadata,
    /// Also its content: the messages sent to the backend and the response text.
    Full,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawSessionLog {
    /// `none`, `metadata` (default) or `full`: how much of the conversation a record holds.
    #[serde(default)]
    pub capture: Capture,
    /// Largest record, in bytes (default 65536, between 4096 and 16777216): a longer one is cut
    /// (earliest messages, then the response text's end) and says so (`"truncated": true`).
    #[serde(default = "default_max_record_bytes")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub max_record_bytes: Spanned<u64>,
    /// Directory the sidecar writes the records to, one JSON file per request (default
    /// `sessions`); a relative path is relative to this file's directory.
    #[serde(default = "default_dir")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub dir: Spanned<String>,
    /// Records older than this many days are deleted (default 7, between 1 and 3650).
    #[serde(default = "default_max_age_days")]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub max_age_days: Spanned<u32>,
    /// At most this many records are kept, the oldest deleted first (default 5000, between 1
    /// and 10000000).
    #[serde(default = "default_max_files")]
    #[cfg_attr(feature = "schema", schemars(with = "u64"))]
    pub max_files: Spanned<u64>,
}

fn default_max_record_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 65_536)
}
fn default_dir() -> Spanned<String> {
    Spanned::new(0..0, "sessions".into())
}
fn default_max_age_days() -> Spanned<u32> {
    Spanned::new(0..0, 7)
}
fn default_max_files() -> Spanned<u64> {
    Spanned::new(0..0, 5000)
}
