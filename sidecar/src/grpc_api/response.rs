//! OpenAI answers read as the API's [`GenerationResponse`]s: a whole answer (chat's
//! `choices[0].message.content`, a completion's `choices[0].text`), or a stream of SSE events cut
//! by the core's framer (`airouter_core::sse::SseFramer`: events split anywhere, LF, CRLF or CR)
//! whose chunks become one response per piece of text, then a last one with the finish reason
//! and usage once `[DONE]` arrives. An error event ends the stream with its status
//! ([`super::status::from_stream_error`]); a stream that stops before `[DONE]` ends `UNAVAILABLE`.
//!
//! A success is only passed on as one when it is a completion: an answer (or a stream up to its
//! `[DONE]`) without a first choice, without a finish reason, or whose finish reason or model is
//! not a plain name of at most [`MAX_FINISH_REASON_BYTES`] / `MAX_MODEL_NAME_BYTES` is `INTERNAL`
//! (gRPC's code for an answer that cannot be parsed), never `OK` with empty fields. Token counts
//! beyond a `uint32` (or beyond any integer) saturate.

use airouter_core::sse::SseFramer;
use serde::Deserialize;
use tonic::Status;

use airouter_core::flow::target_request::MAX_MODEL_NAME_BYTES;

use super::proto::{GenerationResponse, Usage};
use super::status::{self, unreadable_answer, Envelope};

/// Longest finish reason passed on, in bytes (OpenAI's are `stop`, `length`, `tool_calls`,
/// `content_filter`, `function_call`; other servers add a few of the same kind).
pub const MAX_FINISH_REASON_BYTES: usize = 32;

/// An OpenAI answer or stream chunk (chat or legacy completions), as far as the API reads it.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    /// Chat, whole.
    #[serde(default)]
    message: Option<Text>,
    /// Chat, streamed.
    #[serde(default)]
    delta: Option<Text>,
    /// Legacy completions, whole or streamed.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Text {
    #[serde(default)]
    content: Option<String>,
    /// What a model says instead when it declines (OpenAI's structured refusals).
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OpenAiUsage {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: u32,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: u32,
    #[serde(default, deserialize_with = "count")]
    total_tokens: u32,
}

/// A token count: a whole number (`5`, `5.0`, `1e30`: JSON has counts beyond any integer type
/// only as floats), saturating at `u32::MAX`; `null` is none. A negative or fractional count, or
/// another type, is not a count: the answer is not OpenAI's.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(0);
    };
    if let Some(u) = n.as_u64() {
        return Ok(u32::try_from(u).unwrap_or(u32::MAX));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(if f >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            // Whole, non-negative and below u32::MAX: exact.
            f as u32
        }),
        _ => Err(serde::de::Error::custom("not a token count")),
    }
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

impl Choice {
    /// The text this choice carries (whole or a piece), if any.
    fn text(self) -> Option<String> {
        let from = |t: Text| t.content.filter(|c| !c.is_empty()).or(t.refusal);
        self.text
            .or_else(|| self.message.and_then(from))
            .or_else(|| self.delta.and_then(from))
    }
}

/// The first choice of `choices` (index 0), taken out.
fn first(choices: Vec<Choice>) -> Option<Choice> {
    choices.into_iter().find(|c| c.index == 0)
}

/// A whole answer (HTTP 2xx, JSON) as the unary call's response; `INTERNAL` when it is not a
/// completion (not JSON of its shape, no first choice, no finish reason, a finish reason or
/// model that is not a plain name).
pub fn whole(body: &[u8]) -> Result<GenerationResponse, Status> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|_| unreadable_answer("it is not a completion"))?;
    let model = model(answer.model)?;
    let usage = answer.usage.map(Usage::from);
    let mut choice =
        first(answer.choices).ok_or_else(|| unreadable_answer("it holds no choice"))?;
    let finish_reason = finish_reason(choice.finish_reason.take())?
        .ok_or_else(|| unreadable_answer("its choice has no finish reason"))?;
    Ok(GenerationResponse {
        content: choice.text().unwrap_or_default(),
        model,
        finish_reason,
        usage,
    })
}

/// The answer's model name: none is empty; one over `MAX_MODEL_NAME_BYTES` or with control
/// characters is `INTERNAL` (the router names models by names clients could send).
fn model(name: Option<String>) -> Result<String, Status> {
    let name = name.unwrap_or_default();
    if name.len() > MAX_MODEL_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(unreadable_answer("its model name is not a model name"));
    }
    Ok(name)
}

/// A finish reason as it is passed on: `None` for none (or `null`), the reason when it is a
/// plain name (ASCII lower-case letters, digits, `_`, at most [`MAX_FINISH_REASON_BYTES`]),
/// else `INTERNAL`.
fn finish_reason(reason: Option<String>) -> Result<Option<String>, Status> {
    match reason {
        None => Ok(None),
        Some(r)
            if !r.is_empty()
                && r.len() <= MAX_FINISH_REASON_BYTES
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(Some(r))
        }
        Some(_) => Err(unreadable_answer("its finish reason is not one")),
    }
}

/// A whole answer as a stream's responses: its text (none when empty), then the last response
/// with the finish reason and usage.
pub fn split_whole(whole: GenerationResponse) -> (Option<GenerationResponse>, GenerationResponse) {
    let text = (!whole.content.is_empty()).then(|| GenerationResponse {
        content: whole.content.clone(),
        model: whole.model.clone(),
        finish_reason: String::new(),
        usage: None,
    });
    let end = GenerationResponse {
        content: String::new(),
        ..whole
    };
    (text, end)
}

/// Reads a streamed answer (SSE) as it arrives.
#[derive(Debug, Default)]
pub struct StreamReader {
    framer: SseFramer,
    /// The model the chunks name (each names it; the last one seen).
    model: String,
    /// Whether a chunk carried a first choice.
    choice_seen: bool,
    finish_reason: String,
    usage: Option<Usage>,
    /// `[DONE]` or an error event went by: nothing more is read.
    ended: bool,
}

impl StreamReader {
    /// Reads `chunk`: the responses it completes, in order; an `Err` is the stream's last.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<GenerationResponse, Status>> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let mut events = Vec::new();
        self.framer
            .push(chunk, &mut |event| events.push(data(event)));
        for data in events {
            if self.ended {
                break;
            }
            if let Some(r) = self.event(&data) {
                self.ended |= r.is_err();
                out.push(r);
            }
        }
        if self.framer.overflowed() && !self.ended {
            self.ended = true;
            out.push(Err(Status::internal(
                "the answer's stream carried an event too large to read",
            )));
        }
        out
    }

    /// The stream's end (no more bytes): `UNAVAILABLE` (the answer was cut short) unless it
    /// ended as OpenAI streams do.
    pub fn finish(&mut self) -> Option<Result<GenerationResponse, Status>> {
        if self.ended {
            return None;
        }
        self.ended = true;
        tracing::warn!("grpc_api: an answer's stream stopped before [DONE]");
        Some(Err(status::answer_cut_short()))
    }

    /// Whether the stream has ended (`[DONE]`, an error, its end or [`Self::abandon`]).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Reads no more: the stream broke off and its caller reports that.
    pub fn abandon(&mut self) {
        self.ended = true;
    }

    /// One event's data: a response to send, an error, or nothing (role-only chunks, comments).
    fn event(&mut self, data: &[u8]) -> Option<Result<GenerationResponse, Status>> {
        if data.is_empty() {
            return None;
        }
        if data.trim_ascii() == b"[DONE]" {
            self.ended = true;
            if !self.choice_seen {
                return Some(Err(unreadable_answer("its stream held no choice")));
            }
            if self.finish_reason.is_empty() {
                return Some(Err(unreadable_answer(
                    "its stream ended without a finish reason",
                )));
            }
            return Some(Ok(GenerationResponse {
                content: String::new(),
                model: self.model.clone(),
                finish_reason: std::mem::take(&mut self.finish_reason),
                usage: self.usage.take(),
            }));
        }
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(data) {
            return Some(Err(status::from_stream_error(&error)));
        }
        let Ok(chunk) = serde_json::from_slice::<Answer>(data) else {
            return Some(Err(unreadable_answer("a chunk of its stream is not one")));
        };
        match model(chunk.model) {
            Ok(m) if m.is_empty() => {}
            Ok(m) => self.model = m,
            Err(e) => return Some(Err(e)),
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into());
        }
        let mut choice = first(chunk.choices)?;
        self.choice_seen = true;
        match finish_reason(choice.finish_reason.take()) {
            Ok(Some(reason)) => self.finish_reason = reason,
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        let content = choice.text().filter(|t| !t.is_empty())?;
        Some(Ok(GenerationResponse {
            content,
            model: self.model.clone(),
            finish_reason: String::new(),
            usage: None,
        }))
    }
}

/// An event's data: its `data:` lines (one leading space off each) joined with LF.
fn data(event: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut first = true;
    for line in event.split(|b| *b == b'\n' || *b == b'\r') {
        if let Some(value) = line.strip_prefix(b"data:") {
            if !first {
                out.push(b'\n');
            }
            first = false;
            out.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    out
}

#[cfg(test)]
mod tests;
