//! `airouter envoy-gateway FILE`: the filter on an Envoy Gateway `Gateway`, as an
//! `EnvoyExtensionPolicy` (`gateway.envoyproxy.io/v1alpha1`). Fields used, as Envoy Gateway's API
//! defines them (`api/v1alpha1/wasm_types.go`, the `envoyextensionpolicies` CRD): `targetRefs[]`
//! (`group`, `kind: Gateway`, `name`), `wasm[]` with `name`, `rootID` (Envoy's root id),
//! `code.type: Image`, `code.image.url` (the OCI image without its scheme) and, with
//! `--wasm-sha256`, `code.image.sha256` (the image's digest, which Envoy Gateway checks the pulled
//! image against), `config` (the configuration's JSON form, which Envoy Gateway hands the filter
//! as JSON text), `env.hostKeys` (the environment variables the filter reads from the proxy's
//! own environment: backend keys and the sidecar's secret, never written here; Envoy's
//! `vm_config.environment_variables.host_env_keys`) and `failOpen: false`.
//!
//! A recipe, not the whole deployment: the policy places the module and its configuration, but
//! Envoy Gateway's API has no field for `allow_on_headers_stop_iteration`, the backend clusters,
//! the routes matched on the filter's state or the per-attempt upstream filter. Those are Envoy
//! configuration, the same values `airouter envoy` renders; Envoy Gateway takes them through an
//! `EnvoyPatchPolicy` (JSON patches on its xDS output); the keys `env.hostKeys` names reach the
//! proxy's environment through its `EnvoyProxy` resource, both described in `docs/mesh.md`.

use airouter_core::config::Plan;
use airouter_core::contract;
use serde_json::{json, Value};

use super::{env_keys, metadata, plugin_config, Options, NAME};

/// The `EnvoyExtensionPolicy` attaching the filter to the options' gateway; `plan` is the plan
/// of `toml_text`, whose key variables the filter's VM is given.
pub fn envoy_extension_policy(plan: &Plan, toml_text: &str, o: &Options) -> Result<Value, String> {
    let mut image = json!({ "url": o.image_reference() });
    if let Some(hex) = &o.wasm_sha256 {
        image["sha256"] = json!(hex);
    }
    let mut wasm = json!({
        "name": NAME,
        "rootID": contract::ROOT_ID,
        "code": { "type": "Image", "image": image },
        "config": plugin_config(toml_text)?,
        "failOpen": false
    });
    let keys = env_keys(plan);
    if !keys.is_empty() {
        wasm["env"] = json!({ "hostKeys": keys });
    }
    Ok(json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": metadata(NAME, o),
        "spec": {
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": o.gateway }],
            "wasm": [wasm]
        }
    }))
}
