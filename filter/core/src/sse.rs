//! Server-sent events: a byte-level incremental framer, and the per-event rewriter built on it
//! (model names renamed in every line, usage read in every dialect). Chunks may split events,
//! lines, CRLF pairs and UTF-8 characters anywhere; only whole events are emitted, each
//! rewritten or, when nothing changed, as the original bytes.
//!
//! Framing follows the WHATWG HTML "server-sent events" section: lines end with LF, CRLF or CR,
//! an empty line ends an event, `data:` lines of one event join with LF.
//!
//! Here: [`SseModelRewriter`] and the endings the router writes itself; `framer`: [`SseFramer`];
//! `event`: reading and rewriting one event.

use crate::model_names::NameRewriter;

mod event;
mod framer;

use event::{is_done, is_usage_only, rewrite_event, usage_of};
pub use framer::{event_end, SseFramer};

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
    /// An event `data: [DONE]` went by: the stream ended as OpenAI streams do.
    saw_done: bool,
    /// The stream's token count, once seen (see [`crate::json_body::total_tokens`]).
    usage_tokens: Option<u64>,
    /// Remove the usage-only chunk (the router asked for it, the client did not).
    strip_usage: bool,
    /// The API ends its streams with `data: [DONE]` (chat, legacy completions); the others
    /// (Responses, transcriptions) end with a typed event.
    ends_with_done: bool,
}

impl SseModelRewriter {
    pub fn new(names: NameRewriter) -> Self {
        SseModelRewriter {
            framer: SseFramer::default(),
            names,
            saw_done: false,
            usage_tokens: None,
            strip_usage: false,
            ends_with_done: true,
        }
    }

    /// A rewriter that also removes the usage-only chunk the router asked for.
    pub fn stripping_usage(names: NameRewriter) -> Self {
        SseModelRewriter {
            strip_usage: true,
            ..Self::new(names)
        }
    }

    /// Whether the stream's API ends streams with `data: [DONE]` (the default) or with typed
    /// events (Responses, transcriptions): it decides how an overlong event ends the stream.
    pub fn ending_with_done(mut self, done: bool) -> Self {
        self.ends_with_done = done;
        self
    }

    /// The stream's total tokens, when it carried usage.
    pub fn usage_tokens(&self) -> Option<u64> {
        self.usage_tokens
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
        let saw_done = &mut self.saw_done;
        let usage_tokens = &mut self.usage_tokens;
        let strip = self.strip_usage;
        self.framer.push(chunk, &mut |event| {
            *saw_done |= is_done(event);
            if let Some(tokens) = usage_of(event) {
                *usage_tokens = Some(tokens);
                if strip && is_usage_only(event) {
                    return;
                }
            }
            rewrite_event(names, event, &mut out)
        });
        if self.framer.overflowed() {
            out.extend(too_large_ending(self.ends_with_done));
            self.saw_done = true;
        }
        out
    }

    /// What is left when the upstream stream ends.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = self.framer.finish();
        self.saw_done |= is_done(&rest);
        if let Some(tokens) = usage_of(&rest) {
            self.usage_tokens = Some(tokens);
        }
        let mut out = Vec::with_capacity(rest.len());
        rewrite_event(&self.names, &rest, &mut out);
        out
    }

    /// Whether `data: [DONE]` has been seen (or the router ended the stream itself).
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// Whether an overlong event ended the stream.
    pub fn overflowed(&self) -> bool {
        self.framer.overflowed()
    }
}

/// The end of a stream whose backend sent an event over [`MAX_EVENT_BYTES`]: OpenAI's error
/// envelope then `[DONE]` for chat and completions, a Responses-style `error` event otherwise.
fn too_large_ending(ends_with_done: bool) -> Vec<u8> {
    const MESSAGE: &str =
        "The backend sent a stream event larger than the router passes on (16 MiB); the stream was ended.";
    const CODE: &str = "stream_event_too_large";
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

/// The end of an OpenAI stream cut short: an error event, then `[DONE]`, after whatever partial
/// event came before (a blank line first, so the error is an event of its own).
pub fn truncated_stream_ending(tail_is_complete: bool) -> Vec<u8> {
    let err = crate::errors::envelope(
        "The backend's stream ended before the answer was complete.",
        "server_error",
        None,
        Some("stream_truncated"),
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
