//! Server-sent events: a byte-level incremental framer, and the per-event rewriter built on it
//! (model names renamed in every line, usage read in every dialect). Chunks may split events,
//! lines, CRLF pairs and UTF-8 characters anywhere; only whole events are emitted, each
//! rewritten or, when nothing changed, as the original bytes.
//!
//! Framing follows the WHATWG HTML "server-sent events" section: lines end with LF, CRLF or CR,
//! an empty line ends an event, `data:` lines of one event join with LF.
//!
//! Here: [`SseModelRewriter`] and the endings the router writes itself; `framer`: [`SseFramer`];
//! `event`: reading and rewriting one event; `usage`: a stream's tokens estimated when its
//! backend reports none, and the usage chunk written from them.

use crate::model_names::NameRewriter;
use crate::session::Transcript;

pub(crate) mod event;
mod framer;
mod usage;

pub(crate) use event::event_data;
use event::{is_done, is_usage_only, rewrite_event, usage_of};
pub use framer::{event_end, SseFramer};
use usage::StreamedText;

/// Largest event the framer holds while waiting for its end, and the largest it passes on.
/// Responses API events carry the whole response (`response.completed`) or a base64 image
/// (`partial_image`, a few MiB for a large PNG), so this is generous; a longer event ends the
/// stream (see [`SseModelRewriter::feed`]).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Rewrites the model names in every line of an SSE stream and reads its usage.
#[derive(Debug)]
pub struct SseModelRewriter {
    framer: SseFramer,
    names: NameRewriter,
    state: StreamState,
    /// The API ends its streams with `data: [DONE]` (chat, legacy completions); the others
    /// (Responses, transcriptions) end with a typed event.
    ends_with_done: bool,
}

/// What the events of a stream told so far, and what the router does with its usage.
#[derive(Debug, Default)]
struct StreamState {
    /// An event `data: [DONE]` went by: the stream ended as OpenAI streams do.
    saw_done: bool,
    /// The last event was an error: a stream that ends after it ended with its error told.
    ended_in_error: bool,
    /// The stream's token count, once seen (see [`crate::json_body::total_tokens`]).
    usage_tokens: Option<u64>,
    /// Remove the usage-only chunk (the router asked for it, the client did not).
    strip_usage: bool,
    /// A chat or completions stream's text, counted in case its backend reports no usage
    /// (boxed: it is several times the size of the rest, and lives in the response's state).
    estimate: Option<Box<Estimate>>,
    /// What the stream said, for the request's session record (`[session_log]`).
    transcript: Option<Box<Transcript>>,
}

/// How a stream without reported usage is counted (see `usage.rs`).
#[derive(Debug)]
struct Estimate {
    text: StreamedText,
    /// The request's prompt, estimated.
    prompt_tokens: u64,
    /// The client asked for usage: with none from the backend, a usage chunk goes before
    /// `[DONE]`, of this `object` when the stream's chunks named none.
    usage_chunk: Option<&'static str>,
}

impl StreamState {
    /// Reads one event (`[DONE]`, usage, the text an estimate counts) and appends what the
    /// client gets for it: the event renamed, preceded by the router's usage chunk when it is
    /// the `[DONE]` of a stream whose client asked for usage and whose backend sent none, or
    /// nothing for the usage-only chunk the router asked for itself.
    fn pass(&mut self, names: &NameRewriter, event: &[u8], out: &mut Vec<u8>) {
        let done = is_done(event);
        if let Some(t) = self.transcript.as_mut().filter(|_| !done) {
            t.add_event(&event_data(event));
        }
        if let Some(tokens) = usage_of(event) {
            self.usage_tokens = Some(tokens);
            if self.strip_usage && is_usage_only(event) {
                return;
            }
        } else if let Some(est) = self
            .estimate
            .as_mut()
            .filter(|_| self.usage_tokens.is_none())
        {
            match est.usage_chunk {
                Some(object) if done && !self.saw_done => {
                    let chunk =
                        est.text
                            .usage_event(est.prompt_tokens, object, names.client_name());
                    let _ = rewrite_event(names, &chunk, out);
                }
                _ if done => {}
                _ => est.text.add(&event_data(event)),
            }
        }
        self.saw_done |= done;
        self.ended_in_error = rewrite_event(names, event, out);
    }
}

impl SseModelRewriter {
    pub fn new(names: NameRewriter) -> Self {
        SseModelRewriter {
            framer: SseFramer::default(),
            names,
            state: StreamState::default(),
            ends_with_done: true,
        }
    }

    /// A rewriter that also removes the usage-only chunk the router asked for.
    pub fn stripping_usage(names: NameRewriter) -> Self {
        let mut r = Self::new(names);
        r.state.strip_usage = true;
        r
    }

    /// Whether the stream's API ends streams with `data: [DONE]` (the default) or with typed
    /// events (Responses, transcriptions): it decides how an overlong event ends the stream.
    pub fn ending_with_done(mut self, done: bool) -> Self {
        self.ends_with_done = done;
        self
    }

    /// For a chat or completions stream: counts its text, so that a stream whose backend
    /// reports no usage is still counted ([`Self::estimated_tokens`]), its prompt put at
    /// `prompt_tokens`. With `usage_chunk` (the client asked for usage; the chunks' `object`
    /// should they name none), such a stream also gets a usage chunk from that count before its
    /// `data: [DONE]` (see `usage.rs` for the estimate).
    pub fn estimating_usage(
        mut self,
        prompt_tokens: u64,
        usage_chunk: Option<&'static str>,
    ) -> Self {
        self.state.estimate = Some(Box::new(Estimate {
            text: StreamedText::default(),
            prompt_tokens,
            usage_chunk,
        }));
        self
    }

    /// From now on, also reads each event for the request's session record (see
    /// [`Transcript`]).
    pub fn transcribe(&mut self, transcript: Transcript) {
        self.state.transcript = Some(Box::new(transcript));
    }

    /// What the stream said so far, when it is read for a session record.
    pub fn transcript(&self) -> Option<&Transcript> {
        self.state.transcript.as_deref()
    }

    /// [`Self::transcript`], to note times in it.
    pub fn transcript_mut(&mut self) -> Option<&mut Transcript> {
        self.state.transcript.as_deref_mut()
    }

    /// The stream's total tokens, when it carried usage.
    pub fn usage_tokens(&self) -> Option<u64> {
        self.state.usage_tokens
    }

    /// The stream's estimated total tokens (prompt and text so far), when it reported no usage
    /// and was set to estimate it ([`Self::estimating_usage`]).
    pub fn estimated_tokens(&self) -> Option<u64> {
        let est = self.state.estimate.as_ref()?;
        self.state.usage_tokens.is_none().then(|| {
            est.prompt_tokens
                .saturating_add(est.text.completion_tokens())
        })
    }

    /// What to send downstream for this chunk (possibly empty while an event is incomplete).
    /// An event over [`MAX_EVENT_BYTES`] ends the stream well-formed: an error event (and
    /// `[DONE]` where the API uses it) follows the events before it, and nothing after.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.framer.overflowed() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(chunk.len() + 16);
        let names = &self.names;
        let state = &mut self.state;
        self.framer
            .push(chunk, &mut |event| state.pass(names, event, &mut out));
        if self.framer.overflowed() {
            out.extend(too_large_ending(self.ends_with_done));
            self.state.saw_done = true;
        }
        out
    }

    /// What is left when the upstream stream ends (an event without its blank line).
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = self.framer.finish();
        let mut out = Vec::with_capacity(rest.len());
        if !rest.is_empty() {
            self.state.pass(&self.names, &rest, &mut out);
        }
        out
    }

    /// Whether `data: [DONE]` has been seen (or the router ended the stream itself).
    pub fn saw_done(&self) -> bool {
        self.state.saw_done
    }

    /// Whether the last event so far was an error (which a stream without `[DONE]` then
    /// needs no other error after).
    pub fn ended_in_error(&self) -> bool {
        self.state.ended_in_error
    }

    /// Whether an overlong event ended the stream.
    pub fn overflowed(&self) -> bool {
        self.framer.overflowed()
    }
}

/// The `code` of the error ending a stream whose backend sent an event over [`MAX_EVENT_BYTES`].
pub const TOO_LARGE_CODE: &str = "stream_event_too_large";
/// Its message.
pub const TOO_LARGE_MESSAGE: &str =
    "The backend sent a stream event larger than the router passes on (16 MiB); the stream was ended.";
/// The `code` of the error ending a stream cut short.
pub const TRUNCATED_CODE: &str = "stream_truncated";
/// Its message.
pub const TRUNCATED_MESSAGE: &str = "The backend's stream ended before the answer was complete.";

/// The end of a stream whose backend sent an event over [`MAX_EVENT_BYTES`]: OpenAI's error
/// envelope then `[DONE]` for chat and completions, a Responses-style `error` event otherwise.
pub(crate) fn too_large_ending(ends_with_done: bool) -> Vec<u8> {
    const MESSAGE: &str = TOO_LARGE_MESSAGE;
    const CODE: &str = TOO_LARGE_CODE;
    let mut out = Vec::new();
    if ends_with_done {
        out.extend_from_slice(b"data: ");
        out.extend(crate::errors::envelope(
            MESSAGE,
            "server_error",
            None,
            Some(CODE),
        ));
        out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    } else {
        let event = serde_json::json!({
            "type": "error", "code": CODE, "message": MESSAGE, "param": null,
        });
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend(event.to_string().into_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// The event ending chat and legacy completions streams.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// The end of an OpenAI stream cut short: an error event, then `[DONE]`, after whatever partial
/// event came before (a blank line first, so the error is an event of its own).
pub fn truncated_stream_ending(tail_is_complete: bool) -> Vec<u8> {
    let err = crate::errors::envelope(
        TRUNCATED_MESSAGE,
        "server_error",
        None,
        Some(TRUNCATED_CODE),
    );
    let mut out = Vec::new();
    if !tail_is_complete {
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&err);
    out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    out
}

#[cfg(test)]
mod tests;
