//! Counter names: every counter the filter keeps is an Envoy stat (`define_metric`), named so
//! that `stats_config.stats_tags` turns the trailing `.backend.X`, `.model.X` and `.key.X` into
//! tags (`/stats/prometheus` shows `airouter_backend_requests{backend="X"}`). Names come only from
//! the configuration (a pattern model counts under its pattern), so cardinality is bounded.

use crate::host::Host;

pub const BACKEND_REQUESTS: &str = "airouter_backend_requests";
pub const BACKEND_ERRORS: &str = "airouter_backend_errors";
pub const BACKEND_RATE_LIMITED: &str = "airouter_backend_rate_limited";
pub const MODEL_REQUESTS: &str = "airouter_model_requests";
pub const KEY_REQUESTS: &str = "airouter_key_requests";
/// Tokens (the backends' `usage.total_tokens`) per client key and per model.
pub const KEY_TOKENS: &str = "airouter_key_tokens";
pub const MODEL_TOKENS: &str = "airouter_model_tokens";
/// Response bodies passed on without renaming, per model: compressed by the backend although
/// the request asked for none, or of a type the filter cannot read (not text, JSON, SSE,
/// audio, image or video). Any of them may carry a backend's names.
pub const MODEL_UNRENAMED: &str = "airouter_model_unrenamed_bodies";
/// Streams ended by the filter because the backend sent an event over
/// [`crate::sse::MAX_EVENT_BYTES`], per model.
pub const MODEL_EVENTS_TOO_LARGE: &str = "airouter_model_stream_events_too_large";
/// Requests refused for a missing or wrong key (no key name to tag them with).
pub const KEY_DENIED: &str = "airouter_key_denied";
/// Responses whose reported usage was above [`crate::limits::MAX_USAGE_TOKENS`] and was
/// counted as that cap.
pub const USAGE_CAPPED: &str = "airouter_usage_capped";
/// Successful responses counted from an estimate because they reported no usage: a chat or
/// completions stream that ended (or sent `[DONE]`) without it, counted from its streamed text
/// (see `sse/usage.rs`), or a budgeted key's response that its client left earlier, charged the
/// request's admission estimate.
pub const USAGE_ESTIMATED: &str = "airouter_usage_estimated";
/// Session records handed to Envoy's access log (`[session_log]`): the sidecar's `written`,
/// `dropped`, `failed` and `lost` (its `/health`) add up to it.
pub const SESSION_RECORDS: &str = "airouter_session_records";

/// Requests a router sent to each of its routes (`.router.R.route.L`).
pub const ROUTER_REQUESTS: &str = "airouter_router_requests";
/// Classifier call-outs per router (`.router.R`), those that gave no label (a failed call or
/// an answer that names no label), their summed latency in milliseconds, and the tokens their
/// replies reported (counted here only: no key pays them).
pub const ROUTER_CLASSIFIER_CALLS: &str = "airouter_router_classifier_calls";
pub const ROUTER_CLASSIFIER_FAILURES: &str = "airouter_router_classifier_failures";
pub const ROUTER_CLASSIFIER_LATENCY_MS: &str = "airouter_router_classifier_latency_ms";
pub const ROUTER_CLASSIFIER_TOKENS: &str = "airouter_router_classifier_tokens";
/// Requests whose wanted route could not serve, served by a fallback or the default.
pub const ROUTER_FALLBACKS: &str = "airouter_router_fallbacks";
/// Enrichment call-outs per router, and those whose answer was not injected.
pub const ROUTER_ENRICH_CALLS: &str = "airouter_router_enrich_calls";
pub const ROUTER_ENRICH_FAILURES: &str = "airouter_router_enrich_failures";

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

/// A router's counter names (`.router.R`, and `.router.R.route.L` per route), formatted once.
#[derive(Debug, Clone, Default)]
pub struct RouterNames {
    /// [`ROUTER_REQUESTS`] per route, in the router's route order.
    pub routes: Vec<String>,
    pub classifier_calls: String,
    pub classifier_failures: String,
    pub classifier_latency_ms: String,
    pub classifier_tokens: String,
    pub fallbacks: String,
    pub enrich_calls: String,
    pub enrich_failures: String,
}

impl RouterNames {
    /// The names for router `router` with route labels `labels` (configured names only, so
    /// cardinality is bounded by the configuration).
    pub fn new(router: &str, labels: &[&str]) -> Self {
        let r = clean(router);
        let one = |counter: &str| format!("{counter}.router.{r}");
        RouterNames {
            routes: labels
                .iter()
                .map(|l| format!("{ROUTER_REQUESTS}.router.{r}.route.{}", clean(l)))
                .collect(),
            classifier_calls: one(ROUTER_CLASSIFIER_CALLS),
            classifier_failures: one(ROUTER_CLASSIFIER_FAILURES),
            classifier_latency_ms: one(ROUTER_CLASSIFIER_LATENCY_MS),
            classifier_tokens: one(ROUTER_CLASSIFIER_TOKENS),
            fallbacks: one(ROUTER_FALLBACKS),
            enrich_calls: one(ROUTER_ENRICH_CALLS),
            enrich_failures: one(ROUTER_ENRICH_FAILURES),
        }
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        self.routes.iter().chain([
            &self.classifier_calls,
            &self.classifier_failures,
            &self.classifier_latency_ms,
            &self.classifier_tokens,
            &self.fallbacks,
            &self.enrich_calls,
            &self.enrich_failures,
        ])
    }
}

/// Every counter name a plan can bump, formatted once when the plan is built rather than on
/// each request. Indexed like the plan's keys, models and backends.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub key_requests: Vec<String>,
    pub key_tokens: Vec<String>,
    pub model_requests: Vec<String>,
    pub model_tokens: Vec<String>,
    pub model_unrenamed: Vec<String>,
    pub model_events_too_large: Vec<String>,
    pub backend_requests: Vec<String>,
    pub backend_errors: Vec<String>,
    pub backend_rate_limited: Vec<String>,
    /// Per router, in the plan's order.
    pub routers: Vec<RouterNames>,
}

impl Names {
    /// The names for the plan's backends, models (configured name or pattern) and keys, each
    /// list in the plan's order.
    pub fn new(backend_names: &[&str], model_names: &[&str], key_names: &[&str]) -> Self {
        let each = |names: &[&str], counter: &str, f: fn(&str, &str) -> String| {
            names.iter().map(|n| f(counter, n)).collect()
        };
        Names {
            key_requests: each(key_names, KEY_REQUESTS, key),
            key_tokens: each(key_names, KEY_TOKENS, key),
            model_requests: each(model_names, MODEL_REQUESTS, model),
            model_tokens: each(model_names, MODEL_TOKENS, model),
            model_unrenamed: each(model_names, MODEL_UNRENAMED, model),
            model_events_too_large: each(model_names, MODEL_EVENTS_TOO_LARGE, model),
            backend_requests: each(backend_names, BACKEND_REQUESTS, backend),
            backend_errors: each(backend_names, BACKEND_ERRORS, backend),
            backend_rate_limited: each(backend_names, BACKEND_RATE_LIMITED, backend),
            routers: Vec::new(),
        }
    }
}

/// The value of the counter at `index` of one of [`Names`]' lists (0 when there is none).
pub fn value_at(host: &dyn Host, names: &[String], index: usize) -> u64 {
    names.get(index).map_or(0, |name| host.counter(name))
}

/// Adds `n` to the counter at `index` of one of [`Names`]' lists.
pub fn add_at(host: &mut dyn Host, names: &[String], index: usize, n: u64) {
    if let Some(name) = names.get(index) {
        host.add(name, n);
    }
}

/// Every counter a plan with these `n`ames can bump, to define them all when the filter starts.
pub fn all(n: &Names) -> Vec<String> {
    let mut names = vec![
        KEY_DENIED.to_string(),
        USAGE_CAPPED.to_string(),
        USAGE_ESTIMATED.to_string(),
        SESSION_RECORDS.to_string(),
    ];
    for list in [
        &n.backend_requests,
        &n.backend_errors,
        &n.backend_rate_limited,
        &n.model_requests,
        &n.model_tokens,
        &n.model_unrenamed,
        &n.model_events_too_large,
        &n.key_requests,
        &n.key_tokens,
    ] {
        for name in list {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    for name in n.routers.iter().flat_map(RouterNames::all) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The `stats_tags` that turn the name suffixes into tags, in the order Envoy applies them
/// (each removes its match, so `.route.L` goes before the `.router.R` it follows).
pub const TAGS: [(&str, &str); 5] = [
    ("backend", r"(\.backend\.([^.]+))$"),
    ("model", r"(\.model\.([^.]+))$"),
    ("key", r"(\.key\.([^.]+))$"),
    ("route", r"(\.route\.([^.]+))$"),
    ("router", r"(\.router\.([^.]+))$"),
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
