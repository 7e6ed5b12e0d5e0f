//! The HTTP client a call's OpenAI request goes out with, to Envoy's OpenAI listener: hyper's
//! pooled HTTP/1.1 client. The call's credentials go with it (the gRPC metadata `authorization`
//! becomes the `Authorization` header; none, and the listener answers 401), and so does its W3C
//! trace context. Dropping a request or its response body closes its connection, which is how
//! a cancelled call cancels its request: Envoy sees its client leave and resets the backend's.

use std::time::Duration;

use airouter_core::config::url::BaseUrl;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::request::OpenAiRequest;
use super::status::{answer_cut_short, listener_unavailable, no_answer};

/// Call metadata passed on as request headers: the credentials, the trace context.
const FORWARDED: [&str; 3] = ["authorization", "traceparent", "tracestate"];

/// Largest answer read whole (a non-streamed answer, an error body), in bytes.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Longest an idle pooled connection is kept when the listener has no idle timeout.
const MAX_POOL_IDLE: Duration = Duration::from_secs(30);

/// Envoy's OpenAI listener, as the API calls it.
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `host:port` of the listener, for the request URI (and the `Host` hyper derives from it).
    authority: String,
}

impl Upstream {
    /// A client of the listener at `openai` whose idle timeout is `listener_idle_ms` (0: none):
    /// idle connections are let go at half of it, so Envoy never closes one under a request.
    pub fn new(openai: &BaseUrl, listener_idle_ms: u64) -> Self {
        let idle = match listener_idle_ms {
            0 => MAX_POOL_IDLE,
            ms => Duration::from_millis(ms / 2).min(MAX_POOL_IDLE),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle)
            .build(connector);
        let authority = if openai.host.contains(':') {
            format!("[{}]:{}", openai.host, openai.port)
        } else {
            format!("{}:{}", openai.host, openai.port)
        };
        Upstream { client, authority }
    }

    /// Sends `req` with what `metadata` carries for it; the response once its headers arrive.
    /// `UNAVAILABLE` when the listener cannot be reached, or closes the connection unanswered.
    pub async fn send(
        &self,
        req: OpenAiRequest,
        metadata: &MetadataMap,
        stream: bool,
    ) -> Result<Response<Incoming>, Status> {
        let uri = format!("http://{}{}", self.authority, req.api.path());
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut builder = Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, accept)
            .header(hyper::header::USER_AGENT, "airouter-grpc-api");
        for name in FORWARDED {
            if let Some(value) = metadata.get(name).and_then(|v| v.to_str().ok()) {
                builder = builder.header(name, value);
            }
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body)))
            .map_err(|e| Status::internal(format!("the request could not be made: {e}")))?;
        self.client.request(request).await.map_err(|e| {
            tracing::warn!(
                "grpc_api: the OpenAI listener at {} did not answer: {e}",
                self.authority
            );
            if e.is_connect() {
                listener_unavailable()
            } else {
                no_answer()
            }
        })
    }
}

/// The whole body of `response`, at most [`MAX_ANSWER_BYTES`].
pub async fn read_all(response: Response<Incoming>) -> Result<Bytes, Status> {
    match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Status::resource_exhausted(
            format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
        )),
        Err(e) => {
            tracing::warn!("grpc_api: the OpenAI listener broke off an answer: {e}");
            Err(answer_cut_short())
        }
    }
}
