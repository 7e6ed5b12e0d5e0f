//! The client request's context carried to Triton as gRPC metadata: Envoy's `x-request-id` and
//! the W3C trace context (`traceparent`, `tracestate`).

/// Request context passed to Triton as gRPC metadata.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    /// Envoy's `x-request-id`; empty when the request had none.
    pub request_id: String,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// A gRPC request carrying the request id and W3C trace context as metadata.
pub fn with_trace<T>(message: T, trace: &TraceContext) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    let md = req.metadata_mut();
    let pairs = [
        (
            "x-request-id",
            Some(trace.request_id.as_str()).filter(|s| !s.is_empty()),
        ),
        ("traceparent", trace.traceparent.as_deref()),
        ("tracestate", trace.tracestate.as_deref()),
    ];
    for (key, value) in pairs {
        if let Some(v) = value.and_then(|v| v.parse().ok()) {
            md.insert(key, v);
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_and_request_id_travel_as_grpc_metadata() {
        let trace = TraceContext {
            request_id: "abc-123".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        };
        let req = with_trace((), &trace);
        let md = req.metadata();
        assert_eq!(
            md.get("x-request-id").and_then(|v| v.to_str().ok()),
            Some("abc-123")
        );
        assert_eq!(
            md.get("traceparent").and_then(|v| v.to_str().ok()),
            trace.traceparent.as_deref()
        );
        assert!(md.get("tracestate").is_none());
    }
}
