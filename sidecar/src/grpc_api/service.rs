//! The `airouter.v1.Router` service: each call checked and built into its OpenAI request
//! (`request`), sent to Envoy's OpenAI listener (`upstream`) within the call's deadline
//! (`deadline`), and its answer read back (`response`) or its refusal mapped (`status`).
//!
//! A streamed call answers once the listener's response headers are in, so a refusal (401, 404,
//! 429, ...) is the call's status rather than a stream that ends at once. Its events are then
//! relayed by a task that stops, dropping the upstream response and so closing its connection,
//! as soon as the client goes away or the deadline passes.
//!
//! With `[tracing]` each call has a span of the sidecar's (`crate::otel`), continuing the
//! caller's trace context, which the OpenAI request carries on instead; it ends with the call.

use std::pin::Pin;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Response as HttpResponse;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use airouter_core::api::Api;
use airouter_core::config::url::BaseUrl;
use airouter_core::telemetry::operation_name;

use super::limits::SizeLimits;
use super::proto::router_server::{Router, RouterServer};
use super::proto::{GenerationRequest, GenerationResponse};
use super::request::{self, OpenAiApi, OpenAiRequest};
use super::response::{self, StreamReader};
use super::upstream::{self, Upstream};
use super::{deadline, status};
use crate::otel;

/// Responses of a streamed call waiting to be sent, at most.
const STREAM_BUFFER: usize = 16;

/// The service: a client of Envoy's OpenAI listener, nothing else (no state between calls).
pub struct RouterApi {
    upstream: Upstream,
    /// The OpenAI listener's body limit, in bytes: a larger OpenAI request is refused here.
    max_request_bytes: usize,
}

impl RouterApi {
    /// The service calling the OpenAI listener at `openai` (see [`Upstream::new`]), whose body
    /// limit is `max_request_bytes`.
    pub fn new(openai: &BaseUrl, listener_idle_ms: u64, max_request_bytes: usize) -> Self {
        RouterApi {
            upstream: Upstream::new(openai, listener_idle_ms),
            max_request_bytes,
        }
    }

    /// The service as tonic serves it, taking request messages up to the OpenAI listener's body
    /// limit (a larger call could not be sent on anyway; the OpenAI request a smaller one
    /// becomes is checked too) and sending answers up to what the sidecar reads whole; a
    /// message over either is `RESOURCE_EXHAUSTED` ([`SizeLimits`]).
    pub fn into_server(self) -> SizeLimits<RouterServer<RouterApi>> {
        let limit = self.max_request_bytes;
        let server = RouterServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(upstream::MAX_ANSWER_BYTES);
        SizeLimits::new(server, limit)
    }

    /// Sends the call's request; the listener's response if it is a success (and not compressed:
    /// `INTERNAL`), else the status its answer maps to.
    async fn answer(
        &self,
        openai: OpenAiRequest,
        metadata: &tonic::metadata::MetadataMap,
        stream: bool,
    ) -> Result<HttpResponse<Incoming>, Status> {
        let resp = self.upstream.send(openai, metadata, stream).await?;
        if resp.status().is_success() {
            if is_encoded(&resp) {
                return Err(status::unreadable_answer(
                    "it is compressed, which the sidecar did not ask for",
                ));
            }
            return Ok(resp);
        }
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = upstream::read_all(resp).await.unwrap_or_default();
        Err(status::from_http(code, &headers, &body))
    }
}

/// The stream a streamed call answers with.
type ResponseStream = Pin<Box<dyn Stream<Item = Result<GenerationResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Router for RouterApi {
    async fn route_request(
        &self,
        call: Request<GenerationRequest>,
    ) -> Result<Response<GenerationResponse>, Status> {
        let until = deadline::of(call.metadata());
        let openai = request::build(call.get_ref(), false)?.within(self.max_request_bytes)?;
        let (span, metadata) = traced(&call, &openai);
        let work = async {
            let resp = self.answer(openai, &metadata, false).await?;
            response::whole(&upstream::read_all(resp).await?)
        };
        let answered = deadline::within(until, work).await;
        if let Some(span) = span {
            span.rpc_status(answered.as_ref().err().map_or(0, |s| s.code() as i32));
        }
        answered.map(Response::new)
    }

    type StreamingRouteRequestStream = ResponseStream;

    async fn streaming_route_request(
        &self,
        call: Request<GenerationRequest>,
    ) -> Result<Response<ResponseStream>, Status> {
        let until = deadline::of(call.metadata());
        let openai = request::build(call.get_ref(), true)?.within(self.max_request_bytes)?;
        let (span, metadata) = traced(&call, &openai);
        let resp = deadline::within(until, self.answer(openai, &metadata, true)).await;
        if let Some(span) = &span {
            // The call's status as its answer starts (a stream broken off later ends in an
            // error the span does not show).
            span.rpc_status(resp.as_ref().err().map_or(0, |s| s.code() as i32));
        }
        let resp = resp?;
        if !is_event_stream(&resp) {
            // Answered whole after all: its text, then its end.
            let whole = deadline::within(until, async {
                response::whole(&upstream::read_all(resp).await?)
            })
            .await?;
            let (text, end) = response::split_whole(whole);
            let items = text.into_iter().chain([end]).map(Ok);
            return Ok(Response::new(Box::pin(tokio_stream::iter(items))));
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            relay(resp, tx, until).await;
            // The call's span ends with its stream.
            drop(span);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Whether `resp` has a content coding (`gzip`, ...): the request asked for none, so its body is
/// not the text it should be.
fn is_encoded(resp: &HttpResponse<Incoming>) -> bool {
    resp.headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"))
}

/// The call's span (with `[tracing]`) and the metadata to send on with its trace context.
fn traced(
    call: &Request<GenerationRequest>,
    openai: &OpenAiRequest,
) -> (Option<otel::ServerSpan>, tonic::metadata::MetadataMap) {
    let api = match openai.api {
        OpenAiApi::Chat => Api::Chat,
        OpenAiApi::Completions => Api::Completions,
    };
    let operation = operation_name(api);
    otel::call_span(call.metadata(), operation, &call.get_ref().model)
}

/// Whether `resp` is server-sent events (else a whole answer).
fn is_event_stream(resp: &HttpResponse<Incoming>) -> bool {
    resp.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// Sends the responses read from `resp`'s events to `tx` until the stream ends, the client
/// leaves (`tx` closes) or `until` passes; returning drops `resp`, closing its connection.
async fn relay(
    resp: HttpResponse<Incoming>,
    tx: mpsc::Sender<Result<GenerationResponse, Status>>,
    until: Option<Instant>,
) {
    let mut body = resp.into_body();
    let mut reader = StreamReader::default();
    let expired = async {
        match until {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        let frame = tokio::select! {
            () = tx.closed() => return,
            () = &mut expired => {
                let _ = tx.send(Err(deadline::exceeded())).await;
                return;
            }
            frame = body.frame() => frame,
        };
        let out = match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(data) => reader.push(&data),
                Err(_) => Vec::new(), // trailers
            },
            Some(Err(e)) => {
                tracing::warn!("grpc_api: the OpenAI listener broke off a stream: {e}");
                reader.abandon();
                vec![Err(status::answer_cut_short())]
            }
            None => reader.finish().into_iter().collect(),
        };
        for item in out {
            if tx.send(item).await.is_err() {
                return;
            }
        }
        if reader.is_ended() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
