//! The listener OpenAI clients connect to: its HTTP connection manager with the given filter
//! chain and routes, the client timeouts of `[listener]`, OpenAI-shaped local replies, a JSON
//! access log on stdout (with the filter's GenAI fields under `[telemetry]`), Envoy's
//! OpenTelemetry tracer with `[tracing]`, and with `[session_log]` the gRPC access log of
//! session records.

use airouter_core::config::Plan;
use airouter_core::contract;
use serde_json::{json, Value};

use super::{duration_ms, local_replies, socket};

/// The listener of `plan`: `http_filters` in order, `routes` in one virtual host matching any
/// domain, `first_mappers` ahead of the standard local reply mappers, connection buffers of
/// `buffer_limit` bytes.
pub(super) fn listener(
    plan: &Plan,
    routes: Vec<Value>,
    http_filters: Vec<Value>,
    first_mappers: Vec<Value>,
    buffer_limit: u64,
) -> Value {
    let virtual_host = json!({ "name": "airouter", "domains": ["*"], "routes": routes });
    let mut log = access_log();
    if let Some(fields) = log
        .pointer_mut("/typed_config/log_format/json_format")
        .and_then(Value::as_object_mut)
    {
        super::tracing::access_log_fields(plan, fields);
    }
    let mut access_logs = vec![log];
    if plan.session_log.is_some() {
        access_logs.push(super::session_log::access_log());
    }
    let l = &plan.listener;
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "airouter",
        "codec_type": "AUTO",
        // Envoy is the edge here: clients' own x-envoy-* headers are not trusted.
        "use_remote_address": true,
        "access_log": access_logs,
        "route_config": { "name": "airouter", "virtual_hosts": [virtual_host] },
        "http_filters": http_filters,
        "local_reply_config": local_replies::config(l.max_body_bytes, first_mappers),
        // 0 turns each off; Envoy's own defaults (5 min, 1 h) are replaced, never inherited.
        "stream_idle_timeout": duration_ms(l.stream_idle_timeout_ms),
        "common_http_protocol_options": { "idle_timeout": duration_ms(l.idle_timeout_ms) }
    });
    if let Some(t) = &plan.tracing {
        hcm["tracing"] = super::tracing::hcm_tracing(t, true);
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
        "name": "airouter",
        "address": socket(&l.address, l.port),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{ "filters": [
            { "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }
        ]}]
    })
}

/// The JSON access log on stdout, one line per request (the gRPC API's listener logs the same).
pub(super) fn access_log() -> Value {
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
                "backend": format!("%UPSTREAM_METADATA({}:{})%", contract::METADATA_NAMESPACE, contract::BACKEND_METADATA_KEY),
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
