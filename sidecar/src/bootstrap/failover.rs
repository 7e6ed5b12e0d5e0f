//! Failover for models with several targets: for each target a request may start from, an
//! aggregate cluster over the remaining targets' clusters (one priority each) that runs the filter
//! as its upstream filter, so each attempt is rewritten for its own target, and the route whose
//! retry policy walks those priorities.

use airouter_core::config::{Backend, Model, Plan};
use airouter_core::contract;
use serde_json::{json, Value};

use super::routes::picked_by_filter;
use super::{duration_ms, FilterModule};

/// (model index, first target) of every failover the filter may route to: a model's targets
/// from each position that leaves at least two (the filter skips targets at their limit).
pub(super) fn failovers(plan: &Plan) -> Vec<(usize, usize)> {
    plan.models
        .iter()
        .enumerate()
        .flat_map(|(i, m)| (0..m.targets().len().saturating_sub(1)).map(move |first| (i, first)))
        .collect()
}

fn cluster_name(index: usize, first: usize) -> String {
    contract::failover_cluster(index, first)
}

fn backends(plan: &Plan, index: usize, first: usize) -> Vec<&Backend> {
    plan.models
        .get(index)
        .map(Model::targets)
        .unwrap_or_default()
        .iter()
        .skip(first)
        .filter_map(|t| plan.backends.get(t.backend))
        .collect()
}

/// Retries walk the aggregate cluster's priorities (one target each) on connection failure,
/// reset, timeout, 5xx and 429; never on other 4xx.
pub(super) fn route(plan: &Plan, index: usize, first: usize) -> Value {
    let backends = backends(plan, index, first);
    let first_timeout = backends.first().map_or(0, |b| b.timeout_ms);
    let total: u64 = if backends.iter().any(|b| b.timeout_ms == 0) {
        0
    } else {
        backends.iter().map(|b| b.timeout_ms).sum()
    };
    let idle = backends
        .iter()
        .map(|b| b.idle_timeout_ms)
        .max()
        .unwrap_or(0);
    let mut retry = json!({
        "retry_on": "5xx,reset,connect-failure,refused-stream,retriable-status-codes",
        "retriable_status_codes": [429],
        "num_retries": backends.len().saturating_sub(1),
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1
            }
        },
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" }
        }],
        "host_selection_retry_max_attempts": 3,
        // Envoy's default back-off adds ~25 ms per retry; the next target is another server.
        "retry_back_off": { "base_interval": "0.001s", "max_interval": "0.005s" }
    });
    if first_timeout > 0 {
        retry["per_try_timeout"] = json!(duration_ms(first_timeout));
    }
    json!({
        "match": picked_by_filter(&Model::failover_key(index, first)),
        "route": {
            "cluster": cluster_name(index, first),
            "timeout": duration_ms(total),
            "idle_timeout": duration_ms(idle),
            "retry_policy": retry
        }
    })
}

/// The aggregate cluster of one failover, with the filter as its upstream filter.
pub(super) fn cluster(
    plan: &Plan,
    toml_text: &str,
    filter: FilterModule<'_>,
    index: usize,
    first: usize,
) -> Value {
    let members: Vec<String> = backends(plan, index, first)
        .into_iter()
        .map(Backend::cluster_name)
        .collect();
    json!({
        "name": cluster_name(index, first),
        "connect_timeout": "1s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
                "clusters": members
            }
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http_protocol_options": {} },
                "http_filters": [
                    filter.http_filter(plan, toml_text, contract::UPSTREAM_ROOT_ID),
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" }
                    }
                ]
            }
        }
    })
}
