//! One cluster per backend: its endpoint (the sidecar's for a Triton backend), connect timeout,
//! buffer limit, passive outlier detection, the optional active health check and, for `https`
//! URLs, TLS with SNI and certificate checks against the host name.

use std::net::IpAddr;
use std::path::Path;

use airouter_core::config::{Backend, BackendKind, Plan};
use airouter_core::contract;
use serde_json::{json, Value};

use super::{duration_ms, socket};

/// One cluster per backend. A Triton backend's cluster points at the sidecar, which speaks gRPC
/// to Triton. The endpoint's metadata names the backend, for the failover upstream filter.
pub(super) fn cluster(plan: &Plan, b: &Backend, buffer_limit: u64, ca_file: &Path) -> Value {
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
                "metadata": { "filter_metadata": { contract::METADATA_NAMESPACE: { contract::BACKEND_METADATA_KEY: b.name } } }
            }] }]
        }
    });
    // Passive: a backend answering five 5xx in a row (or unreachable five times) is ejected for
    // 30 s, doubling on repeats; failover then goes straight to the next target. 429s do not count.
    // Ejected on gateway failures (connection failures, resets, 502/503/504) only: a backend's
    // 500 is as often a client's malformed request as the backend's fault, and a client must
    // not be able to eject a healthy backend by sending a few.
    c["outlier_detection"] = json!({
        "consecutive_5xx": 5,
        "enforcing_consecutive_5xx": 0,
        "consecutive_gateway_failure": 5,
        "enforcing_consecutive_gateway_failure": 100,
        "base_ejection_time": "30s",
        "max_ejection_percent": 100
    });
    if let Some((path, interval)) = &b.health_check {
        let host_header = if b.kind != BackendKind::Triton {
            b.url.authority.clone()
        } else {
            contract::SIDECAR_AUTHORITY.into()
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
