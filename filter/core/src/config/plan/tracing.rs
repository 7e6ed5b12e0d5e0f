//! Tracing as compiled (`[tracing]`): the OTLP receiver Envoy's tracer and the sidecar export
//! spans to, their service name and the sampling rate of requests that arrive without a decision.

use super::grpc_api::Endpoint;

/// OpenTelemetry tracing (`[tracing]`): Envoy's OpenTelemetry tracer on the OpenAI listener,
/// with the filter's GenAI attributes on its span, and the sidecar's own spans, joined through
/// the W3C `traceparent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// The OTLP/gRPC receiver (`host:port`).
    pub endpoint: Endpoint,
    /// `service.name` of Envoy's spans; the sidecar's is this with `-sidecar` appended.
    pub service_name: String,
    /// Percent (0 to 100) of the requests without a sampling decision that are traced.
    pub sampling_percent: f64,
}

impl Tracing {
    /// The sidecar's `service.name`.
    pub fn sidecar_service_name(&self) -> String {
        format!("{}-sidecar", self.service_name)
    }
}

/// The GenAI measurements of each routed request (`[telemetry]`); all off without the section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// Record the GenAI histograms.
    pub metrics: bool,
    /// Set the filter state Envoy's JSON access log reads.
    pub access_log: bool,
}
