//! A Messages request served by Anthropic backends as it came (no round trip through chat, so
//! thinking, signatures, `cache_control`, `top_k` and prefills reach the backend and come
//! back): the few fields the router itself reads checked, and the answer's stream watched
//! after the flow renamed it: its usage read, each event written as Anthropic writes them
//! (`event: TYPE`, one `data:` line, LF line ends), an error event (which the flow writes in
//! OpenAI's envelope) put back into Anthropic's shape, and a stream that ends before
//! `message_stop` ended with an `error` event, so the SDK raises rather than returning half
//! an answer.
//!
//! Only what the router relies on is checked (the backend checks the rest, in its own words):
//! a JSON object; `model` a string; for a Messages request `max_tokens` an integer of at least
//! 1, `messages` an array, `stream` a boolean.

use serde::Deserialize;
use serde_json::Value;

use super::errors::stream_error;
use super::events::{ErrorObject, Event};
use super::FrontError;
use crate::anthropic::backend::{AnthropicUsage, Counts};
use crate::sse::{event_data, SseFramer};

/// Checks a request sent to Anthropic backends as it is: a Messages request, or a token
/// counting request when `count_tokens`. Whether it asks for a stream. A 400
/// `invalid_request_error` naming the field otherwise.
pub fn check_direct(body: &[u8], count_tokens: bool) -> Result<bool, FrontError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(FrontError::invalid(
            "The request body must be a JSON object.",
        ));
    }
    let top: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| FrontError::invalid(format!("The request body is not valid JSON: {e}")))?;
    match top.get("model") {
        Some(Value::String(_)) => {}
        None | Some(Value::Null) => return Err(FrontError::invalid("model: Field required")),
        Some(_) => return Err(FrontError::invalid("model: must be a string")),
    }
    match top.get("messages") {
        Some(Value::Array(_)) => {}
        None | Some(Value::Null) => return Err(FrontError::invalid("messages: Field required")),
        Some(_) => return Err(FrontError::invalid("messages: must be an array")),
    }
    if count_tokens {
        return Ok(false);
    }
    match top.get("max_tokens") {
        None | Some(Value::Null) => return Err(FrontError::invalid("max_tokens: Field required")),
        Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {}
        Some(_) => {
            return Err(FrontError::invalid(
                "max_tokens: must be an integer of at least 1",
            ))
        }
    }
    match top.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(FrontError::invalid("stream: must be a boolean")),
    }
}

/// The tokens a whole Messages answer reports (prompt, cache reads and writes, and output),
/// or `None` when it reports none.
pub fn message_tokens(body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Answer {
        usage: Option<AnthropicUsage>,
    }
    let usage = serde_json::from_slice::<Answer>(body).ok()?.usage?;
    let mut counts = Counts::default();
    counts.update(&usage);
    Some(counts.usage().total_tokens())
}

/// A Messages stream from an Anthropic backend, as the flow renamed it, passed on event by
/// event (chunks may split events anywhere).
#[derive(Debug, Default)]
pub struct DirectStream {
    framer: SseFramer,
    counts: Counts,
    /// A `usage` was seen.
    counted: bool,
    /// `message_stop` or an `error` went out: nothing follows.
    ended: bool,
}

impl DirectStream {
    /// The whole events `chunk` completes, as the client gets them.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        let Self {
            framer,
            counts,
            counted,
            ended,
        } = self;
        framer.push(chunk, &mut |event| {
            pass(event, counts, counted, ended, &mut out);
        });
        out
    }

    /// The end of the stream: what the framer still held, and an `error` event when the stream
    /// did not end with `message_stop` or an error.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let rest = self.framer.finish();
        // An event the stream did not end with its blank line: passed only when whole (its
        // data parses), else dropped rather than glued to the error that follows.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&event_data(&rest)).is_ok() {
            let Self {
                counts,
                counted,
                ended,
                ..
            } = self;
            pass(&rest, counts, counted, ended, &mut out);
            if !out.ends_with(b"\n\n") && !out.is_empty() {
                out.extend_from_slice(b"\n\n");
            }
        }
        if !self.ended {
            fail(
                "api_error",
                "The stream was cut short: the backend's answer ended before it was complete.",
                &mut out,
            );
            self.ended = true;
        }
        out
    }

    /// The tokens the stream reported so far, when it reported any.
    pub fn tokens(&self) -> Option<u64> {
        self.counted.then(|| self.counts.usage().total_tokens())
    }
}

/// One event: read for usage and its end, and passed on (an error in Anthropic's shape).
fn pass(
    event: &[u8],
    counts: &mut Counts,
    counted: &mut bool,
    ended: &mut bool,
    out: &mut Vec<u8>,
) {
    if *ended {
        return;
    }
    let data = event_data(event);
    let Ok(value) = serde_json::from_slice::<Value>(&data) else {
        // Comments (keep-alives) and anything without JSON data pass as they are.
        out.extend_from_slice(event);
        return;
    };
    if let Some(err) = value.get("error").filter(|e| e.is_object()) {
        // The flow wrote it in OpenAI's envelope; Anthropic's own errors have the same member.
        let (kind, message) = match err.get("type").and_then(Value::as_str) {
            Some(kind) if kind.ends_with("_error") => (
                anthropic_kind(kind),
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("The backend failed while answering.")
                    .to_string(),
            ),
            _ => stream_error(err),
        };
        fail(kind, &message, out);
        *ended = true;
        return;
    }
    if value.get("type").and_then(Value::as_str) == Some("error") {
        // The router's own ending of a stream whose event was over its limit.
        let message = value.get("message").and_then(Value::as_str);
        fail(
            "api_error",
            message.unwrap_or("The backend failed while answering."),
            out,
        );
        *ended = true;
        return;
    }
    let usage = match value.get("type").and_then(Value::as_str) {
        Some("message_start") => value.pointer("/message/usage"),
        Some("message_delta") => value.get("usage"),
        Some("message_stop") => {
            *ended = true;
            None
        }
        _ => None,
    };
    if let Some(usage) = usage.and_then(|u| AnthropicUsage::deserialize(u).ok()) {
        counts.update(&usage);
        *counted = true;
    }
    match value.get("type").and_then(Value::as_str) {
        // Written as Anthropic writes its events, whatever line ends, byte order mark or
        // data lines the backend used (all valid SSE, not all read by every client).
        Some(kind) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_graphic()) => {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            // A line break in JSON data lies between tokens (strings escape theirs): a space
            // reads the same.
            out.extend(
                data.iter()
                    .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { *b }),
            );
            out.extend_from_slice(b"\n\n");
        }
        _ => out.extend_from_slice(event),
    }
}

/// One of Anthropic's error types, or `api_error`.
fn anthropic_kind(kind: &str) -> &'static str {
    const KINDS: [&str; 9] = [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "billing_error",
    ];
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("api_error")
}

fn fail(kind: &str, message: &str, out: &mut Vec<u8>) {
    Event::Error {
        error: ErrorObject { kind, message },
    }
    .write(out);
}

#[cfg(test)]
mod tests;
