//! The Envoy pieces of `[tracing]` and `[telemetry]`: Envoy's OpenTelemetry tracer on the OpenAI
//! listener (its span continuing a client's W3C `traceparent`, sampled as configured, carrying
//! the GenAI attributes the filter sets as filter state, through `custom_tags` whose `value` is
//! a substitution format, as Envoy 1.40 has it), the cluster of the OTLP/gRPC receiver, the
//! GenAI histograms' bucket boundaries, and the GenAI fields of the JSON access log.
//!
//! Envoy applies the custom tags when it finishes the span, which (as measured with Envoy 1.40)
//! is before the filter's log callback: the filter sets the attributes when the response ends.

use airouter_core::config::{Plan, Tracing};
use airouter_core::contract;
use airouter_core::telemetry::{histograms, span};
use serde_json::{json, Map, Value};

/// The HCM `tracing` block of a listener: with `gen_ai`, the filter's GenAI attributes (the
/// OpenAI listener); without, Envoy's own (the gRPC client API's listener, which the filter
/// does not run on: its span is the parent of the sidecar's, whose request makes the OpenAI
/// listener's span).
pub fn hcm_tracing(t: &Tracing, gen_ai: bool) -> Value {
    let custom_tags: Vec<Value> = span::SPAN_ATTRIBUTES
        .iter()
        .filter(|_| gen_ai)
        .map(|(tag, property)| json!({ "tag": tag, "value": span::format_of(property) }))
        .collect();
    json!({
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {
                    "envoy_grpc": { "cluster_name": contract::TRACING_CLUSTER },
                    "timeout": "1s"
                },
                "service_name": t.service_name
            }
        },
        "random_sampling": { "value": t.sampling_percent },
        // A client's `x-client-trace-id` would force a trace (Envoy's default is 100%): only the
        // operator's sampling and a client's `traceparent` flag decide.
        "client_sampling": { "value": 0 },
        "spawn_upstream_span": false,
        "custom_tags": custom_tags
    })
}

/// The OTLP/gRPC receiver's cluster (HTTP/2).
pub fn cluster(t: &Tracing) -> Value {
    let host = &t.endpoint.host;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    json!({
        "name": contract::TRACING_CLUSTER,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        },
        "load_assignment": {
            "cluster_name": contract::TRACING_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": super::socket(host, t.endpoint.port)
            } }] }]
        }
    })
}

/// `stats_config.histogram_bucket_settings`: the conventions' boundaries for the filter's
/// GenAI histograms (Envoy names a wasm filter's stats `wasmcustom.NAME`).
pub fn histogram_buckets() -> Vec<Value> {
    histograms::BUCKETS
        .iter()
        .map(|(name, buckets)| {
            json!({
                "match": { "prefix": format!("wasmcustom.{name}.") },
                "buckets": buckets
            })
        })
        .collect()
}

/// The access log's GenAI fields and the route the filter chose, with `[telemetry] access_log`.
pub fn access_log_fields(plan: &Plan, fields: &mut Map<String, Value>) {
    if !plan.telemetry.access_log {
        return;
    }
    fields.insert(
        "route".into(),
        json!(span::format_of(contract::ROUTE_PROPERTY)),
    );
    for (field, property) in span::ACCESS_LOG_FIELDS {
        fields.insert(field.into(), json!(span::format_of(property)));
    }
    // A failover model's attempts as its upstream filter noted them: `backend\tmodel\tstatus`
    // per line.
    fields.insert(
        "failover_attempts".into(),
        json!(span::format_of(contract::SESSION_ATTEMPTS_PROPERTY)),
    );
}
