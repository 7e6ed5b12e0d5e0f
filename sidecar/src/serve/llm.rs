//! Chat and legacy completions on a Triton LLM: one `ModelStreamInfer` per client request (one
//! Triton request per choice, correlated by id), whatever the client asked: streamed to a
//! streaming client as SSE, gathered into one response otherwise.
//!
//! A driver task turns Triton's responses into [`Event`]s; the first event decides whether the
//! client gets an HTTP error (failure before any text) or a 200 stream, in which a later failure
//! becomes an SSE error event followed by a clean end. A client that goes away drops the channel,
//! which ends the driver and cancels the gRPC stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use airouter_core::config::{StreamText, TritonFamily, TritonModel};
use airouter_core::errors::{envelope, ApiError};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::{estimate_tokens, json_response, status, with_trace, Body, TraceContext};
use crate::templates::ChatTemplate;
use crate::translate::llm_request::{self, Extras, Sampling};
use crate::translate::llm_response;
use crate::translate::openai_request::{self, LlmRequest};
use crate::translate::text_stream::TextAssembler;
use crate::triton::client::{ModelInfo, TritonBackend};
use crate::triton::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::triton::pb::ModelInferRequest;

/// One chat or completion request for a Triton model.
pub struct Job<'a> {
    pub backend: &'a TritonBackend,
    pub triton: &'a TritonModel,
    pub template: Option<&'a ChatTemplate>,
    pub triton_model: &'a str,
    pub client_model: &'a str,
    pub chat: bool,
    pub trace: TraceContext,
}

#[derive(Debug)]
enum Event {
    Text { choice: usize, text: String },
    Done { choice: usize, reason: &'static str },
    Usage { prompt: u64, completion: u64 },
    Failed(ApiError),
}

pub async fn handle(job: Job<'_>, body: &Value) -> Result<Response<Body>, ApiError> {
    let req = if job.chat {
        openai_request::chat(body, job.triton.max_tokens)?
    } else {
        openai_request::completion(body, job.triton.max_tokens)?
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
        .map_err(|s| status::from_status(&s, job.client_model))?;
    llm_request::check(job.triton.family, &info).map_err(|e| {
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
            let mut sampling: Sampling = req.sampling.clone();
            sampling.seed = sampling.seed.map(|s| s.wrapping_add(u64::from(k)));
            let choice = choice_prompts.len();
            let (r, e) = llm_request::build(
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
    let driver = Driver {
        client: job.backend.client(),
        info,
        extras,
        id: id.clone(),
        mode: job.triton.stream_text,
        stop_strings: job.triton.stop_strings.clone(),
        max_tokens: u64::from(req.sampling.max_tokens),
        prompts: choice_prompts.clone(),
        prompt_groups: req.n as usize,
        client_model: job.client_model.to_string(),
        trace: job.trace.clone(),
        family: job.triton.family,
    };
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(driver.run(requests, tx));
    let first = rx
        .recv()
        .await
        .ok_or_else(|| ApiError::internal("the Triton driver stopped"))?;
    if let Event::Failed(e) = first {
        return Err(e);
    }
    let out = Output {
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
        Ok(stream_response(out, req, first, rx))
    } else {
        aggregate(out, first, rx).await
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Owns everything the driver task needs.
struct Driver {
    client: GrpcInferenceServiceClient<Channel>,
    info: Arc<ModelInfo>,
    extras: Extras,
    id: String,
    mode: StreamText,
    stop_strings: Vec<String>,
    max_tokens: u64,
    prompts: Vec<String>,
    prompt_groups: usize,
    client_model: String,
    trace: TraceContext,
    family: TritonFamily,
}

struct ChoiceState {
    text: TextAssembler,
    /// The text sent so far, for token estimates.
    produced: String,
    reported_tokens: Option<u64>,
    input_tokens: Option<u64>,
    done: bool,
}

/// The client went away: stop quietly.
struct Gone;

impl Driver {
    async fn run(mut self, requests: Vec<ModelInferRequest>, tx: mpsc::Sender<Event>) {
        match self.drive(requests, &tx).await {
            Ok(Ok(())) | Ok(Err(Gone)) => {}
            Err(e) => {
                let _ = tx.send(Event::Failed(e)).await;
            }
        }
    }

    async fn drive(
        &mut self,
        requests: Vec<ModelInferRequest>,
        tx: &mpsc::Sender<Event>,
    ) -> Result<Result<(), Gone>, ApiError> {
        let n = requests.len();
        let model = self.client_model.clone();
        let (req_tx, req_rx) = mpsc::channel(n.max(1));
        for r in requests {
            req_tx
                .send(r)
                .await
                .map_err(|_| ApiError::internal("could not queue the Triton request"))?;
        }
        let mut stream = self
            .client
            .model_stream_infer(with_trace(ReceiverStream::new(req_rx), &self.trace))
            .await
            .map_err(|s| status::from_status(&s, &model))?
            .into_inner();
        let mut choices: Vec<ChoiceState> = self
            .prompts
            .iter()
            .map(|p| ChoiceState {
                text: TextAssembler::new(
                    self.mode,
                    self.extras.echoes_prompt.then(|| p.clone()),
                    self.stop_strings.clone(),
                ),
                produced: String::new(),
                reported_tokens: None,
                input_tokens: None,
                done: false,
            })
            .collect();
        let mut remaining = n;
        while remaining > 0 {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Err(ApiError::with_status(
                        502,
                        "Triton ended the stream before the answer was complete.".into(),
                        Some("bad_upstream_response"),
                    ))
                }
                Err(s) => return Err(status::from_status(&s, &model)),
            };
            if !msg.error_message.is_empty() {
                return Err(status::from_stream_error(&msg.error_message, &model));
            }
            let Some(resp) = msg.infer_response else {
                continue;
            };
            let index = self.choice_of(&resp.id, n)?;
            let Some(state) = choices.get_mut(index) else {
                continue;
            };
            if state.done {
                continue;
            }
            let piece =
                llm_response::decode(&resp, self.extras, self.info.decoupled).map_err(|e| {
                    ApiError::with_status(
                        502,
                        format!("Triton sent an unreadable answer: {e}"),
                        Some("bad_upstream_response"),
                    )
                })?;
            if let Some(c) = piece.output_tokens {
                // vLLM reports per response when streaming: the total is the sum.
                *state.reported_tokens.get_or_insert(0) += c;
            }
            if piece.input_tokens.is_some() {
                state.input_tokens = piece.input_tokens;
            }
            let text = state.text.push(&piece.text);
            state.produced.push_str(&text);
            if !text.is_empty()
                && tx
                    .send(Event::Text {
                        choice: index,
                        text,
                    })
                    .await
                    .is_err()
            {
                return Ok(Err(Gone));
            }
            if piece.is_final {
                let tail = state.text.finish();
                state.produced.push_str(&tail);
                if !tail.is_empty()
                    && tx
                        .send(Event::Text {
                            choice: index,
                            text: tail,
                        })
                        .await
                        .is_err()
                {
                    return Ok(Err(Gone));
                }
                let produced = self.completion_tokens(state);
                let reason = match piece.finish_reason.as_deref() {
                    Some("length") => "length",
                    Some(_) => "stop",
                    None if produced >= self.max_tokens => "length",
                    None => "stop",
                };
                state.done = true;
                remaining -= 1;
                if tx
                    .send(Event::Done {
                        choice: index,
                        reason,
                    })
                    .await
                    .is_err()
                {
                    return Ok(Err(Gone));
                }
            }
        }
        drop(req_tx);
        let completion: u64 = choices.iter().map(|c| self.completion_tokens(c)).sum();
        // The prompt counts once per prompt, not once per choice.
        let prompt: u64 = choices
            .iter()
            .zip(&self.prompts)
            .step_by(self.prompt_groups.max(1))
            .map(|(c, p)| c.input_tokens.unwrap_or(estimate_tokens(p) as u64))
            .sum();
        tracing::debug!(family = ?self.family, choices = n, completion, "request done");
        if tx.send(Event::Usage { prompt, completion }).await.is_err() {
            return Ok(Err(Gone));
        }
        Ok(Ok(()))
    }

    /// The model's own count when it gives one; else one token per streamed piece; a model that
    /// answers in one piece gets an estimate from its text.
    fn completion_tokens(&self, c: &ChoiceState) -> u64 {
        match c.reported_tokens {
            Some(n) => n,
            None if self.info.decoupled && c.text.pieces() > 1 => c.text.pieces() as u64,
            None => estimate_tokens(&c.produced) as u64,
        }
    }

    fn choice_of(&self, id: &str, n: usize) -> Result<usize, ApiError> {
        if id.is_empty() && n == 1 {
            return Ok(0);
        }
        id.strip_prefix(&self.id)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|k| *k < n)
            .ok_or_else(|| {
                ApiError::with_status(
                    502,
                    format!("Triton answered an unknown request id `{id}`."),
                    Some("bad_upstream_response"),
                )
            })
    }
}

/// The response envelope shared by every chunk.
struct Output {
    chat: bool,
    id: String,
    created: u64,
    model: String,
    choices: usize,
    /// Legacy completions with `echo`: each choice's prompt, sent before its text.
    echo: Option<Vec<String>>,
}

impl Output {
    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let mut v = json!({ "id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        v
    }

    fn text_choice(&self, index: usize, text: &str, finish: Option<&str>) -> Value {
        if self.chat {
            let delta = if finish.is_some() {
                json!({})
            } else {
                json!({ "content": text })
            };
            json!([{ "index": index, "delta": delta, "logprobs": null, "finish_reason": finish }])
        } else {
            json!([{ "index": index, "text": text, "logprobs": null, "finish_reason": finish }])
        }
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn stream_response(
    out: Output,
    req: LlmRequest,
    first: Event,
    mut rx: mpsc::Receiver<Event>,
) -> Response<Body> {
    let (btx, brx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(32);
    tokio::spawn(async move {
        let send = |b: Bytes| {
            let btx = btx.clone();
            async move { btx.send(Ok(Frame::data(b))).await.is_ok() }
        };
        let mut started = vec![false; out.choices];
        let mut next = Some(first);
        let mut ended_well = false;
        // `or_else`-style: only wait on the channel once the first event is used.
        while let Some(event) = match next.take() {
            Some(e) => Some(e),
            None => rx.recv().await,
        } {
            let mut frames = Vec::new();
            let choice = match &event {
                Event::Text { choice, .. } | Event::Done { choice, .. } => Some(*choice),
                _ => None,
            };
            if let Some(c) = choice {
                if !started.get(c).copied().unwrap_or(true) {
                    if let Some(s) = started.get_mut(c) {
                        *s = true;
                    }
                    if out.chat {
                        let role = json!([{ "index": c, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }]);
                        frames.push(sse(&out.chunk(role, None)));
                    } else if let Some(prompt) = out.echo.as_ref().and_then(|p| p.get(c)) {
                        frames.push(sse(&out.chunk(out.text_choice(c, prompt, None), None)));
                    }
                }
            }
            match event {
                Event::Text { choice, text } => {
                    frames.push(sse(&out.chunk(out.text_choice(choice, &text, None), None)))
                }
                Event::Done { choice, reason } => frames.push(sse(
                    &out.chunk(out.text_choice(choice, "", Some(reason)), None)
                )),
                Event::Usage { prompt, completion } => {
                    if req.include_usage {
                        frames.push(sse(&out.chunk(json!([]), Some(usage(prompt, completion)))));
                    }
                    ended_well = true;
                }
                Event::Failed(e) => {
                    let body = envelope(&e.message, e.kind, e.param, e.code);
                    frames.push(Bytes::from(format!(
                        "data: {}\n\n",
                        String::from_utf8_lossy(&body)
                    )));
                    ended_well = true;
                }
            }
            for f in frames {
                if !send(f).await {
                    return; // The client left; dropping `rx` stops the driver.
                }
            }
            if ended_well {
                break;
            }
        }
        if !ended_well {
            let e = ApiError::internal("the answer stopped unexpectedly");
            let _ = send(Bytes::from(format!(
                "data: {}\n\n",
                String::from_utf8_lossy(&e.body())
            )))
            .await;
        }
        let _ = send(Bytes::from_static(b"data: [DONE]\n\n")).await;
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

async fn aggregate(
    out: Output,
    first: Event,
    mut rx: mpsc::Receiver<Event>,
) -> Result<Response<Body>, ApiError> {
    let mut texts: Vec<String> = match &out.echo {
        Some(prompts) => prompts.clone(),
        None => vec![String::new(); out.choices],
    };
    let mut reasons: Vec<&'static str> = vec!["stop"; out.choices];
    let mut totals = None;
    let mut next = Some(first);
    while let Some(event) = match next.take() {
        Some(e) => Some(e),
        None => rx.recv().await,
    } {
        match event {
            Event::Text { choice, text } => {
                if let Some(t) = texts.get_mut(choice) {
                    t.push_str(&text);
                }
            }
            Event::Done { choice, reason } => {
                if let Some(r) = reasons.get_mut(choice) {
                    *r = reason;
                }
            }
            Event::Usage { prompt, completion } => {
                totals = Some((prompt, completion));
                break;
            }
            Event::Failed(e) => return Err(e),
        }
    }
    let (prompt, completion) =
        totals.ok_or_else(|| ApiError::internal("the answer stopped unexpectedly"))?;
    let choices: Vec<Value> = texts
        .iter()
        .zip(&reasons)
        .enumerate()
        .map(|(i, (text, reason))| {
            if out.chat {
                json!({ "index": i, "message": { "role": "assistant", "content": text }, "logprobs": null, "finish_reason": reason })
            } else {
                json!({ "index": i, "text": text, "logprobs": null, "finish_reason": reason })
            }
        })
        .collect();
    let object = if out.chat {
        "chat.completion"
    } else {
        "text_completion"
    };
    Ok(json_response(
        200,
        &json!({ "id": out.id, "object": object, "created": out.created, "model": out.model, "choices": choices, "usage": usage(prompt, completion) }),
    ))
}

#[cfg(test)]
mod tests;
