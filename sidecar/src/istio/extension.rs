//! The filter as Istio places it: a `TrafficExtension` (`extensions.istio.io/v1alpha1`, Istio
//! 1.30+, its Wasm fields under `wasm`) or a `WasmPlugin` (same group and version, older releases,
//! the same fields at the top of `spec`). Either makes Istio's agent pull the OCI image and puts
//! the filter in the gateway's HTTP filter chain in the `AUTHN` phase (before Istio's own
//! authentication, authorization and stats filters: the filter authenticates clients itself and
//! strips headers only it may set). Istio delivers it to Envoy through ECDS under the name
//! [`ecds_name`], which the `EnvoyFilter` replaces with the complete configuration (see
//! `envoy_filter`).
//!
//! Fields used, as the API defines them (istio/api `extensions/v1alpha1`): `selector.matchLabels`,
//! `phase` (`AUTHN`), `match[].mode` (`CLIENT`: for gateways the API asks `CLIENT` or
//! `CLIENT_AND_SERVER`) and `match[].ports[].number`, and the Wasm fields `url`, `sha256`,
//! `pluginName` (Envoy's root id), `pluginConfig` (a `Struct`: the configuration's JSON form),
//! `failStrategy` (`FAIL_RELOAD`: a VM that traps is replaced), `vmConfig.env[]` with
//! `valueFrom: HOST` (the proxy's own environment: backend keys, never written here), `type`
//! (`HTTP`).

use airouter_core::config::Plan;
use airouter_core::contract;
use serde_json::{json, Map, Value};

use super::{env_keys, metadata, ExtensionApi, Options, NAME};

/// The name of the ECDS resource Istio makes of the extension `NAME` in the options' namespace.
pub fn ecds_name(o: &Options) -> String {
    format!("{}.{NAME}", o.namespace)
}

/// The Wasm fields shared by both APIs.
fn wasm_fields(plan: &Plan, config: &Value, o: &Options) -> Map<String, Value> {
    let env: Vec<Value> = env_keys(plan)
        .iter()
        .map(|k| json!({ "name": k, "valueFrom": "HOST" }))
        .collect();
    let mut w = Map::new();
    w.insert("url".into(), json!(o.wasm_image));
    if let Some(h) = &o.wasm_sha256 {
        w.insert("sha256".into(), json!(h));
    }
    w.insert("pluginName".into(), json!(contract::ROOT_ID));
    w.insert("pluginConfig".into(), config.clone());
    w.insert("failStrategy".into(), json!("FAIL_RELOAD"));
    if !env.is_empty() {
        w.insert("vmConfig".into(), json!({ "env": env }));
    }
    w.insert("type".into(), json!("HTTP"));
    w
}

/// The `TrafficExtension` or `WasmPlugin` placing the filter on the gateway's listener port.
pub(super) fn extension(plan: &Plan, config: &Value, o: &Options) -> Value {
    let (key, value) = (&o.selector.0, &o.selector.1);
    let mut spec = json!({
        "selector": { "matchLabels": { key: value } },
        "phase": "AUTHN",
        "match": [{ "mode": "CLIENT", "ports": [{ "number": plan.listener.port }] }]
    });
    let wasm = wasm_fields(plan, config, o);
    let kind = match o.api {
        ExtensionApi::TrafficExtension => {
            spec["wasm"] = Value::Object(wasm);
            "TrafficExtension"
        }
        ExtensionApi::WasmPlugin => {
            if let Some(s) = spec.as_object_mut() {
                s.extend(wasm);
            }
            "WasmPlugin"
        }
    };
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": kind,
        "metadata": metadata(NAME, o),
        "spec": spec
    })
}
