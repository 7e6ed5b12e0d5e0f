//! Hosted (`https`) backends in the mesh's registry (`networking.istio.io/v1`): per host a
//! `ServiceEntry` (`MESH_EXTERNAL`, resolved by DNS) and a `DestinationRule` originating TLS with
//! the host as SNI, following Istio's egress TLS origination recipe: port 80 (HTTP) is sent to
//! the host's port as TLS, port 443 passes TLS through. The gateway's AI Router routes use their
//! own `airouter_backend_*` clusters (which originate TLS themselves, checking the host's
//! certificate: see `envoy_filter`); these objects make the hosts known to the mesh, so an
//! `outboundTrafficPolicy: REGISTRY_ONLY` mesh, its telemetry and its other workloads see them.

use std::collections::BTreeMap;

use airouter_core::config::Plan;
use serde_json::{json, Value};

use super::{metadata, Options};

/// A `ServiceEntry` and a `DestinationRule` per distinct hosted host, in host order.
pub(super) fn egress(plan: &Plan, o: &Options) -> Vec<Value> {
    let hosts: BTreeMap<&str, u16> = plan
        .backends
        .iter()
        .filter(|b| b.url.tls)
        .map(|b| (b.url.host.as_str(), b.url.port))
        .collect();
    hosts
        .into_iter()
        .flat_map(|(host, port)| {
            let name = format!("airouter-{}", host.replace('.', "-"));
            [
                json!({
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "ServiceEntry",
                    "metadata": metadata(&name, o),
                    "spec": {
                        "hosts": [host],
                        "location": "MESH_EXTERNAL",
                        "resolution": "DNS",
                        "ports": [
                            { "number": 80, "name": "http", "protocol": "HTTP", "targetPort": port },
                            { "number": port, "name": "https", "protocol": "HTTPS" }
                        ]
                    }
                }),
                json!({
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "DestinationRule",
                    "metadata": metadata(&name, o),
                    "spec": {
                        "host": host,
                        "trafficPolicy": { "portLevelSettings": [{
                            "port": { "number": 80 },
                            "tls": { "mode": "SIMPLE", "sni": host }
                        }]}
                    }
                }),
            ]
        })
        .collect()
}
