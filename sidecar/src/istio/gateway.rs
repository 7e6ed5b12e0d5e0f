//! The gateway server the filter runs behind (`networking.istio.io/v1`): a `Gateway` with one
//! plain HTTP server on `[listener] port` for every host, and a `VirtualService` bound to it whose
//! only route answers 404 in OpenAI's envelope. Every host, because the filter rewrites
//! `:authority` to the backend's and has Envoy pick the route again: the route it picked (added
//! by the `EnvoyFilter` to this server's virtual hosts) must be found whatever the new authority,
//! so the port belongs to the AI Router alone. TLS towards clients is the operator's to add to
//! the server (`tls.mode: SIMPLE` with a `credentialName`).

use airouter_core::config::Plan;
use airouter_core::errors::ApiError;
use serde_json::{json, Value};

use super::{metadata, Options, NAME};

/// The `Gateway` and its `VirtualService`.
pub(super) fn gateway(plan: &Plan, o: &Options) -> Vec<Value> {
    let (key, value) = (&o.selector.0, &o.selector.1);
    let unrouted = ApiError::unknown_url("ANY", "(not routed by the AI Router filter)");
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": metadata(NAME, o),
            "spec": {
                "selector": { key: value },
                "servers": [{
                    "port": { "number": plan.listener.port, "name": "http-airouter", "protocol": "HTTP" },
                    "hosts": ["*"]
                }]
            }
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": metadata(NAME, o),
            "spec": {
                "hosts": ["*"],
                "gateways": [NAME],
                "http": [{
                    "name": "airouter-unrouted",
                    "directResponse": {
                        "status": 404,
                        "body": { "string": String::from_utf8_lossy(&unrouted.body()) }
                    }
                }]
            }
        }),
    ]
}
