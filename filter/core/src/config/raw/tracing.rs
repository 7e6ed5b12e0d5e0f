//! `[tracing]` as written: where Envoy and the sidecar send their OpenTelemetry spans (an OTLP
//! receiver over gRPC), the service name they carry and how many requests start a trace.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTracing {
    /// The OTLP/gRPC receiver, `host:port` (an OpenTelemetry Collector's `4317`): Envoy's
    /// OpenTelemetry tracer and the sidecar export their spans there.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub endpoint: Spanned<String>,
    /// The `service.name` of Envoy's spans (default `airouter`); the sidecar's spans carry it
    /// with `-sidecar` appended. Letters, digits, `.`, `_` and `-`, at most 64.
    #[serde(default = "default_service_name")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub service_name: Spanned<String>,
    /// Percent of the requests without a sampling decision that start a trace (default 100,
    /// between 0 and 100). A request whose `traceparent` says it is sampled is traced anyway.
    #[serde(default = "default_sampling")]
    #[cfg_attr(feature = "schema", schemars(with = "f64"))]
    pub sampling: Spanned<f64>,
}

fn default_service_name() -> Spanned<String> {
    Spanned::new(0..0, "airouter".into())
}
fn default_sampling() -> Spanned<f64> {
    Spanned::new(0..0, 100.0)
}

/// `[telemetry]`: the GenAI measurements the filter takes of each routed request. The section
/// alone turns both on; each can be turned off. Without it (and without `[tracing]`) the filter
/// reads no clock and sets no filter state for them, so a request costs what it did before.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTelemetry {
    /// The GenAI histograms in Envoy's stats (`gen_ai.client.token.usage`,
    /// `gen_ai.server.request.duration`, time to first token, time per output token), tagged
    /// by configured model, backend and key name (default true).
    #[serde(default = "yes")]
    pub metrics: bool,
    /// The GenAI fields of Envoy's JSON access log: operation, model, backend model, key name,
    /// tokens, finish reason (default true).
    #[serde(default = "yes")]
    pub access_log: bool,
}

fn yes() -> bool {
    true
}
