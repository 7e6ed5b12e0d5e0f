//! What the configuration Envoy holds may not carry: Envoy shows its filters' configuration in
//! `/config_dump`, so inside Envoy a backend's `api_key`, a client or admin key's plain `key` and
//! a password in `[global_limits] redis` are refused. `airouter envoy` and `airouter istio`
//! write the same configuration without them (a backend key as `api_key_env`, a client key as
//! its `sha256`, the Redis URL redacted); a configuration written by hand for Istio's
//! `pluginConfig` or Envoy Gateway's `config` must do the same.

use super::error::{ConfigError, Locator};
use super::raw::RawConfig;

/// Pushes an error for each plain secret in `raw`.
pub(super) fn refuse_plain_secrets(loc: &Locator, raw: &RawConfig, errs: &mut Vec<ConfigError>) {
    const DUMPED: &str = "would show in Envoy's /config_dump";
    for (name, b) in &raw.backends {
        if let Some(k) = &b.api_key {
            errs.push(loc.error(
                k.span(),
                format!("backends.{name}.api_key"),
                format!("{DUMPED}: name an environment variable of Envoy's in api_key_env instead (`airouter envoy` does this)"),
            ));
        }
    }
    for (section, keys) in [("keys", &raw.keys), ("admin_keys", &raw.admin_keys)] {
        for (i, k) in keys.iter().enumerate() {
            if let Some(plain) = &k.key {
                errs.push(loc.error(
                    plain.span(),
                    format!("{section}[{i}].key"),
                    format!("{DUMPED}: give its sha256 instead (`airouter envoy` does this)"),
                ));
            }
        }
    }
    if let Some(redis) = raw.global_limits.as_ref().map(|g| &g.redis) {
        if super::url::redact(redis.get_ref()) != redis.get_ref().as_str() {
            errs.push(loc.error(
                redis.span(),
                "global_limits.redis",
                format!("{DUMPED}: the filter needs no password or query here (`airouter envoy` removes them)"),
            ));
        }
    }
}
