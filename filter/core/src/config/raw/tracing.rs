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
