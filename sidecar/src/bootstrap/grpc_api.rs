//! The Envoy pieces of `[grpc_api]`: a listener for gRPC clients (HTTP/2 cleartext, and HTTP/1.1
//! or 2 for the same calls as JSON), whose `grpc_json_transcoder` filter turns `POST /v1/route`
//! and `POST /v1/route:stream` into the gRPC calls (the descriptor set embedded, streams sent
//! back as server-sent events, errors as `google.rpc.Status` JSON, Envoy's own answers to JSON
//! clients too: see [`local_replies`]), and whose routes send only
//! the client API, its health service and, when on, server reflection to the cluster of sidecar
//! replicas: round robin over those whose gRPC health check (`airouter.v1.Router`) passes.
//!
//! The routes set no timeout: each call is bounded by its own deadline (`grpc-timeout`, which
//! the sidecar enforces) and by the OpenAI listener's timeouts on the request the sidecar makes
//! for it. A call that fails before it reaches a replica (connection refused or reset before the
//! request went out) is tried on another.

use std::net::IpAddr;

use airouter_core::config::{GrpcApi, Plan};
use base64::Engine;
use serde_json::{json, Value};

use super::local_replies::cel_filter;
use super::{duration_ms, socket};
use crate::grpc_api::{transcoder_descriptor_set, SERVICE_NAME};

/// The cluster of sidecar replicas serving the API.
pub const CLUSTER: &str = "airouter_grpc_api";
/// The listener's name, and its stats prefix.
const LISTENER: &str = "airouter_grpc_api";

/// The gRPC services routed to the sidecars: the API and health; reflection when it is on.
fn services(api: &GrpcApi) -> Vec<&'static str> {
    let mut names = vec![SERVICE_NAME, "grpc.health.v1.Health"];
    if api.reflection {
        names.extend([
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
    }
    names
}

/// The listener, with `[listener]`'s client timeouts and connection buffers of `buffer_limit`.
pub(super) fn listener(plan: &Plan, api: &GrpcApi, buffer_limit: u64) -> Value {
    // Once more on the same sidecar (a pooled connection it had closed), else on each other one.
    let retries = api.sidecars.len().saturating_sub(1).clamp(1, 3);
    let routes: Vec<Value> = services(api)
        .into_iter()
        .map(|service| {
            json!({
                "match": { "prefix": format!("/{service}/") },
                "route": {
                    "cluster": CLUSTER,
                    "timeout": "0s",
                    "idle_timeout": "0s",
                    "retry_policy": {
                        "retry_on": "connect-failure,refused-stream,reset-before-request",
                        "num_retries": retries,
                        "retry_host_predicate": [{
                            "name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" }
                        }],
                        "host_selection_retry_max_attempts": 3
                    }
                }
            })
        })
        .collect();
    let l = &plan.listener;
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": LISTENER,
        "codec_type": "AUTO",
        "use_remote_address": true,
        "access_log": [super::listener::access_log()],
        "route_config": {
            "name": LISTENER,
            "virtual_hosts": [{ "name": LISTENER, "domains": ["*"], "routes": routes }]
        },
        "http_filters": [transcoder(), {
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }],
        "local_reply_config": local_replies(),
        "stream_idle_timeout": duration_ms(l.stream_idle_timeout_ms),
        "common_http_protocol_options": { "idle_timeout": duration_ms(l.idle_timeout_ms) }
    });
    if let Some(t) = &plan.tracing {
        hcm["tracing"] = super::tracing::hcm_tracing(t, false);
    }
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
    json!({
        "name": LISTENER,
        "address": socket(&api.address, api.port),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{ "filters": [
            { "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }
        ]}]
    })
}

/// Envoy's gRPC-JSON transcoder for the API: JSON field names as in the `.proto`, every field
/// printed, streams as server-sent events, a failed call as its `google.rpc.Status` in JSON with
/// the HTTP status gRPC maps its code to.
fn transcoder() -> Value {
    json!({
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor_bin": base64::engine::general_purpose::STANDARD.encode(transcoder_descriptor_set()),
            "services": [SERVICE_NAME],
            "print_options": {
                "always_print_primitive_fields": true,
                "preserve_proto_field_names": true,
                "stream_sse_style_delimited": true
            },
            "convert_grpc_status": true,
            "request_validation_options": { "reject_unknown_query_parameters": true }
        }
    })
}

/// The gRPC code (`google.rpc.Code`) of the HTTP statuses Envoy answers itself with on this
/// listener (the transcoder's 400 for JSON it cannot read, 404 for a path it does not serve, 413
/// for a body over the buffer limit, 503 with no replica up, ...), by gRPC's conventions: a size
/// limit is `RESOURCE_EXHAUSTED` (8), like the sidecar's own. Any other status is `UNKNOWN` (2).
const LOCAL_REPLY_CODES: [(u8, &str); 9] = [
    (3, "400"),
    (16, "401"),
    (7, "403"),
    (5, "404"),
    (12, "405, 501"),
    (4, "408, 504"),
    (8, "413, 429, 431, 507"),
    (13, "500"),
    (14, "502, 503"),
];

/// The message of Envoy's 404 to a JSON client (Envoy's own has no body): what this listener
/// serves.
const NOT_FOUND_MESSAGE: &str =
    "no such route: HTTP/JSON clients POST /v1/route or /v1/route:stream";

/// CEL: the request is a JSON client's: the transcoder took it (it adds
/// `x-envoy-original-method`), or it is not gRPC at all.
const JSON_CLIENT: &str = "('x-envoy-original-method' in request.headers || \
    !('content-type' in request.headers && request.headers['content-type'].startsWith('application/grpc')))";

/// Envoy's own answers to HTTP/JSON clients as `google.rpc.Status` JSON (`{"code": 3, "message":
/// "..."}`, `application/json`), the shape the transcoder gives the sidecar's refusals, with the
/// HTTP status kept: the HCM's `local_reply_config`, one mapper per gRPC code. A gRPC client's
/// local replies stay Envoy's trailers-only gRPC answers.
fn local_replies() -> Value {
    let status_body = |code: u8| {
        json!({
            "json_format": { "code": code, "message": "%LOCAL_REPLY_BODY%" },
            "content_type": "application/json"
        })
    };
    let mut mappers: Vec<Value> = LOCAL_REPLY_CODES
        .iter()
        .map(|&(code, statuses)| {
            let filter = format!("response.code in [{statuses}] && {JSON_CLIENT}");
            let mut mapper = json!({
                "filter": cel_filter(&filter),
                "body_format_override": status_body(code)
            });
            if code == 5 {
                mapper["body"] = json!({ "inline_string": NOT_FOUND_MESSAGE });
            }
            mapper
        })
        .collect();
    mappers
        .push(json!({ "filter": cel_filter(JSON_CLIENT), "body_format_override": status_body(2) }));
    json!({ "mappers": mappers })
}

/// The sidecar replicas (HTTP/2), round robin, each checked with the gRPC health service.
pub(super) fn cluster(api: &GrpcApi) -> Value {
    let all_ip = api
        .sidecars
        .iter()
        .all(|e| e.host.parse::<IpAddr>().is_ok());
    let endpoints: Vec<Value> = api
        .sidecars
        .iter()
        .map(|e| json!({ "endpoint": { "address": socket(&e.host, e.port) } }))
        .collect();
    json!({
        "name": CLUSTER,
        "type": if all_ip { "STATIC" } else { "STRICT_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "lb_policy": "ROUND_ROBIN",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        },
        // A replica that stops serving is skipped within seconds; while none passes, Envoy
        // (below its panic threshold) still spreads calls over all of them.
        "health_checks": [{
            "timeout": "1s",
            "interval": "2s",
            "no_traffic_interval": "2s",
            "unhealthy_threshold": 2,
            "healthy_threshold": 1,
            "grpc_health_check": { "service_name": SERVICE_NAME }
        }],
        "load_assignment": { "cluster_name": CLUSTER, "endpoints": [{ "lb_endpoints": endpoints }] }
    })
}
