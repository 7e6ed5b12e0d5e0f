//! Renders a complete Envoy bootstrap from a plan: the listener with the AI Router filter carrying
//! the TOML as its plugin configuration (without secrets: see [`plugin_config`]), its timeouts,
//! connection limit and OpenAI-shaped local replies, routes, one cluster per backend, and for
//! each model with several targets an aggregate cluster that fails over between them, rewritten
//! per attempt by the same module running as its upstream filter. Admin, JSON access log.
//! Operators never write clusters by hand; the output passes `envoy --mode validate`.
//!
//! [`parts`] assembles the pieces, each rendered in its own file: `listener` (connection manager,
//! client timeouts, access log), `routes`, `clusters` (one per backend), `failover` (aggregate
//! clusters and their retrying routes), `wasm_filter` and `native_filter` (the filter's entry and
//! configuration, as a proxy-wasm or a dynamic module: [`FilterModule`]),
//! `global_limits`, `session_log` (the access logger carrying session records to the sidecar),
//! `grpc_api` (the gRPC client API's listener and sidecar replicas), `tracing` (Envoy's
//! OpenTelemetry tracer, the GenAI histograms' buckets and access-log fields), [`local_replies`] and
//! [`plugin_config`] (the TOML Envoy holds).

use std::path::Path;

use airouter_core::config::Plan;
use airouter_core::contract;
use airouter_core::metrics;
use airouter_core::telemetry::histograms;
use serde_json::{json, Value};

mod clusters;
mod failover;
mod global_limits;
mod grpc_api;
mod listener;
pub mod local_replies;
mod native_filter;
pub mod plugin_config;
mod routes;
mod session_log;
mod tracing;
mod wasm_filter;

/// Which build of the filter Envoy runs, and the file Envoy loads it from.
#[derive(Debug, Clone, Copy)]
pub enum FilterModule<'a> {
    /// The proxy-wasm module (`airouter_filter.wasm`), run by Envoy's v8.
    Wasm(&'a Path),
    /// The dynamic module (`libairouter_native.so`), loaded into Envoy's process.
    Native(&'a Path),
}

impl FilterModule<'_> {
    /// The filter's `http_filters` entry, as the listener's filter (`root_id`
    /// [`contract::ROOT_ID`]) or a failover cluster's upstream filter.
    fn http_filter(&self, plan: &Plan, toml_text: &str, root_id: &str) -> Value {
        match self {
            FilterModule::Wasm(path) => wasm_filter::http_filter(plan, toml_text, path, root_id),
            FilterModule::Native(path) => {
                native_filter::http_filter(plan, toml_text, path, root_id)
            }
        }
    }
}

/// Headroom over the body limit for Envoy's per-connection buffers (headers, framing).
const BUFFER_HEADROOM: u64 = 64 * 1024;

fn duration_ms(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn socket(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// What a bootstrap is made of: the listener and the clusters (which reloads replace), and the
/// parts that stay for the life of the process.
pub struct Parts {
    pub listener: Value,
    /// Listeners beside the OpenAI one: the gRPC client API's (`[grpc_api]`).
    pub more_listeners: Vec<Value>,
    pub clusters: Vec<Value>,
    admin: Value,
    /// `stats_config`: the tags of the filter's counters and GenAI histograms
    /// (`stats_tags`), and with `[telemetry] metrics` the histograms' buckets.
    pub stats_config: Value,
    overload_manager: Value,
    /// Runtime flags the filter's build needs (`layered_runtime`), if any.
    runtime: Option<Value>,
}

/// The runtime flags of the dynamic module: Envoy 1.40 strips a dynamic module's metrics
/// namespace from Prometheus names, as it does the wasm build's `wasmcustom.`, only under this
/// flag, so that `wasmcustom.airouter_*` is `airouter_*` there with either build.
fn native_runtime() -> Value {
    json!({ "layers": [{
        "name": "airouter_native",
        "static_layer": { "envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix": true }
    }]})
}

/// `doc` with the parts' runtime flags, if any.
fn with_runtime(mut doc: Value, runtime: &Option<Value>) -> Value {
    if let (Some(runtime), Some(obj)) = (runtime, doc.as_object_mut()) {
        obj.insert("layered_runtime".into(), runtime.clone());
    }
    doc
}

/// The client connection limit: Envoy's `global_downstream_max_connections` monitor counts
/// connections across workers and refuses those beyond it as they are accepted. It belongs to the
/// bootstrap, so a change takes effect when Envoy restarts, not on `airouter reload`.
fn overload_manager(max_connections: u64) -> Value {
    json!({ "resource_monitors": [{
        "name": "envoy.resource_monitors.global_downstream_max_connections",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
            "max_active_downstream_connections": max_connections
        }
    }]})
}

/// Everything Envoy needs for `plan`. `toml_text` is the filter's configuration as Envoy will hold
/// it: [`plugin_config::sanitize`]'s text, whose plan `plan` is.
pub fn parts(plan: &Plan, toml_text: &str, filter: FilterModule<'_>, ca_file: &Path) -> Parts {
    let buffer_limit = plan.listener.max_body_bytes + BUFFER_HEADROOM;
    let mut clusters: Vec<Value> = plan
        .backends
        .iter()
        .map(|b| clusters::cluster(plan, b, buffer_limit, ca_file))
        .collect();
    for (i, first) in failover::failovers(plan) {
        clusters.push(failover::cluster(plan, toml_text, filter, i, first));
    }
    let mut http_filters = vec![filter.http_filter(plan, toml_text, contract::ROOT_ID)];
    let mut first_mappers = Vec::new();
    if let (Some(g), Some(sidecar)) = (&plan.global_limits, &plan.sidecar) {
        http_filters.extend(global_limits::http_filters(g));
        clusters.push(global_limits::cluster(sidecar));
        first_mappers.push(global_limits::local_reply_mapper());
    }
    if let (Some(log), Some(sidecar)) = (&plan.session_log, &plan.sidecar) {
        clusters.push(session_log::cluster(log, sidecar));
    }
    if let Some(t) = &plan.tracing {
        clusters.push(tracing::cluster(t));
    }
    let mut more_listeners = Vec::new();
    if let Some(api) = &plan.grpc_api {
        clusters.push(grpc_api::cluster(api));
        more_listeners.push(grpc_api::listener(plan, api, buffer_limit));
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    let listener = listener::listener(
        plan,
        routes::routes(plan),
        http_filters,
        first_mappers,
        buffer_limit,
    );

    let gen_ai_tags = plan
        .telemetry
        .metrics
        .then_some(histograms::TAGS.iter())
        .into_iter()
        .flatten();
    let stats_tags: Vec<Value> = metrics::TAGS
        .iter()
        .chain(gen_ai_tags)
        .map(|(tag, regex)| json!({ "tag_name": tag, "regex": regex }))
        .collect();
    let mut stats_config = json!({ "stats_tags": stats_tags, "use_all_default_tags": true });
    if plan.telemetry.metrics {
        stats_config["histogram_bucket_settings"] = json!(tracing::histogram_buckets());
    }
    Parts {
        listener,
        more_listeners,
        clusters,
        // The admin port stays reachable when clients hold every connection the limit allows.
        admin: json!({
            "address": socket(&plan.admin.address, plan.admin.port),
            "ignore_global_conn_limit": true
        }),
        overload_manager: overload_manager(plan.listener.max_connections),
        // The filter's counters carry backend, model and key names as tags.
        stats_config,
        runtime: matches!(filter, FilterModule::Native(_)).then(native_runtime),
    }
}

/// A bootstrap with everything static: changes need a restart.
pub fn render(p: Parts) -> Value {
    let mut listeners = vec![p.listener];
    listeners.extend(p.more_listeners);
    let doc = json!({
        "admin": p.admin,
        "stats_config": p.stats_config,
        "overload_manager": p.overload_manager,
        "static_resources": { "listeners": listeners, "clusters": p.clusters }
    });
    with_runtime(doc, &p.runtime)
}

/// The files a dynamic bootstrap watches, named in it.
pub const LDS_FILE: &str = "lds.json";
pub const CDS_FILE: &str = "cds.json";

/// A bootstrap whose listener and clusters come from files in `xds_dir`, which Envoy watches:
/// `airouter reload` rewrites them, and Envoy swaps the filter chain and drains the old one, so
/// in-flight requests and streams finish on the configuration they started with.
pub fn render_dynamic(parts: &Parts, xds_dir: &Path) -> Value {
    let source = |file: &str| {
        json!({
            "path_config_source": {
                "path": xds_dir.join(file).display().to_string(),
                "watched_directory": { "path": xds_dir.display().to_string() }
            },
            "resource_api_version": "V3"
        })
    };
    let doc = json!({
        "node": { "id": "airouter", "cluster": "airouter" },
        "admin": parts.admin,
        "stats_config": parts.stats_config,
        "overload_manager": parts.overload_manager,
        "dynamic_resources": { "lds_config": source(LDS_FILE), "cds_config": source(CDS_FILE) }
    });
    with_runtime(doc, &parts.runtime)
}

/// The discovery responses Envoy reads from the watched files.
pub fn discovery_files(parts: &Parts, version: &str) -> (Value, Value) {
    let typed = |t: &str, v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("@type".into(), json!(t));
        }
        v
    };
    let listeners: Vec<Value> = std::iter::once(&parts.listener)
        .chain(&parts.more_listeners)
        .map(|l| typed("type.googleapis.com/envoy.config.listener.v3.Listener", l))
        .collect();
    let lds = json!({ "version_info": version, "resources": listeners });
    let clusters: Vec<Value> = parts
        .clusters
        .iter()
        .map(|c| typed("type.googleapis.com/envoy.config.cluster.v3.Cluster", c))
        .collect();
    let cds = json!({ "version_info": version, "resources": clusters });
    (lds, cds)
}
