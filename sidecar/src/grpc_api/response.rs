//! OpenAI answers read as the API's [`GenerationResponse`]s: a whole answer (chat's
//! `choices[0].message.content`, a completion's `choices[0].text`), or a stream of SSE events cut
//! by the core's framer (`airouter_core::sse::SseFramer`: events split anywhere, LF, CRLF or CR)
//! whose chunks become one response per piece of text, then a last one with the finish reason
//! and usage once `[DONE]` arrives. An error event ends the stream with its status
//! ([`super::status::from_stream_error`]); a stream that stops before `[DONE]` ends `UNAVAILABLE`.

use airouter_core::sse::SseFramer;
use serde::Deserialize;
use tonic::Status;

use super::proto::{GenerationResponse, Usage};
use super::status::{self, Envelope};

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
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Usage {
            prompt_tokens: clamp(u.prompt_tokens),
            completion_tokens: clamp(u.completion_tokens),
            total_tokens: clamp(u.total_tokens),
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

/// A whole answer (HTTP 200, JSON) as the unary call's response; `INTERNAL` when it is not one.
pub fn whole(body: &[u8]) -> Result<GenerationResponse, Status> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| Status::internal("the router's answer could not be read"))?;
    let usage = answer.usage.map(Usage::from);
    let (content, finish_reason) = match first(answer.choices) {
        Some(mut c) => {
            let reason = c.finish_reason.take().unwrap_or_default();
            (c.text().unwrap_or_default(), reason)
        }
        None => (String::new(), String::new()),
    };
    Ok(GenerationResponse {
        content,
        model: answer.model.unwrap_or_default(),
        finish_reason,
        usage,
    })
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

    /// The stream's end (no more bytes): `UNAVAILABLE` unless it ended as OpenAI streams do.
    pub fn finish(&mut self) -> Option<Result<GenerationResponse, Status>> {
        if self.ended {
            return None;
        }
        self.ended = true;
        tracing::warn!("grpc_api: an answer's stream stopped before [DONE]");
        Some(Err(Status::unavailable(
            "the answer's stream stopped before it was complete",
        )))
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
            return Some(Err(Status::internal(
                "the answer's stream could not be read",
            )));
        };
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into());
        }
        let mut choice = first(chunk.choices)?;
        if let Some(reason) = choice.finish_reason.take() {
            self.finish_reason = reason;
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
