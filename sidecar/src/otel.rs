//! The sidecar's own OpenTelemetry spans (`[tracing]`): an OTLP/gRPC exporter (the
//! `opentelemetry-otlp` crate over tonic, batched on its own thread) to the receiver Envoy
//! exports to, under the service name `SERVICE-sidecar`.
//!
//! A request from Envoy (a Triton model's OpenAI request) or a call of the gRPC client API gets
//! a server span continuing the W3C trace context it came with (`traceparent`, `tracestate`:
//! Envoy's span, or the gRPC client's), and what the sidecar sends on (Triton's gRPC metadata,
//! the OpenAI request to Envoy) carries the sidecar span's context, so one trace runs client →
//! Envoy → sidecar → Triton. The span follows the GenAI conventions' naming
//! (`{gen_ai.operation.name} {gen_ai.request.model}`) and attributes, with client-visible model
//! names and configured backend names only; never a key. Sampling follows the parent's
//! decision (Envoy's, per `[tracing] sampling`); a request without a parent is traced.
//!
//! Without `[tracing]` nothing here runs and the trace context passes through unchanged (the
//! process-wide provider stays OpenTelemetry's no-op one).

use std::collections::HashMap;
use std::sync::OnceLock;

use airouter_core::api::Api;
use airouter_core::config::Tracing;
use airouter_core::telemetry::operation_name;
use http_body_util::BodyExt;
use opentelemetry::global::{self, BoxedSpan};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tonic::metadata::MetadataMap;

use crate::serve::Body;

/// The instrumentation scope of the sidecar's spans.
const SCOPE: &str = "airouter-sidecar";

/// Set once [`start`] has installed the exporter: spans are made only then.
static EXPORTING: OnceLock<()> = OnceLock::new();

/// Whether the sidecar exports spans (`[tracing]`).
pub fn exporting() -> bool {
    EXPORTING.get().is_some()
}

/// Starts exporting the sidecar's spans. Must run inside the Tokio runtime (tonic's channel
/// is made there); the returned provider flushes what is left when shut down.
pub fn start(t: &Tracing) -> Result<SdkTracerProvider, String> {
    let endpoint = format!("http://{}:{}", host_of(&t.endpoint.host), t.endpoint.port);
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("tracing.endpoint: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(t.sidecar_service_name())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    global::set_tracer_provider(provider.clone());
    let _ = EXPORTING.set(());
    Ok(provider)
}

/// An IPv6 address in brackets, as a URL writes it.
fn host_of(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// One server span of the sidecar, ended when dropped.
pub struct ServerSpan {
    cx: Context,
}

impl ServerSpan {
    /// A span named `name` continuing the trace context `incoming` looks up (a header or
    /// metadata map), with `attributes`.
    pub fn start(incoming: &dyn Extractor, name: String, attributes: Vec<KeyValue>) -> Self {
        Self::start_with(&global::tracer(SCOPE), incoming, name, attributes)
    }

    fn start_with(
        tracer: &global::BoxedTracer,
        incoming: &dyn Extractor,
        name: String,
        attributes: Vec<KeyValue>,
    ) -> Self {
        let parent = TraceContextPropagator::new().extract(&Wrap(incoming));
        let span: BoxedSpan = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        ServerSpan {
            cx: parent.with_span(span),
        }
    }

    /// The W3C `traceparent` and `tracestate` naming this span as the parent, for what the
    /// sidecar sends on.
    pub fn context_headers(&self) -> (Option<String>, Option<String>) {
        let mut out: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&self.cx, &mut out);
        let state = out.remove("tracestate").filter(|s| !s.is_empty());
        (out.remove("traceparent"), state)
    }

    /// Notes the answer's status (an error status marks the span failed).
    pub fn answered(&self, status: u16) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 400 {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(format!("HTTP {status}")));
        }
    }
}

impl ServerSpan {
    /// `response` with this span kept alive by its body, so the span ends with the body (a
    /// stream's last event, or a client that left).
    pub fn hold(self, response: hyper::Response<Body>) -> hyper::Response<Body> {
        response.map(|body| {
            body.map_frame(move |frame| {
                let _ = &self;
                frame
            })
            .boxed()
        })
    }

    /// Notes a gRPC call's status code (0: OK; any other marks the span failed).
    pub fn rpc_status(&self, code: i32) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        if code != 0 {
            span.set_attribute(KeyValue::new("error.type", code.to_string()));
            span.set_status(Status::error(format!("gRPC status {code}")));
        }
    }

    /// `metadata` with this span's trace context in place of the caller's, to send on.
    pub fn onto(&self, metadata: &MetadataMap) -> MetadataMap {
        let mut out = metadata.clone();
        let (parent, state) = self.context_headers();
        for (key, value) in [("traceparent", parent), ("tracestate", state)] {
            out.remove(key);
            if let Some(v) = value.and_then(|v| v.parse().ok()) {
                out.insert(key, v);
            }
        }
        out
    }
}

/// A Triton model's request from Envoy: its span (when exporting) for `api` on the
/// client-visible `model`, served by the Triton backend `backend`.
pub fn request_span(
    headers: &hyper::HeaderMap,
    api: Api,
    model: &str,
    backend: &str,
) -> Option<ServerSpan> {
    if !exporting() {
        return None;
    }
    let op = operation_name(api);
    Some(ServerSpan::start(
        &Headers(headers),
        span_name(op, model),
        gen_ai_attributes(op, model, backend),
    ))
}

/// A call of the gRPC client API: its span (when exporting) for `operation` on `model`, and the
/// metadata to send on (the span's trace context, or the caller's unchanged).
pub fn call_span(
    metadata: &MetadataMap,
    operation: &str,
    model: &str,
) -> (Option<ServerSpan>, MetadataMap) {
    if !exporting() {
        return (None, metadata.clone());
    }
    let mut attributes = gen_ai_attributes(operation, model, "airouter");
    attributes.push(KeyValue::new("rpc.system", "grpc"));
    let span = ServerSpan::start(&Metadata(metadata), span_name(operation, model), attributes);
    let forwarded = span.onto(metadata);
    (Some(span), forwarded)
}

/// gRPC call metadata as the propagator reads it.
pub struct Metadata<'a>(pub &'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

/// The GenAI attributes of a sidecar span: operation, client-visible model and the backend.
pub fn gen_ai_attributes(operation: &str, model: &str, backend: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("gen_ai.operation.name", operation.to_string()),
        KeyValue::new("gen_ai.request.model", model.to_string()),
        KeyValue::new("gen_ai.response.model", model.to_string()),
        KeyValue::new("gen_ai.provider.name", backend.to_string()),
    ]
}

/// The span name the GenAI conventions give: `{operation} {model}`.
pub fn span_name(operation: &str, model: &str) -> String {
    format!("{operation} {model}")
}

/// `&dyn Extractor` as an `Extractor` (the propagator takes a sized one).
struct Wrap<'a>(&'a dyn Extractor);

impl Extractor for Wrap<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// An HTTP request's headers as the propagator reads them.
pub struct Headers<'a>(pub &'a hyper::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(hyper::header::HeaderName::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;

    #[test]
    fn a_span_continues_the_incoming_trace_and_names_itself_the_parent() {
        // A provider of this test's own: the global one stays a no-op for the other tests.
        let provider = SdkTracerProvider::builder().build();
        let tracer = global::BoxedTracer::new(Box::new(provider.tracer(SCOPE)));
        let mut headers = hyper::HeaderMap::new();
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", incoming.parse().unwrap());
        let span = ServerSpan::start_with(
            &tracer,
            &Headers(&headers),
            span_name("chat", "llama"),
            gen_ai_attributes("chat", "llama", "triton"),
        );
        let (parent, _) = span.context_headers();
        let parent = parent.unwrap();
        // Same trace, sampled, a new span id (the sidecar's).
        assert!(
            parent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{parent}"
        );
        assert!(parent.ends_with("-01"), "{parent}");
        assert!(!parent.contains("00f067aa0ba902b7"), "{parent}");
        span.answered(200);
        let mut metadata = MetadataMap::new();
        metadata.insert("traceparent", incoming.parse().unwrap());
        metadata.insert("authorization", "Bearer k".parse().unwrap());
        let sent = span.onto(&metadata);
        assert_eq!(sent.get("traceparent").unwrap().to_str().unwrap(), parent);
        assert_eq!(sent.get("authorization").unwrap(), "Bearer k");
        // Without [tracing] nothing is made and the caller's context passes unchanged.
        let (none, same) = call_span(&metadata, "chat", "m");
        assert!(none.is_none());
        assert_eq!(same.get("traceparent").unwrap().to_str().unwrap(), incoming);
    }
}
