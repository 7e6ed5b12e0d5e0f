//! The Envoy pieces of `[global_limits]`: `header_to_metadata` (the filter's rate limit headers
//! become dynamic metadata and leave the request), the `ratelimit` filter asking the sidecar with
//! the rate limit actions that build the descriptors, and the cluster of the sidecar's rate limit
//! service. The descriptor shapes are [`airouter_core::global_limits`]'s contract.

use std::net::IpAddr;

use airouter_core::config::{GlobalLimits, Sidecar};
use airouter_core::contract;
use airouter_core::errors::ApiError;
use airouter_core::global_limits::Kind;
use serde_json::{json, Value};

use super::{duration_ms, socket};

pub const CLUSTER: &str = "airouter_ratelimit";

/// The HTTP filters that go between the AI Router filter and the router.
pub fn http_filters(g: &GlobalLimits) -> Vec<Value> {
    let rule = |header: &str, entry: &str| {
        json!({
            "header": header,
            "on_header_present": { "metadata_namespace": contract::RL_METADATA_NAMESPACE, "key": entry, "type": "STRING" },
            "remove": true
        })
    };
    vec![
        json!({
            "name": "envoy.filters.http.header_to_metadata",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
                "request_rules": [
                    rule(contract::RL_KEY_HEADER, contract::RL_KEY_ENTRY),
                    rule(contract::RL_BACKEND_HEADER, contract::RL_BACKEND_ENTRY),
                    rule(contract::RL_RESERVE_HEADER, contract::RL_RESERVE_ENTRY)
                ]
            }
        }),
        json!({
            "name": "envoy.filters.http.ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
                "domain": contract::RL_DOMAIN,
                "timeout": duration_ms(g.timeout_ms),
                "failure_mode_deny": !g.fail_open,
                "status_on_error": { "code": "ServiceUnavailable" },
                // Filter-level limits: these (unlike route-level ones) honour `hits_addend`.
                "rate_limits": rate_limits(),
                "rate_limit_service": {
                    "transport_api_version": "V3",
                    "grpc_service": { "envoy_grpc": { "cluster_name": CLUSTER } }
                }
            }
        }),
    ]
}

/// When the limiter could not be asked and the mode is `closed`, Envoy's reply has no body; this
/// local reply mapper gives it the OpenAI error (the filter can rename a body but cannot add one).
pub fn local_reply_mapper() -> Value {
    let mut m = super::local_replies::mapper(
        json!({ "response_flag_filter": { "flags": ["RLSE"] } }),
        &ApiError::limiter_unavailable().body(),
    );
    m["status_code"] = json!(503);
    m
}

fn kind(k: Kind) -> Value {
    json!({ "generic_key": { "descriptor_key": contract::RL_KIND_ENTRY, "descriptor_value": k.value() } })
}

/// A descriptor entry from the filter's metadata; without it, the descriptor is not sent.
fn from_metadata(entry: &str) -> Value {
    json!({ "metadata": {
        "descriptor_key": entry,
        "metadata_key": { "key": contract::RL_METADATA_NAMESPACE, "path": [{ "key": entry }] },
        "source": "DYNAMIC"
    }})
}

/// The rate limit actions: one descriptor per kind of count.
fn rate_limits() -> Value {
    json!([
        { "actions": [kind(Kind::KeyRequests), from_metadata(contract::RL_KEY_ENTRY)] },
        { "actions": [kind(Kind::KeyTokens), from_metadata(contract::RL_KEY_ENTRY), from_metadata(contract::RL_RESERVE_ENTRY)] },
        {
            // When the stream ends: the tokens the filter counted replace the reservation.
            "actions": [kind(Kind::Settle), from_metadata(contract::RL_KEY_ENTRY), from_metadata(contract::RL_RESERVE_ENTRY)],
            "apply_on_stream_done": true,
            "hits_addend": { "format": format!("%FILTER_STATE({}{}:PLAIN)%", contract::FILTER_STATE_PREFIX, contract::USED_PROPERTY) }
        },
        { "actions": [kind(Kind::BackendRequests), from_metadata(contract::RL_BACKEND_ENTRY)] }
    ])
}

/// The sidecar's rate limit service (gRPC, so HTTP/2), on its gRPC port.
pub fn cluster(sidecar: &Sidecar) -> Value {
    let is_ip = sidecar.address.parse::<IpAddr>().is_ok();
    json!({
        "name": CLUSTER,
        "type": if is_ip { "STATIC" } else { "LOGICAL_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "1s",
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
