//! Renders a complete Envoy bootstrap from a plan: the listener with the AI Router filter carrying
//! the TOML as its plugin configuration, one route and one cluster per backend, admin, JSON access
//! log. Operators never write clusters by hand; the output passes `envoy --mode validate`.

use std::net::IpAddr;
use std::path::Path;

use airouter_core::config::{Backend, BackendKind, Plan, Sidecar};
use airouter_core::errors::ApiError;
use airouter_core::flow::BACKEND_HEADER;
use serde_json::{json, Value};

/// Headroom over the body limit for Envoy's per-connection buffers (headers, framing).
const BUFFER_HEADROOM: u64 = 64 * 1024;

fn duration_ms(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn socket(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

pub fn render(plan: &Plan, toml_text: &str, wasm: &Path, ca_file: &Path) -> Value {
    let buffer_limit = plan.listener.max_body_bytes + BUFFER_HEADROOM;
    let mut env_keys: Vec<&str> = plan
        .backends
        .iter()
        .filter_map(|b| b.key_env.as_deref())
        .collect();
    env_keys.sort_unstable();
    env_keys.dedup();

    let mut routes: Vec<Value> = plan.backends.iter().map(route).collect();
    let unrouted = ApiError::unknown_url("ANY", "(not routed by the AI Router filter)");
    routes.push(json!({
        "match": { "prefix": "/" },
        "direct_response": {
            "status": 404,
            "body": { "inline_string": String::from_utf8_lossy(&unrouted.body()) }
        }
    }));

    let wasm_filter = json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": plan.source,
                "root_id": "airouter",
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
            }
        }
    });

    json!({
        "admin": { "address": socket(&plan.admin.address, plan.admin.port) },
        "static_resources": {
            "listeners": [{
                "name": "airouter",
                "address": socket(&plan.listener.address, plan.listener.port),
                "per_connection_buffer_limit_bytes": buffer_limit,
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "airouter",
                        // Envoy is the edge here: clients' own x-envoy-* headers are not trusted.
                        "use_remote_address": true,
                        "codec_type": "AUTO",
                        "access_log": [access_log()],
                        "route_config": {
                            "name": "airouter",
                            "virtual_hosts": [{ "name": "airouter", "domains": ["*"], "routes": routes }]
                        },
                        "http_filters": [
                            wasm_filter,
                            {
                                "name": "envoy.filters.http.router",
                                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
                            }
                        ]
                    }
                }]}]
            }],
            "clusters": clusters(plan, buffer_limit, ca_file)
        }
    })
}

/// The Envoy cluster of the sidecar, which serves every Triton backend.
pub const SIDECAR_CLUSTER: &str = "airouter_sidecar";

fn route(b: &Backend) -> Value {
    let cluster = match b.kind {
        BackendKind::Openai => b.cluster_name(),
        BackendKind::Triton => SIDECAR_CLUSTER.to_string(),
    };
    json!({
        "match": {
            "prefix": "/",
            "headers": [{ "name": BACKEND_HEADER, "string_match": { "exact": b.name } }]
        },
        // The routing header is the filter's note to this route table, not the backend's business.
        "request_headers_to_remove": [BACKEND_HEADER],
        "route": {
            "cluster": cluster,
            "timeout": duration_ms(b.timeout_ms),
            "idle_timeout": duration_ms(b.idle_timeout_ms)
        }
    })
}

fn clusters(plan: &Plan, buffer_limit: u64, ca_file: &Path) -> Vec<Value> {
    let mut out: Vec<Value> = plan
        .backends
        .iter()
        .filter(|b| b.kind == BackendKind::Openai)
        .map(|b| cluster(b, buffer_limit, ca_file))
        .collect();
    if let Some(sidecar) = &plan.sidecar {
        out.push(sidecar_cluster(sidecar, buffer_limit));
    }
    out
}

fn sidecar_cluster(s: &Sidecar, buffer_limit: u64) -> Value {
    json!({
        "name": SIDECAR_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {
            "cluster_name": SIDECAR_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(&s.address, s.port) } }] }]
        }
    })
}

fn cluster(b: &Backend, buffer_limit: u64, ca_file: &Path) -> Value {
    let name = b.cluster_name();
    let is_ip = b.url.host.parse::<IpAddr>().is_ok();
    let mut c = json!({
        "name": name,
        "type": if is_ip { "STATIC" } else { "LOGICAL_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": duration_ms(b.connect_timeout_ms),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(&b.url.host, b.url.port) } }] }]
        }
    });
    if b.url.tls {
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
                "backend": "%REQ(X-AIROUTER-BACKEND)%",
                "upstream": "%UPSTREAM_HOST%",
                "bytes_in": "%BYTES_RECEIVED%",
                "bytes_out": "%BYTES_SENT%",
                "duration_ms": "%DURATION%",
                "upstream_ms": "%RESPONSE_DURATION%"
            }}
        }
    })
}
