//! The AI Router filter as an Envoy HTTP filter: its `envoy.filters.http.wasm` entry and the
//! configuration the listener's filter and the failover clusters' upstream filters share (the
//! module, the TOML text, the environment variables the module may read), told apart by root id.

use std::path::Path;

use airouter_core::config::Plan;
use airouter_core::contract;
use serde_json::{json, Value};

/// The `envoy.filters.http.wasm` entry of an `http_filters` list, running the module under
/// `root_id`.
pub(super) fn http_filter(plan: &Plan, toml_text: &str, wasm: &Path, root_id: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": config(plan, toml_text, wasm, root_id)
        }
    })
}

/// The filter's configuration, shared by the listener filter and the upstream filters.
fn config(plan: &Plan, toml_text: &str, wasm: &Path, root_id: &str) -> Value {
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
            "vm_id": contract::VM_ID,
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
