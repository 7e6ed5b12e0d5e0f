//! The Envoy pieces of `[session_log]`: an HTTP gRPC access logger on the listener that sends
//! each request's session record (the filter state the filter sets in its log callback, which
//! Envoy runs before its access loggers) to the sidecar's access log service, and the cluster of
//! that service (HTTP/2, on the sidecar's gRPC port). Only entries that carry a record are sent
//! (a CEL filter); the health checks the filter answers carry none.
//!
//! Envoy sends asynchronously and never holds a request for it: entries are batched (up to
//! [`BUFFER_BYTES`] or [`FLUSH_INTERVAL`]) on one stream per worker. As measured with Envoy 1.40:
//! - the stream is retried with back-off ([`RETRY`]: about ten minutes) while the sidecar cannot
//!   be reached, and its messages then wait: this carries the records over a sidecar that starts
//!   after Envoy;
//! - but a retry needs all the stream sent to fit Envoy's retry buffer (64 KiB), and the node
//!   identifier on a stream's first message takes about 60 KiB (Envoy lists every extension it
//!   was built with; no bootstrap option leaves them out, and `--disable-extensions` keeps their
//!   names, about 37 KiB): when a sidecar that was up goes down, most of the records Envoy had
//!   for it are lost ("retry or redirect buffer overflow" in Envoy's debug log; in the e2e test
//!   3 of 20 arrived), and `logs_written` counts them as sent;
//! - Envoy counts in `access_logs.grpc_access_log.logs_dropped` only what overflowed a stream it
//!   was still writing to. So the filter numbers every record it hands over (its `sequence`) and
//!   counts them (`airouter_session_records`), and the sidecar counts the numbers that never
//!   arrived (`/health`: `lost`, see `sidecar/src/session_log/sequences.rs`);
//!   `cluster.airouter_session_log.upstream_cx_connect_fail` shows when the sidecar was
//!   unreachable.

use airouter_core::config::{SessionLog, Sidecar};
use airouter_core::contract;
use serde_json::{json, Value};

use super::socket;

pub const CLUSTER: &str = "airouter_session_log";

/// Bytes of entries Envoy gathers before sending them (Envoy's default).
const BUFFER_BYTES: u64 = 16 * 1024;
/// Longest an entry waits to be sent.
const FLUSH_INTERVAL: &str = "0.2s";
/// How long Envoy keeps retrying the stream to a sidecar that is down: back-off from 0.5 s to
/// 5 s, 120 times.
const RETRY: (&str, &str, u32) = ("0.5s", "5s", 120);

/// The access logger sending the session records.
pub fn access_log() -> Value {
    json!({
        "name": "envoy.access_loggers.http_grpc",
        "filter": { "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": format!("'{}' in filter_state", contract::SESSION_FILTER_STATE)
            }
        }},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": contract::SESSION_LOG_NAME,
                "transport_api_version": "V3",
                "grpc_service": { "envoy_grpc": { "cluster_name": CLUSTER } },
                "filter_state_objects_to_log": [contract::SESSION_FILTER_STATE],
                "buffer_size_bytes": BUFFER_BYTES,
                "buffer_flush_interval": FLUSH_INTERVAL,
                "grpc_stream_retry_policy": {
                    "retry_back_off": { "base_interval": RETRY.0, "max_interval": RETRY.1 },
                    "num_retries": RETRY.2
                }
            }
        }
    })
}

/// The sidecar's access log service (gRPC, so HTTP/2). Its connection buffer holds the records
/// of a burst while the sidecar catches up: 64 records at the cap, at least 1 MiB, at most
/// 256 MiB.
pub fn cluster(log: &SessionLog, sidecar: &Sidecar) -> Value {
    let is_ip = sidecar.address.parse::<std::net::IpAddr>().is_ok();
    let buffer = (log.max_record_bytes as u64)
        .saturating_mul(64)
        .clamp(1 << 20, 256 << 20);
    json!({
        "name": CLUSTER,
        "type": if is_ip { "STATIC" } else { "LOGICAL_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "1s",
        "per_connection_buffer_limit_bytes": buffer,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(&sidecar.address, sidecar.grpc_port) } }] }]
        }
    })
}
