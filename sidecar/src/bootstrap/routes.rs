//! The listener's routes: one per backend and one per failover the filter may pick, each matched
//! on filter state only the filter sets, then a catch-all that answers 404 in OpenAI's envelope.

use airouter_core::config::{Backend, Plan};
use airouter_core::contract::ROUTE_FILTER_STATE;
use airouter_core::errors::ApiError;
use serde_json::{json, Value};

use super::{duration_ms, failover};

/// Every route of the listener's virtual host, in match order.
pub(super) fn routes(plan: &Plan) -> Vec<Value> {
    let mut routes: Vec<Value> = plan.backends.iter().map(route).collect();
    for (i, first) in failover::failovers(plan) {
        routes.push(failover::route(plan, i, first));
    }
    let unrouted = ApiError::unknown_url("ANY", "(not routed by the AI Router filter)");
    routes.push(json!({
        "match": { "prefix": "/" },
        "direct_response": {
            "status": 404,
            "body": { "inline_string": String::from_utf8_lossy(&unrouted.body()) }
        }
    }));
    routes
}

/// The match of a route the filter picked: filter state only the filter sets, so a request it
/// did not route (whatever its headers) falls through to the catch-all route.
pub(super) fn picked_by_filter(route: &str) -> Value {
    json!({
        "prefix": "/",
        "filter_state": [{ "key": ROUTE_FILTER_STATE, "string_match": { "exact": route } }]
    })
}

/// A backend's own route. Its retry policy sends a request once more when the connection it went
/// out on is closed or reset before any byte of the response: a server may close a kept-alive
/// connection just after a response (llama.cpp's server does, after a streamed context overflow),
/// and Envoy may already have sent the next request on it. Envoy's `reset-before-request` does not
/// cover that race (the request was written), so this is `reset`: the backend may have received the
/// first attempt, at most a duplicate generation for APIs that generate and return, as failover
/// already accepts. A response that has started is never retried.
fn route(b: &Backend) -> Value {
    json!({
        "match": picked_by_filter(&b.name),
        "route": {
            "cluster": b.cluster_name(),
            "timeout": duration_ms(b.timeout_ms),
            "idle_timeout": duration_ms(b.idle_timeout_ms),
            "retry_policy": {
                "retry_on": "reset",
                "num_retries": 1,
                // Envoy's default back-off waits ~25 ms; a fresh connection needs none.
                "retry_back_off": { "base_interval": "0.001s", "max_interval": "0.005s" }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_route_retries_once_only_on_a_reset_before_the_response() {
        let toml = "[backends.b]\nkind = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\n\n\
                    [[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"b\" }\n";
        let plan = airouter_core::config::compile("t.toml", toml, &|_| None).unwrap();
        let routes = routes(&plan);
        let policy = &routes[0]["route"]["retry_policy"];
        assert_eq!(policy["retry_on"], "reset");
        assert_eq!(policy["num_retries"], 1);
        assert!(policy.get("retriable_status_codes").is_none());
    }
}
