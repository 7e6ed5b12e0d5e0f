//! The AI Router filter as an Envoy dynamic module (`envoy.filters.http.dynamic_modules`, the
//! `filter/native` build): the entry for the listener's filter and the failover clusters'
//! upstream filters, which carry the same configuration as the wasm build's and are told apart
//! by `filter_name` (the wasm build's root ids). Envoy loads the module from the file named here;
//! it stays loaded across configuration changes (`do_not_close`), so the limits and cool-downs
//! it shares between workers outlive a reload, as the wasm build's shared data does. Its counters
//! keep the wasm build's stat names (`metrics_namespace`), so dashboards, `stats_tags` and the
//! tests read them alike.

use std::path::Path;

use airouter_core::config::Plan;
use serde_json::{json, Value};

/// The namespace Envoy puts the module's counters under: the wasm build's, so each counter has
/// one name whichever build counts it.
const METRICS_NAMESPACE: &str = "wasmcustom";

/// The `envoy.filters.http.dynamic_modules` entry of an `http_filters` list, running the module
/// at `module` (a `lib<name>.so` file) as `filter_name`.
pub(super) fn http_filter(plan: &Plan, toml_text: &str, module: &Path, filter_name: &str) -> Value {
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {
                "module": { "local": { "filename": module.display().to_string() } },
                "do_not_close": true,
                "metrics_namespace": METRICS_NAMESPACE
            },
            "filter_name": filter_name,
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.Struct",
                "value": { "name": plan.source, "configuration": toml_text }
            }
        }
    })
}
