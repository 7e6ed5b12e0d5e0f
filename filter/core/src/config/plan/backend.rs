//! A backend as compiled (`[backends.NAME]`): where it is, what it speaks, how it is reached and
//! what it is sent as credentials.

use super::Credential;
use crate::config::url::BaseUrl;
use crate::config::BackendKind;

/// A backend, checked: one Envoy cluster. Durations in milliseconds, 0 = none.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Its name in `[backends]`: letters, digits, `_`, `.` and `-`, never shown to clients.
    pub name: String,
    /// The protocol it speaks.
    pub kind: BackendKind,
    pub url: BaseUrl,
    pub credential: Credential,
    /// The environment variable the key comes from, when it does (Envoy must expose it to the VM).
    pub key_env: Option<String>,
    /// `api_key_optional`: Envoy may start while `key_env` is unset; the backend is then keyless.
    pub key_optional: bool,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// Longest cool-down a 429 from the backend can start, in ms (0: none).
    pub max_cooldown_ms: u64,
    /// At most so many requests per sliding window, across Envoy's workers.
    pub rate_limit: Option<crate::limits::RateLimit>,
    /// (path, interval in ms) of Envoy's active health check, when configured.
    pub health_check: Option<(String, u64)>,
    /// A `kind = "anthropic"` backend's version and translation options (defaults applied).
    pub anthropic: Option<Anthropic>,
}

/// The Messages API version this router speaks to Anthropic backends, unless configured.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// How chat requests reach an Anthropic backend (`[backends.NAME.anthropic]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anthropic {
    /// The `anthropic-version` header's value.
    pub version: String,
    /// `max_tokens` when the client gave none.
    pub default_max_tokens: u32,
    /// Parameters the Messages API lacks are dropped (true) or refused with a 400 (false).
    pub drop_unsupported: bool,
}

impl Backend {
    /// The Envoy cluster serving this backend.
    pub fn cluster_name(&self) -> String {
        crate::contract::backend_cluster(&self.name)
    }

    /// The backend's key comes from an environment variable that was unset or empty (allowed
    /// only with `api_key_optional`): it is sent nothing until a reload finds the key.
    pub fn is_keyless(&self) -> bool {
        self.key_optional && self.key_env.is_some() && self.credential == super::Credential::None
    }
}
