//! Counter names: every counter the filter keeps is an Envoy stat (`define_metric`), named so
//! that `stats_config.stats_tags` turns the trailing `.backend.X`, `.model.X` and `.key.X` into
//! tags (`/stats/prometheus` shows `airouter_backend_requests{backend="X"}`). Names come only from
//! the configuration (a pattern model counts under its pattern), so cardinality is bounded.

use crate::config::Plan;

pub const BACKEND_REQUESTS: &str = "airouter_backend_requests";
pub const BACKEND_ERRORS: &str = "airouter_backend_errors";
pub const BACKEND_RATE_LIMITED: &str = "airouter_backend_rate_limited";
pub const MODEL_REQUESTS: &str = "airouter_model_requests";
pub const KEY_REQUESTS: &str = "airouter_key_requests";
/// Tokens (the backends' `usage.total_tokens`) per client key and per model.
pub const KEY_TOKENS: &str = "airouter_key_tokens";
pub const MODEL_TOKENS: &str = "airouter_model_tokens";
/// Requests refused for a missing or wrong key (no key name to tag them with).
pub const KEY_DENIED: &str = "airouter_key_denied";

/// Keeps a tag value within one stat-name segment.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn backend(counter: &str, backend: &str) -> String {
    format!("{counter}.backend.{}", clean(backend))
}

pub fn model(counter: &str, model: &str) -> String {
    format!("{counter}.model.{}", clean(model))
}

pub fn key(counter: &str, key_name: &str) -> String {
    format!("{counter}.key.{}", clean(key_name))
}

/// Every counter the plan can bump, to define them all when the filter starts.
pub fn all(plan: &Plan) -> Vec<String> {
    let mut names = vec![KEY_DENIED.to_string()];
    for b in &plan.backends {
        for c in [BACKEND_REQUESTS, BACKEND_ERRORS, BACKEND_RATE_LIMITED] {
            names.push(backend(c, &b.name));
        }
    }
    for m in &plan.models {
        for c in [MODEL_REQUESTS, MODEL_TOKENS] {
            let name = model(c, &m.name);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for k in plan.keys.keys() {
        names.push(key(KEY_REQUESTS, &k.name));
        names.push(key(KEY_TOKENS, &k.name));
    }
    names
}

/// The `stats_tags` that turn the name suffixes into tags.
pub const TAGS: [(&str, &str); 3] = [
    ("backend", r"(\.backend\.([^.]+))$"),
    ("model", r"(\.model\.([^.]+))$"),
    ("key", r"(\.key\.([^.]+))$"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_one_clean_tag_segment() {
        assert_eq!(
            backend(BACKEND_REQUESTS, "vllm.local"),
            "airouter_backend_requests.backend.vllm_local"
        );
        assert_eq!(
            model(MODEL_REQUESTS, "gpt-4*"),
            "airouter_model_requests.model.gpt-4_"
        );
        assert_eq!(
            key(KEY_REQUESTS, "team a"),
            "airouter_key_requests.key.team_a"
        );
    }
}
