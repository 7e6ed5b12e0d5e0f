//! The OpenAI side of every answer the sidecar sends: response bodies (chat completions, legacy
//! text completions, embeddings, errors) and Server-Sent Events (`data:` frames, error events,
//! `data: [DONE]`). Nothing else in the sidecar writes OpenAI JSON or frames SSE.
//!
//! Chat and completions answers come from [`Event`]s: [`StreamEncoder`] turns each into SSE frames
//! for a streaming client, [`Aggregate`] gathers them into one response otherwise.

use airouter_core::errors::ApiError;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use super::kserve_response::Event;

/// An OpenAI object as a response body: compact JSON.
pub fn json_body(body: &Value) -> Bytes {
    Bytes::from(body.to_string())
}

/// An error as a response body: OpenAI's error envelope.
pub fn error_body(err: &ApiError) -> Bytes {
    Bytes::from(err.body())
}

/// One SSE event carrying `payload` as its data: the only place SSE is framed.
fn sse_frame(payload: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// An SSE event carrying an OpenAI object.
pub fn sse_data(chunk: &Value) -> Bytes {
    sse_frame(chunk.to_string().as_bytes())
}

/// An SSE event carrying OpenAI's error envelope: how a stream that already started fails.
pub fn sse_error(err: &ApiError) -> Bytes {
    sse_frame(&err.body())
}

/// The `data: [DONE]` event that ends every OpenAI stream.
pub fn sse_done() -> Bytes {
    sse_frame(b"[DONE]")
}

/// OpenAI's `usage` object.
pub fn usage(prompt: u64, completion: u64) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

/// The `POST /v1/embeddings` response: one vector per input, as floats or as base64 of their
/// little-endian bytes (OpenAI's `encoding_format`).
pub fn embeddings(
    client_model: &str,
    vectors: &[Vec<f32>],
    base64: bool,
    prompt_tokens: usize,
) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": client_model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    })
}

/// What every chat completion (or legacy text completion) object and chunk of one answer share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Chat completions; else legacy completions.
    pub chat: bool,
    /// `chatcmpl-…` or `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
    /// Choices in the answer.
    pub choices: usize,
    /// Legacy completions with `echo`: each choice's prompt, sent before its text.
    pub echo: Option<Vec<String>>,
}

impl Completion {
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

/// A streamed answer: each event → its SSE frames. A choice's first frame is the assistant
/// role (chat) or its echoed prompt (completions with `echo`); usage comes as a last chunk with
/// no choices when the client asked with `stream_options.include_usage`.
#[derive(Debug)]
pub struct StreamEncoder {
    out: Completion,
    include_usage: bool,
    started: Vec<bool>,
    ended: bool,
}

impl StreamEncoder {
    pub fn new(out: Completion, include_usage: bool) -> Self {
        StreamEncoder {
            started: vec![false; out.choices],
            out,
            include_usage,
            ended: false,
        }
    }

    /// The frames for one event.
    pub fn encode(&mut self, event: Event) -> Vec<Bytes> {
        let out = &self.out;
        let mut frames = Vec::new();
        let choice = match &event {
            Event::Text { choice, .. } | Event::Done { choice, .. } => Some(*choice),
            _ => None,
        };
        if let Some(c) = choice {
            if !self.started.get(c).copied().unwrap_or(true) {
                if let Some(s) = self.started.get_mut(c) {
                    *s = true;
                }
                if out.chat {
                    let role = json!([{ "index": c, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }]);
                    frames.push(sse_data(&out.chunk(role, None)));
                } else if let Some(prompt) = out.echo.as_ref().and_then(|p| p.get(c)) {
                    frames.push(sse_data(&out.chunk(out.text_choice(c, prompt, None), None)));
                }
            }
        }
        match event {
            Event::Text { choice, text } => frames.push(sse_data(
                &out.chunk(out.text_choice(choice, &text, None), None),
            )),
            Event::Done { choice, reason } => frames.push(sse_data(
                &out.chunk(out.text_choice(choice, "", Some(reason)), None),
            )),
            Event::Usage { prompt, completion } => {
                if self.include_usage {
                    frames.push(sse_data(
                        &out.chunk(json!([]), Some(usage(prompt, completion))),
                    ));
                }
                self.ended = true;
            }
            Event::Failed(e) => {
                frames.push(sse_error(&e));
                self.ended = true;
            }
        }
        frames
    }

    /// The answer is complete or has failed: no event is wanted after this.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The frames that close the stream: an error event when the answer stopped before its end,
    /// then `[DONE]`.
    pub fn close(&self) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if !self.ended {
            frames.push(sse_error(&ApiError::internal(
                "the answer stopped unexpectedly",
            )));
        }
        frames.push(sse_done());
        frames
    }
}

/// A non-streamed answer: the events gathered into one chat completion or text completion.
#[derive(Debug)]
pub struct Aggregate {
    out: Completion,
    texts: Vec<String>,
    reasons: Vec<&'static str>,
    totals: Option<(u64, u64)>,
}

impl Aggregate {
    pub fn new(out: Completion) -> Self {
        let texts = match &out.echo {
            Some(prompts) => prompts.clone(),
            None => vec![String::new(); out.choices],
        };
        Aggregate {
            texts,
            reasons: vec!["stop"; out.choices],
            out,
            totals: None,
        }
    }

    /// Takes one event: `Ok(true)` once the answer is complete, the failure as an error.
    pub fn push(&mut self, event: Event) -> Result<bool, ApiError> {
        match event {
            Event::Text { choice, text } => {
                if let Some(t) = self.texts.get_mut(choice) {
                    t.push_str(&text);
                }
            }
            Event::Done { choice, reason } => {
                if let Some(r) = self.reasons.get_mut(choice) {
                    *r = reason;
                }
            }
            Event::Usage { prompt, completion } => {
                self.totals = Some((prompt, completion));
                return Ok(true);
            }
            Event::Failed(e) => return Err(e),
        }
        Ok(false)
    }

    /// The response body; an error when the answer stopped before its end.
    pub fn finish(self) -> Result<Value, ApiError> {
        let out = &self.out;
        let (prompt, completion) = self
            .totals
            .ok_or_else(|| ApiError::internal("the answer stopped unexpectedly"))?;
        let choices: Vec<Value> = self
            .texts
            .iter()
            .zip(&self.reasons)
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
        Ok(
            json!({ "id": out.id, "object": object, "created": out.created, "model": out.model, "choices": choices, "usage": usage(prompt, completion) }),
        )
    }
}

#[cfg(test)]
mod tests;
