//! `POST /v1/chat/completions` and legacy `POST /v1/completions` on a Triton LLM: one
//! `ModelStreamInfer` per client request (one Triton request per choice, correlated by id),
//! whatever the client asked: streamed to a streaming client as SSE, gathered into one response
//! otherwise.
//!
//! The first event of the [`ModelStream`] decides whether the client gets an HTTP error (failure
//! before any text) or a 200 stream, in which a later failure becomes an SSE error event followed
//! by a clean end.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use airouter_core::config::TritonModel;
use airouter_core::errors::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{json_response, Body};
use crate::templates::ChatTemplate;
use crate::translate::chat_request;
use crate::translate::kserve_error;
use crate::translate::kserve_request::{self, Extras};
use crate::translate::kserve_response::{Event, StreamDecoder};
use crate::translate::openai_response::{Aggregate, Completion, StreamEncoder};
use crate::triton::client::TritonBackend;
use crate::triton::stream::ModelStream;
use crate::triton::trace::TraceContext;

/// One chat or completion request for a Triton model.
pub struct Job<'a> {
    pub backend: &'a TritonBackend,
    pub triton: &'a TritonModel,
    pub template: Option<&'a ChatTemplate>,
    pub triton_model: &'a str,
    pub client_model: &'a str,
    /// Chat completions; else legacy completions.
    pub chat: bool,
    pub trace: TraceContext,
}

/// Answers one request, or fails before anything was sent.
pub async fn handle(job: Job<'_>, body: &Value) -> Result<Response<Body>, ApiError> {
    let req = if job.chat {
        chat_request::chat(body, job.triton.max_tokens)?
    } else {
        chat_request::completion(body, job.triton.max_tokens)?
    };
    let prompts = if job.chat {
        let template = job
            .template
            .ok_or_else(|| ApiError::internal("the model has no chat template"))?;
        let prompt = template.render(&req.messages).map_err(|e| {
            ApiError::bad_request(format!(
                "The conversation cannot be formatted for this model: {}",
                e.0
            ))
        })?;
        vec![prompt]
    } else {
        req.prompts.clone()
    };
    let info = job
        .backend
        .model_info(job.triton_model)
        .await
        .map_err(|s| kserve_error::from_status(&s, job.client_model))?;
    kserve_request::check(job.triton.family, &info).map_err(|e| {
        ApiError::internal(&format!(
            "model `{}` cannot be served as `{}`: {}",
            job.client_model,
            job.triton.family.config_name(),
            e.0
        ))
    })?;
    let id = if job.trace.request_id.is_empty() {
        format!("{:x}", now_nanos())
    } else {
        job.trace.request_id.replace('-', "")
    };
    let mut requests = Vec::new();
    let mut extras = Extras::default();
    let mut choice_prompts = Vec::new();
    for prompt in &prompts {
        for k in 0..req.n {
            let mut sampling = req.sampling.clone();
            sampling.seed = sampling.seed.map(|s| s.wrapping_add(u64::from(k)));
            let choice = choice_prompts.len();
            let (r, e) = kserve_request::build(
                job.triton.family,
                &info,
                job.triton_model,
                &format!("{id}-{choice}"),
                prompt,
                &sampling,
                info.decoupled,
            );
            requests.push(r);
            extras = e;
            choice_prompts.push(prompt.clone());
        }
    }
    let decoder = StreamDecoder::new(
        &id,
        job.client_model,
        job.triton,
        &req,
        extras,
        info.decoupled,
        choice_prompts.clone(),
    );
    let driver = ModelStream {
        client: job.backend.client(),
        requests,
        decoder,
        trace: job.trace.clone(),
        client_model: job.client_model.to_string(),
        family: job.triton.family,
    };
    let mut rx = driver.start();
    let first = rx
        .recv()
        .await
        .ok_or_else(|| ApiError::internal("the Triton driver stopped"))?;
    if let Event::Failed(e) = first {
        return Err(e);
    }
    let out = Completion {
        chat: job.chat,
        id: if job.chat {
            format!("chatcmpl-{id}")
        } else {
            format!("cmpl-{id}")
        },
        created: now_nanos() / 1_000_000_000,
        model: job.client_model.to_string(),
        choices: choice_prompts.len(),
        echo: req.echo.then_some(choice_prompts),
    };
    if req.stream {
        Ok(stream_response(
            StreamEncoder::new(out, req.include_usage),
            first,
            rx,
        ))
    } else {
        aggregate(Aggregate::new(out), first, rx).await
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A 200 `text/event-stream` whose frames a task writes as the events come.
fn stream_response(
    mut encoder: StreamEncoder,
    first: Event,
    mut rx: mpsc::Receiver<Event>,
) -> Response<Body> {
    let (btx, brx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(32);
    tokio::spawn(async move {
        let send = |b: Bytes| {
            let btx = btx.clone();
            async move { btx.send(Ok(Frame::data(b))).await.is_ok() }
        };
        let mut next = Some(first);
        // `or_else`-style: only wait on the channel once the first event is used.
        while let Some(event) = match next.take() {
            Some(e) => Some(e),
            None => rx.recv().await,
        } {
            for f in encoder.encode(event) {
                if !send(f).await {
                    return; // The client left; dropping `rx` stops the driver.
                }
            }
            if encoder.is_ended() {
                break;
            }
        }
        for f in encoder.close() {
            let _ = send(f).await;
        }
    });
    let body = StreamBody::new(ReceiverStream::new(brx)).boxed();
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// Waits for the whole answer; a failure before its end is an HTTP error.
async fn aggregate(
    mut answer: Aggregate,
    first: Event,
    mut rx: mpsc::Receiver<Event>,
) -> Result<Response<Body>, ApiError> {
    let mut next = Some(first);
    while let Some(event) = match next.take() {
        Some(e) => Some(e),
        None => rx.recv().await,
    } {
        if answer.push(event)? {
            break;
        }
    }
    Ok(json_response(200, &answer.finish()?))
}

#[cfg(test)]
mod tests;
