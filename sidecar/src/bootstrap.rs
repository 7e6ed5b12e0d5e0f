//! Renders a complete Envoy bootstrap from a plan: the listener with the AI Router filter carrying
//! the TOML as its plugin configuration (without secrets: see [`plugin_config`]), its timeouts,
//! connection limit and OpenAI-shaped local replies, routes, one cluster per backend, and for
//! each model with several targets an aggregate cluster that fails over between them, rewritten
//! per attempt by the same module running as its upstream filter. Admin, JSON access log.
//! Operators never write clusters by hand; the output passes `envoy --mode validate`.

use std::net::IpAddr;
use std::path::Path;

use airouter_core::config::{Backend, BackendKind, Model, Plan};
use airouter_core::contract::ROUTE_FILTER_STATE;
use airouter_core::errors::ApiError;
use airouter_core::metrics;
use serde_json::{json, Value};

mod global_limits;
pub mod local_replies;
pub mod plugin_config;

/// Headroom over the body limit for Envoy's per-connection buffers (headers, framing).
const BUFFER_HEADROOM: u64 = 64 * 1024;

/// The endpoint metadata namespace the upstream filter reads the backend's name from.
const METADATA_NAMESPACE: &str = "airouter";

fn duration_ms(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn socket(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// The filter's configuration, shared by the listener filter and the upstream filters.
fn wasm_config(plan: &Plan, toml_text: &str, wasm: &Path, root_id: &str) -> Value {
    let mut env_keys: Vec<&str> = plan
        .backends
        .iter()
        .filter_map(|b| b.key_env.as_deref())
        .collect();
    env_keys.extend(plan.sidecar.as_ref().and_then(|s| s.secret_env.as_deref()));
    env_keys.sort_unstable();
    env_keys.dedup();
    json!({
        "name": plan.source,
        "root_id": root_id,
        "vm_config": {
            "vm_id": "airouter",
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": wasm.display().to_string() } },
            "environment_variables": { "host_env_keys": env_keys }
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": toml_text
        },
        "allow_on_headers_stop_iteration": true,
        "failure_policy": "FAIL_RELOAD"
    })
}

/// What a bootstrap is made of: the listener and the clusters (which reloads replace), and the
/// parts that stay for the life of the process.
pub struct Parts {
    pub listener: Value,
    pub clusters: Vec<Value>,
    admin: Value,
    stats_config: Value,
    overload_manager: Value,
}

/// The client connection limit: Envoy's `global_downstream_max_connections` monitor counts
/// connections across workers and refuses those beyond it as they are accepted. It belongs to the
/// bootstrap, so a change takes effect when Envoy restarts, not on `airouter reload`.
fn overload_manager(max_connections: u64) -> Value {
    json!({ "resource_monitors": [{
        "name": "envoy.resource_monitors.global_downstream_max_connections",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
            "max_active_downstream_connections": max_connections
        }
    }]})
}

/// Everything Envoy needs for `plan`. `toml_text` is the filter's configuration as Envoy will hold
/// it: [`plugin_config::sanitize`]'s text, whose plan `plan` is.
pub fn parts(plan: &Plan, toml_text: &str, wasm: &Path, ca_file: &Path) -> Parts {
    let buffer_limit = plan.listener.max_body_bytes + BUFFER_HEADROOM;
    let mut routes: Vec<Value> = plan.backends.iter().map(route).collect();
    for (i, first) in failovers(plan) {
        routes.push(failover_route(plan, i, first));
    }
    let unrouted = ApiError::unknown_url("ANY", "(not routed by the AI Router filter)");
    routes.push(json!({
        "match": { "prefix": "/" },
        "direct_response": {
            "status": 404,
            "body": { "inline_string": String::from_utf8_lossy(&unrouted.body()) }
        }
    }));

    let mut clusters: Vec<Value> = plan
        .backends
        .iter()
        .map(|b| cluster(plan, b, buffer_limit, ca_file))
        .collect();
    for (i, first) in failovers(plan) {
        clusters.push(failover_cluster(plan, toml_text, wasm, i, first));
    }
    let mut http_filters = vec![json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": wasm_config(plan, toml_text, wasm, "airouter")
        }
    })];
    let virtual_host = json!({ "name": "airouter", "domains": ["*"], "routes": routes });
    let mut first_mappers = Vec::new();
    if let (Some(g), Some(sidecar)) = (&plan.global_limits, &plan.sidecar) {
        http_filters.extend(global_limits::http_filters(g));
        clusters.push(global_limits::cluster(g, sidecar));
        first_mappers.push(global_limits::local_reply_mapper());
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));

    let stats_tags: Vec<Value> = metrics::TAGS
        .iter()
        .map(|(tag, regex)| json!({ "tag_name": tag, "regex": regex }))
        .collect();
    let l = &plan.listener;
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "airouter",
        "codec_type": "AUTO",
        // Envoy is the edge here: clients' own x-envoy-* headers are not trusted.
        "use_remote_address": true,
        "access_log": [access_log()],
        "route_config": { "name": "airouter", "virtual_hosts": [virtual_host] },
        "http_filters": http_filters,
        "local_reply_config": local_replies::config(l.max_body_bytes, first_mappers),
        // 0 turns each off; Envoy's own defaults (5 min, 1 h) are replaced, never inherited.
        "stream_idle_timeout": duration_ms(l.stream_idle_timeout_ms),
        "common_http_protocol_options": { "idle_timeout": duration_ms(l.idle_timeout_ms) }
    });
    if l.request_headers_timeout_ms > 0 {
        hcm["request_headers_timeout"] = json!(duration_ms(l.request_headers_timeout_ms));
    }
    if l.request_timeout_ms > 0 {
        hcm["request_timeout"] = json!(duration_ms(l.request_timeout_ms));
    }
    if l.max_connection_duration_ms > 0 {
        hcm["common_http_protocol_options"]["max_connection_duration"] =
            json!(duration_ms(l.max_connection_duration_ms));
    }
    let listener = json!({
        "name": "airouter",
        "address": socket(&l.address, l.port),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{ "filters": [
            { "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }
        ]}]
    });
    Parts {
        listener,
        clusters,
        // The admin port stays reachable when clients hold every connection the limit allows.
        admin: json!({
            "address": socket(&plan.admin.address, plan.admin.port),
            "ignore_global_conn_limit": true
        }),
        overload_manager: overload_manager(l.max_connections),
        // The filter's counters carry backend, model and key names as tags.
        stats_config: json!({ "stats_tags": stats_tags, "use_all_default_tags": true }),
    }
}

/// A bootstrap with everything static: changes need a restart.
pub fn render(p: Parts) -> Value {
    json!({
        "admin": p.admin,
        "stats_config": p.stats_config,
        "overload_manager": p.overload_manager,
        "static_resources": { "listeners": [p.listener], "clusters": p.clusters }
    })
}

/// The files a dynamic bootstrap watches, named in it.
pub const LDS_FILE: &str = "lds.json";
pub const CDS_FILE: &str = "cds.json";

/// A bootstrap whose listener and clusters come from files in `xds_dir`, which Envoy watches:
/// `airouter reload` rewrites them, and Envoy swaps the filter chain and drains the old one, so
/// in-flight requests and streams finish on the configuration they started with.
pub fn render_dynamic(parts: &Parts, xds_dir: &Path) -> Value {
    let source = |file: &str| {
        json!({
            "path_config_source": {
                "path": xds_dir.join(file).display().to_string(),
                "watched_directory": { "path": xds_dir.display().to_string() }
            },
            "resource_api_version": "V3"
        })
    };
    json!({
        "node": { "id": "airouter", "cluster": "airouter" },
        "admin": parts.admin,
        "stats_config": parts.stats_config,
        "overload_manager": parts.overload_manager,
        "dynamic_resources": { "lds_config": source(LDS_FILE), "cds_config": source(CDS_FILE) }
    })
}

/// The discovery responses Envoy reads from the watched files.
pub fn discovery_files(parts: &Parts, version: &str) -> (Value, Value) {
    let typed = |t: &str, v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("@type".into(), json!(t));
        }
        v
    };
    let lds = json!({
        "version_info": version,
        "resources": [typed("type.googleapis.com/envoy.config.listener.v3.Listener", &parts.listener)]
    });
    let clusters: Vec<Value> = parts
        .clusters
        .iter()
        .map(|c| typed("type.googleapis.com/envoy.config.cluster.v3.Cluster", c))
        .collect();
    let cds = json!({ "version_info": version, "resources": clusters });
    (lds, cds)
}

/// The match of a route the filter picked: filter state only the filter sets, so a request it
/// did not route (whatever its headers) falls through to the catch-all route.
fn picked_by_filter(route: &str) -> Value {
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

/// (model index, first target) of every failover the filter may route to: a model's targets
/// from each position that leaves at least two (the filter skips targets at their limit).
fn failovers(plan: &Plan) -> Vec<(usize, usize)> {
    plan.models
        .iter()
        .enumerate()
        .flat_map(|(i, m)| (0..m.targets().len().saturating_sub(1)).map(move |first| (i, first)))
        .collect()
}

fn failover_cluster_name(index: usize, first: usize) -> String {
    format!("airouter_failover_{index}_{first}")
}

fn failover_backends(plan: &Plan, index: usize, first: usize) -> Vec<&Backend> {
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
fn failover_route(plan: &Plan, index: usize, first: usize) -> Value {
    let backends = failover_backends(plan, index, first);
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
            "cluster": failover_cluster_name(index, first),
            "timeout": duration_ms(total),
            "idle_timeout": duration_ms(idle),
            "retry_policy": retry
        }
    })
}

fn failover_cluster(
    plan: &Plan,
    toml_text: &str,
    wasm: &Path,
    index: usize,
    first: usize,
) -> Value {
    let members: Vec<String> = failover_backends(plan, index, first)
        .into_iter()
        .map(Backend::cluster_name)
        .collect();
    json!({
        "name": failover_cluster_name(index, first),
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
                    {
                        "name": "envoy.filters.http.wasm",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": wasm_config(plan, toml_text, wasm, "airouter-upstream")
                        }
                    },
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" }
                    }
                ]
            }
        }
    })
}

/// One cluster per backend. A Triton backend's cluster points at the sidecar, which speaks gRPC
/// to Triton. The endpoint's metadata names the backend, for the failover upstream filter.
fn cluster(plan: &Plan, b: &Backend, buffer_limit: u64, ca_file: &Path) -> Value {
    let name = b.cluster_name();
    let (host, port, tls) = match (b.kind, &plan.sidecar) {
        (BackendKind::Triton, Some(s)) => (s.address.as_str(), s.port, false),
        _ => (b.url.host.as_str(), b.url.port, b.url.tls),
    };
    let is_ip = host.parse::<IpAddr>().is_ok();
    let mut c = json!({
        "name": name,
        "type": if is_ip { "STATIC" } else { "LOGICAL_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": duration_ms(b.connect_timeout_ms),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{
                "endpoint": { "address": socket(host, port) },
                "metadata": { "filter_metadata": { METADATA_NAMESPACE: { "backend": b.name } } }
            }] }]
        }
    });
    // Passive: a backend answering five 5xx in a row (or unreachable five times) is ejected for
    // 30 s, doubling on repeats; failover then goes straight to the next target. 429s do not count.
    c["outlier_detection"] = json!({
        "consecutive_5xx": 5,
        "consecutive_gateway_failure": 5,
        "base_ejection_time": "30s",
        "max_ejection_percent": 100
    });
    if let Some((path, interval)) = &b.health_check {
        let host_header = if b.kind == BackendKind::Openai {
            b.url.authority.clone()
        } else {
            "airouter-sidecar".into()
        };
        c["health_checks"] = json!([{
            "timeout": duration_ms((*interval).min(b.connect_timeout_ms.max(1000))),
            "interval": duration_ms(*interval),
            "unhealthy_threshold": 2,
            "healthy_threshold": 1,
            "http_health_check": { "path": path, "host": host_header }
        }]);
    }
    if tls {
        c["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": b.url.host,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": { "filename": ca_file.display().to_string() },
                        "match_typed_subject_alt_names": [
                            { "san_type": "DNS", "matcher": { "exact": b.url.host } }
                        ]
                    }
                }
            }
        });
    }
    c
}

fn access_log() -> Value {
    json!({
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": { "json_format": {
                "time": "%START_TIME%",
                "request_id": "%REQ(X-REQUEST-ID)%",
                "method": "%REQ(:METHOD)%",
                "path": "%REQ(:PATH)%",
                "status": "%RESPONSE_CODE%",
                "details": "%RESPONSE_CODE_DETAILS%",
                "flags": "%RESPONSE_FLAGS%",
                // The endpoint's metadata: the backend that answered (for failover, the last
                // attempt's); null when the filter answered itself.
                "backend": "%UPSTREAM_METADATA(airouter:backend)%",
                "upstream": "%UPSTREAM_HOST%",
                "upstream_cluster": "%UPSTREAM_CLUSTER%",
                "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
                "bytes_in": "%BYTES_RECEIVED%",
                "bytes_out": "%BYTES_SENT%",
                "duration_ms": "%DURATION%",
                "upstream_ms": "%RESPONSE_DURATION%"
            }}
        }
    })
}
