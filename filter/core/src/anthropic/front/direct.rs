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
use serde_json::value::RawValue;
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
    /// The fields read, left unparsed (the rest of the body is the backend's to read).
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
        #[serde(borrow)]
        messages: Option<&'a RawValue>,
        #[serde(borrow)]
        max_tokens: Option<&'a RawValue>,
        #[serde(borrow)]
        stream: Option<&'a RawValue>,
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(FrontError::invalid(
            "The request body must be a JSON object.",
        ));
    }
    let top: Top<'_> = serde_json::from_slice(body)
        .map_err(|e| FrontError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let first = |v: &RawValue| v.get().as_bytes().first().copied();
    match top.model.map(first) {
        Some(Some(b'"')) => {}
        None => return Err(FrontError::invalid("model: Field required")),
        Some(_) => return Err(FrontError::invalid("model: must be a string")),
    }
    match top.messages.map(first) {
        Some(Some(b'[')) => {}
        None => return Err(FrontError::invalid("messages: Field required")),
        Some(_) => return Err(FrontError::invalid("messages: must be an array")),
    }
    if count_tokens {
        return Ok(false);
    }
    match top.max_tokens.map(|v| v.get().parse::<u64>()) {
        None => return Err(FrontError::invalid("max_tokens: Field required")),
        Some(Ok(n)) if n >= 1 => {}
        Some(_) => {
            return Err(FrontError::invalid(
                "max_tokens: must be an integer of at least 1",
            ))
        }
    }
    match top.stream.map(RawValue::get) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
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
    state: State,
}

/// What the events so far told.
#[derive(Debug, Default)]
struct State {
    counts: Counts,
    /// A `usage` was seen.
    counted: bool,
    /// A `message_delta` with a `stop_reason` was seen: the answer is complete.
    stopped: bool,
    /// `message_stop` or an `error` went out: nothing follows.
    ended: bool,
    /// For a stream that reports no usage: the prompt's estimate, and the streamed text's.
    input_estimate: u64,
    output_estimate: u64,
}

impl DirectStream {
    /// A stream whose request's prompt was estimated at `input_estimate` tokens (charged, with
    /// an estimate of the streamed text, when the stream reports no usage).
    pub fn new(input_estimate: u64) -> Self {
        DirectStream {
            framer: SseFramer::default(),
            state: State {
                input_estimate,
                ..State::default()
            },
        }
    }

    /// The whole events `chunk` completes, as the client gets them.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        let state = &mut self.state;
        self.framer
            .push(chunk, &mut |event| state.pass(event, &mut out));
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
            self.state.pass(&rest, &mut out);
        }
        if !self.state.ended {
            self.state.fail(
                "api_error",
                "The stream was cut short: the backend's answer ended before it was complete.",
                &mut out,
            );
        }
        out
    }

    /// The tokens the stream came to: what it reported, else (once it ended) the prompt's and
    /// the streamed text's estimates, with `true` for an estimate.
    pub fn tokens(&self) -> Option<(u64, bool)> {
        let s = &self.state;
        if s.counted {
            return Some((s.counts.usage().total_tokens(), false));
        }
        s.ended
            .then(|| (s.input_estimate.saturating_add(s.output_estimate), true))
    }
}

impl State {
    /// One event: read for usage and its end, and passed on (an error in Anthropic's shape).
    fn pass(&mut self, event: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let data = event_data(event);
        if data.is_empty() {
            // Comments (keep-alives) and events without data pass as they are.
            out.extend_from_slice(event);
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&data) else {
            // Not Anthropic's: neither passed on (its text was never checked for names) nor
            // skipped (the answer would lack it).
            return self.fail(
                "api_error",
                "The backend sent a stream event that could not be read.",
                out,
            );
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
            return self.fail(kind, &message, out);
        }
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        let usage = match kind {
            "error" => {
                // The router's own ending of a stream whose event was over its limit.
                let message = value.get("message").and_then(Value::as_str);
                let message = message.unwrap_or("The backend failed while answering.");
                return self.fail("api_error", message, out);
            }
            "message_start" => value.pointer("/message/usage"),
            "message_delta" => {
                self.stopped |= value
                    .pointer("/delta/stop_reason")
                    .is_some_and(|r| r.is_string());
                value.get("usage")
            }
            "content_block_delta" if !self.counted => {
                let delta = value.get("delta");
                let text = ["text", "thinking", "partial_json"]
                    .iter()
                    .find_map(|k| delta.and_then(|d| d.get(*k)).and_then(Value::as_str));
                if let Some(text) = text {
                    let more = crate::token_estimate::estimate(text.as_bytes());
                    self.output_estimate = self.output_estimate.saturating_add(more);
                }
                None
            }
            "message_stop" if !self.stopped => {
                return self.fail(
                    "api_error",
                    "The stream was cut short: the backend's answer ended without a stop reason.",
                    out,
                );
            }
            "message_stop" => {
                self.ended = true;
                None
            }
            _ => None,
        };
        if let Some(usage) = usage.and_then(|u| AnthropicUsage::deserialize(u).ok()) {
            self.counts.update(&usage);
            self.counted = true;
        }
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_graphic()) {
            out.extend_from_slice(event);
            return;
        }
        // Written as Anthropic writes its events, whatever line ends, byte order mark or data
        // lines the backend used (all valid SSE, not all read by every client).
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // A line break in JSON data lies between tokens (strings escape theirs): a space reads
        // the same.
        out.extend(
            data.iter()
                .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { *b }),
        );
        out.extend_from_slice(b"\n\n");
    }

    /// Ends the stream with an `error` event.
    fn fail(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        Event::Error {
            error: ErrorObject { kind, message },
        }
        .write(out);
        self.ended = true;
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

#[cfg(test)]
mod tests;
