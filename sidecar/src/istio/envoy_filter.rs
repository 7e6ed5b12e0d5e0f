//! The `EnvoyFilter` (`networking.istio.io/v1alpha3`, context `GATEWAY`) carrying what a
//! `TrafficExtension` or `WasmPlugin` cannot express, each patch's value taken from the Envoy
//! pieces `airouter envoy` renders (so both deployments run the same configuration):
//! - `EXTENSION_CONFIG` `REPLACE` of the extension's ECDS resource: the complete Wasm
//!   configuration, with `allow_on_headers_stop_iteration`, the VM id both plugin instances share
//!   and the module fetched by Istio's agent (`code.remote` with the `oci://` URL and the cluster
//!   `_`, as Istio writes it for a `WasmPlugin`);
//! - `EXTENSION_CONFIG` `ADD` of the upstream filter (root id `airouter-upstream`), which the
//!   failover clusters reach through ECDS (`config_discovery`: Envoy runs upstream HTTP filters
//!   from ECDS since 1.28);
//! - `CLUSTER` `ADD` of every cluster: one per backend (`https` ones with TLS, SNI and a SAN check
//!   against the CA bundle of the proxy's image), the failover aggregates, the sidecar's;
//! - `HTTP_ROUTE` `INSERT_BEFORE` (no route named: inserted first) of each route the filter picks
//!   by filter state, in every virtual host of the gateway port's route configuration;
//! - `LISTENER` and `NETWORK_FILTER` `MERGE`: the listener's buffer limit, the connection
//!   manager's client timeouts, the local replies in OpenAI's envelope, the session log's access
//!   logger, with `[tracing]` the GenAI span attributes (custom tags) on Istio's tracer's span;
//! - with `[global_limits]`, `HTTP_FILTER` `INSERT_BEFORE` the router of the global rate limit
//!   filters;
//! - `BOOTSTRAP` `MERGE` of the bootstrap's `stats_config` (see [`super::stats_config`]): the
//!   `stats_tags` of the filter's counters and GenAI histograms and the histograms' buckets, which
//!   Istio's own bootstrap lacks. Istio applies a `BOOTSTRAP` patch when its agent fetches the
//!   proxy's bootstrap from istiod, which it does with [`super::BOOTSTRAP_XDS_AGENT`] set, at
//!   the proxy's start.

use airouter_core::config::Plan;
use airouter_core::contract;
use serde_json::{json, Value};

use super::extension::ecds_name;
use super::{metadata, stats_config, Options, NAME};
use crate::bootstrap::Parts;

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const HCM: &str = "envoy.filters.network.http_connection_manager";
const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// The connection manager settings the rendered listener sets for clients.
const HCM_SETTINGS: [&str; 5] = [
    "local_reply_config",
    "stream_idle_timeout",
    "request_timeout",
    "request_headers_timeout",
    "common_http_protocol_options",
];

/// The upstream filter's ECDS name.
fn upstream_ecds_name(o: &Options) -> String {
    format!("{}-upstream", ecds_name(o))
}

/// The filter's Wasm configuration for `root_id` as the rendered listener has it, the module
/// fetched from the OCI image by Istio's agent.
fn wasm_config(parts: &Parts, root_id: &str, o: &Options) -> Result<Value, String> {
    let mut config = hcm(parts)?["http_filters"][0]["typed_config"].clone();
    if config["config"].is_null() {
        return Err("the rendered listener has no wasm filter first".into());
    }
    config["config"]["root_id"] = json!(root_id);
    let mut remote =
        json!({ "http_uri": { "uri": o.wasm_image, "cluster": "_", "timeout": "30s" } });
    if let Some(h) = &o.wasm_sha256 {
        remote["sha256"] = json!(h);
    }
    config["config"]["vm_config"]["code"] = json!({ "remote": remote });
    Ok(config)
}

/// The rendered listener's connection manager.
fn hcm(parts: &Parts) -> Result<&Value, String> {
    let hcm = &parts.listener["filter_chains"][0]["filters"][0]["typed_config"];
    if hcm.is_null() {
        return Err("the rendered listener has no connection manager".into());
    }
    Ok(hcm)
}

/// The upstream filter of a failover cluster, read from Istio's ECDS.
fn upstream_filter(o: &Options) -> Value {
    json!({
        "name": upstream_ecds_name(o),
        "config_discovery": {
            "config_source": { "ads": {}, "initial_fetch_timeout": "0s" },
            "type_urls": [WASM_TYPE]
        }
    })
}

/// A cluster as the gateway gets it: failover clusters read their upstream filter from ECDS.
fn cluster(mut c: Value, o: &Options) -> Value {
    // A pointer, not indexing: indexing a missing key would add it (as null) to every cluster.
    let path = "/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/http_filters/0";
    if let Some(first) = c.pointer_mut(path) {
        if first["typed_config"]["@type"] == WASM_TYPE {
            *first = upstream_filter(o);
        }
    }
    c
}

/// The `EnvoyFilter` for `plan`, built from the rendered `parts`.
pub(super) fn envoy_filter(plan: &Plan, parts: &Parts, o: &Options) -> Result<Value, String> {
    let port = plan.listener.port;
    let hcm = hcm(parts)?;
    let mut patches = vec![
        json!({
            "applyTo": "EXTENSION_CONFIG",
            "patch": { "operation": "REPLACE", "value": {
                "name": ecds_name(o),
                "typed_config": wasm_config(parts, contract::ROOT_ID, o)?
            }}
        }),
        json!({
            "applyTo": "EXTENSION_CONFIG",
            "patch": { "operation": "ADD", "value": {
                "name": upstream_ecds_name(o),
                "typed_config": wasm_config(parts, contract::UPSTREAM_ROOT_ID, o)?
            }}
        }),
    ];
    // Istio's own tracer exports the gateway's spans: the bootstrap's OTLP cluster is not sent.
    let clusters = parts
        .clusters
        .iter()
        .filter(|c| c["name"] != contract::TRACING_CLUSTER);
    for c in clusters {
        patches.push(json!({
            "applyTo": "CLUSTER",
            "match": { "context": "GATEWAY" },
            "patch": { "operation": "ADD", "value": cluster(c.clone(), o) }
        }));
    }
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Every route but the last, the catch-all the VirtualService stands for.
    for r in routes.iter().take(routes.len().saturating_sub(1)) {
        patches.push(json!({
            "applyTo": "HTTP_ROUTE",
            "match": { "context": "GATEWAY", "routeConfiguration": { "portNumber": port } },
            "patch": { "operation": "INSERT_BEFORE", "value": r }
        }));
    }
    let listener_match = json!({ "context": "GATEWAY", "listener": { "portNumber": port } });
    patches.push(json!({
        "applyTo": "LISTENER",
        "match": listener_match,
        "patch": { "operation": "MERGE", "value": {
            "per_connection_buffer_limit_bytes": parts.listener["per_connection_buffer_limit_bytes"]
        }}
    }));
    let mut settings = json!({ "@type": HCM_TYPE });
    for key in HCM_SETTINGS {
        if !hcm[key].is_null() {
            settings[key] = hcm[key].clone();
        }
    }
    // The first access logger is the stdout log Istio has its own of; the rest (the session
    // log's) are the filter's.
    if let Some(logs) = hcm["access_log"].as_array().filter(|l| l.len() > 1) {
        settings["access_log"] = json!(logs[1..]);
    }
    // With `[tracing]`, the filter's GenAI attributes on the span of the tracer Istio configures
    // (its mesh's OpenTelemetry provider): the custom tags only, Istio's provider and sampling
    // stay.
    if let Some(tags) = hcm["tracing"].get("custom_tags") {
        settings["tracing"] = json!({ "custom_tags": tags });
    }
    patches.push(json!({
        "applyTo": "NETWORK_FILTER",
        "match": { "context": "GATEWAY", "listener": {
            "portNumber": port, "filterChain": { "filter": { "name": HCM } }
        }},
        "patch": { "operation": "MERGE", "value": { "name": HCM, "typed_config": settings } }
    }));
    let filters = hcm["http_filters"].as_array().cloned().unwrap_or_default();
    // Between the AI Router filter (first) and the router (last): the global limits' filters.
    for f in filters.iter().skip(1).take(filters.len().saturating_sub(2)) {
        patches.push(json!({
            "applyTo": "HTTP_FILTER",
            "match": { "context": "GATEWAY", "listener": {
                "portNumber": port,
                "filterChain": { "filter": { "name": HCM, "subFilter": { "name": "envoy.filters.http.router" } } }
            }},
            "patch": { "operation": "INSERT_BEFORE", "value": f }
        }));
    }
    // A protobuf merge, as istiod applies it: both lists are appended to Istio's own.
    patches.push(json!({
        "applyTo": "BOOTSTRAP",
        "patch": { "operation": "MERGE", "value": { "stats_config": stats_config(parts) } }
    }));
    let (key, value) = (&o.selector.0, &o.selector.1);
    Ok(json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": metadata(NAME, o),
        "spec": {
            "workloadSelector": { "labels": { key: value } },
            "configPatches": patches
        }
    }))
}
