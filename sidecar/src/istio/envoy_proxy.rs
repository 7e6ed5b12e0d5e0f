//! `airouter envoy-gateway FILE`'s `EnvoyProxy` (`gateway.envoyproxy.io/v1alpha1`): the
//! gateway's Envoy set up as `airouter envoy` sets up its own, where Envoy Gateway's API reaches.
//! The `Gateway` names it in `spec.infrastructure.parametersRef`.
//!
//! - `spec.bootstrap` with `type: Merge`: a bootstrap (`value`, YAML; JSON is YAML) that Envoy
//!   Gateway merges into its own as protobufs merge, holding the `stats_config` of
//!   [`super::stats_config`] (the filter's stats tags and histogram buckets), so the gateway's
//!   `/stats/prometheus` shows the filter's series as `airouter envoy`'s Envoy does.
//! - With `[tracing]`, `spec.telemetry.tracing`: an `OpenTelemetry` `provider` at the TOML's
//!   `endpoint` (`backendRefs` naming the Service when the host is a cluster Service name:
//!   `NAME`, `NAME.NAMESPACE`, `NAME.NAMESPACE.svc` or `NAME.NAMESPACE.svc.cluster.local`;
//!   otherwise its `host` and `port`), `samplingRate` (percent) or, for a fractional
//!   percentage, `samplingFraction`, and the GenAI span attributes as `tags` whose values are the
//!   substitution formats reading the filter's state, the very `custom_tags` values of the
//!   rendered bootstrap. `tags` arrived after Envoy Gateway v1.6 (envoyproxy/gateway#7828); the
//!   `customTags` of earlier releases read literals, environment variables and request headers
//!   only, not filter state. The span's `service.name` is Envoy Gateway's (no field sets it).
//!
//! Fields used, as Envoy Gateway's API defines them (`api/v1alpha1/envoyproxy_types.go`,
//! `envoyproxy_tracing_types.go`): `bootstrap.type`, `bootstrap.value`,
//! `telemetry.tracing.provider.type`, `.backendRefs[]` (`name`, `namespace`, `port`), `.host`,
//! `.port`, `telemetry.tracing.samplingRate`, `.samplingFraction` (`numerator`, `denominator`),
//! `.tags`.

use std::net::IpAddr;

use airouter_core::config::{Plan, Tracing};
use airouter_core::telemetry::span;
use serde_json::{json, Map, Value};

use super::{metadata, stats_config, Options, NAME};
use crate::bootstrap::Parts;

/// The `EnvoyProxy` for `plan`, whose Envoy pieces are `parts`.
pub fn envoy_proxy(plan: &Plan, parts: &Parts, o: &Options) -> Result<Value, String> {
    let bootstrap = json!({ "stats_config": stats_config(parts) });
    let mut spec = json!({
        "bootstrap": {
            "type": "Merge",
            "value": serde_json::to_string_pretty(&bootstrap).map_err(|e| e.to_string())?
        }
    });
    if let Some(t) = &plan.tracing {
        spec["telemetry"] = json!({ "tracing": tracing(t, o) });
    }
    Ok(json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyProxy",
        "metadata": metadata(NAME, o),
        "spec": spec
    }))
}

/// `telemetry.tracing` for `[tracing]`.
fn tracing(t: &Tracing, o: &Options) -> Value {
    let mut provider = json!({ "type": "OpenTelemetry" });
    match service(&t.endpoint.host, &o.namespace) {
        Some((name, namespace)) => {
            provider["backendRefs"] =
                json!([{ "name": name, "namespace": namespace, "port": t.endpoint.port }]);
        }
        None => {
            provider["host"] = json!(t.endpoint.host);
            provider["port"] = json!(t.endpoint.port);
        }
    }
    let tags: Map<String, Value> = span::SPAN_ATTRIBUTES
        .iter()
        .map(|(tag, property)| ((*tag).to_string(), json!(span::format_of(property))))
        .collect();
    let mut tracing = json!({ "provider": provider, "tags": tags });
    let percent = t.sampling_percent;
    if percent.fract() == 0.0 {
        tracing["samplingRate"] = json!(percent as u32);
    } else {
        // Hundredths of a percent: the TOML's precision that matters for sampling.
        tracing["samplingFraction"] =
            json!({ "numerator": (percent * 100.0).round() as u32, "denominator": 10000 });
    }
    tracing
}

/// The Service (name, namespace) a cluster DNS name names, if `host` is one; a bare name is in
/// `namespace`.
fn service(host: &str, namespace: &str) -> Option<(String, String)> {
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] => Some(((*name).into(), namespace.into())),
        [name, ns] | [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => {
            Some(((*name).into(), (*ns).into()))
        }
        _ => None,
    }
}
