//! `airouter envoy-gateway FILE`: the filter on an Envoy Gateway `Gateway`, as an
//! `EnvoyExtensionPolicy` (`gateway.envoyproxy.io/v1alpha1`). Fields used, as Envoy Gateway's API
//! defines them (`api/v1alpha1/wasm_types.go`, the `envoyextensionpolicies` CRD): `targetRefs[]`
//! (`group`, `kind: Gateway`, `name`), `wasm[]` with `name`, `rootID` (Envoy's root id),
//! `code.type: Image` and `code.image.url` (the OCI image without its scheme), `config` (the configuration's JSON form, which Envoy Gateway hands the filter as JSON text)
//! and `failOpen: false`.
//!
//! A recipe, not the whole deployment: the policy places the module and its configuration, but
//! Envoy Gateway's API has no field for `allow_on_headers_stop_iteration`, the backend clusters,
//! the routes matched on the filter's state or the per-attempt upstream filter. Those are Envoy
//! configuration, the same values `airouter envoy` renders; Envoy Gateway takes them through an
//! `EnvoyPatchPolicy` (JSON patches on its xDS output) and backend keys through the proxy's
//! environment (its `EnvoyProxy` resource), both described in `docs/mesh.md`.

use airouter_core::contract;
use serde_json::{json, Value};

use super::{metadata, plugin_config, Options, NAME};

/// The `EnvoyExtensionPolicy` attaching the filter to the options' gateway.
pub fn envoy_extension_policy(toml_text: &str, o: &Options) -> Result<Value, String> {
    // A digest pins the image in its reference (`REPO@sha256:...`); `--wasm-sha256` is Istio's.
    let code = json!({ "type": "Image", "image": { "url": o.image_reference() } });
    Ok(json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": metadata(NAME, o),
        "spec": {
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": o.gateway }],
            "wasm": [{
                "name": NAME,
                "rootID": contract::ROOT_ID,
                "code": code,
                "config": plugin_config(toml_text)?,
                "failOpen": false
            }]
        }
    }))
}
