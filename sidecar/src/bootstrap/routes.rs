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

fn route(b: &Backend) -> Value {
    json!({
        "match": picked_by_filter(&b.name),
        "route": {
            "cluster": b.cluster_name(),
            "timeout": duration_ms(b.timeout_ms),
            "idle_timeout": duration_ms(b.idle_timeout_ms)
        }
    })
}
