//! Server-sent events: a byte-level incremental framer, and the per-event rewriter built on it
//! (model names renamed in every line, usage read in every dialect). Chunks may split events,
//! lines, CRLF pairs and UTF-8 characters anywhere; only whole events are emitted, each
//! rewritten or, when nothing changed, as the original bytes.
//!
//! Framing follows the WHATWG HTML "server-sent events" section: lines end with LF, CRLF or CR,
//! an empty line ends an event, `data:` lines of one event join with LF.

use std::borrow::Cow;

use memchr::{memchr, memchr2, memmem};

use crate::model_names::{NameRewriter, ScanState};

/// Largest event the framer holds while waiting for its end, and the largest it passes on.
/// Responses API events carry the whole response (`response.completed`) or a base64 image
/// (`partial_image`, a few MiB for a large PNG), so this is generous; a longer event ends the
/// stream (see [`SseModelRewriter::feed`]).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Cuts a byte stream into SSE events (each ending with its blank line). Each byte is looked at
/// once however the stream is chunked: the framer keeps where its search for line ends stopped.
#[derive(Debug, Default)]
pub struct SseFramer {
    /// Bytes of the event being read (and of events completed by the last chunk, until drained).
    pending: Vec<u8>,
    /// Where the line being read starts, in `pending`.
    line_start: usize,
    /// How far `pending` has been searched for line ends.
    scanned: usize,
    /// Bytes searched so far: the framer's work, for tests that show it is linear.
    work: u64,
    /// An event outgrew [`MAX_EVENT_BYTES`]: the rest of the stream is dropped.
    overflowed: bool,
}

/// Where the first complete event in `data` ends, or `None` when more bytes are needed.
/// Lines end with LF, CRLF or CR; a CR at the very end is undecided until the next byte.
pub fn event_end(data: &[u8]) -> Option<usize> {
    let mut framer = SseFramer::default();
    let mut end = None;
    framer.push(data, &mut |event| {
        end = end.or(Some(event.len()));
    });
    end
}

impl SseFramer {
    /// Adds a chunk and hands each event it completes to `on_event`. Once an event is over
    /// [`MAX_EVENT_BYTES`] (complete or not), nothing more is handed on: see [`Self::overflowed`].
    pub fn push(&mut self, chunk: &[u8], on_event: &mut dyn FnMut(&[u8])) {
        if self.overflowed {
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(off) = self
            .pending
            .get(self.scanned..)
            .and_then(|rest| memchr2(b'\n', b'\r', rest))
        {
            let at = self.scanned + off;
            self.work += off as u64 + 1;
            let eol = match (self.pending.get(at), self.pending.get(at + 1)) {
                (Some(b'\r'), Some(b'\n')) => 2,
                // A CR at the end may be half of a CRLF: decided when the next byte comes.
                (Some(b'\r'), None) => {
                    self.scanned = at;
                    break;
                }
                _ => 1,
            };
            let blank = at == self.line_start;
            self.scanned = at + eol;
            self.line_start = self.scanned;
            if blank {
                if self.scanned - start > MAX_EVENT_BYTES {
                    return self.overflow();
                }
                if let Some(event) = self.pending.get(start..self.scanned) {
                    on_event(event);
                }
                start = self.scanned;
            }
        }
        // Bytes after the last line end were searched too; a trailing CR waits for the next.
        let searched = self.pending.len() - usize::from(self.pending.last() == Some(&b'\r'));
        if searched > self.scanned {
            self.work += (searched - self.scanned) as u64;
            self.scanned = searched;
        }
        if self.pending.len() - start > MAX_EVENT_BYTES {
            return self.overflow();
        }
        self.pending.drain(..start);
        self.line_start -= start;
        self.scanned -= start;
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.pending = Vec::new();
        self.line_start = 0;
        self.scanned = 0;
    }

    /// Whether an event outgrew [`MAX_EVENT_BYTES`] (and was dropped, with the rest).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes searched for line ends so far (each byte once, give or take a trailing CR).
    pub fn work(&self) -> u64 {
        self.work
    }

    /// The bytes of an unfinished last event, when the stream ends.
    pub fn finish(&mut self) -> Vec<u8> {
        self.line_start = 0;
        self.scanned = 0;
        std::mem::take(&mut self.pending)
    }
}

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

/// The value of a `data:` line (one leading space removed, the line end dropped).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data:")?;
    let value = value.strip_prefix(b" ").unwrap_or(value);
    Some(strip_line_end(value))
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// An event's data: its `data:` lines joined with LF (borrowed when there is one).
fn event_data(event: &[u8]) -> Cow<'_, [u8]> {
    let mut values = lines(event).filter_map(data_value);
    let Some(first) = values.next() else {
        return Cow::Borrowed(&[]);
    };
    let Some(second) = values.next() else {
        return Cow::Borrowed(first);
    };
    let mut joined = [first, second].join(&b'\n');
    for v in values {
        joined.push(b'\n');
        joined.extend_from_slice(v);
    }
    Cow::Owned(joined)
}

/// The token count of an event that carries usage (cheap test first: most do not), wherever
/// its API puts it (see [`crate::json_body::total_tokens`]).
fn usage_of(event: &[u8]) -> Option<u64> {
    memmem::find(event, b"\"usage\"")?;
    crate::json_body::total_tokens(&event_data(event))
}

/// The final chunk OpenAI sends when asked for usage: no choices, just usage.
fn is_usage_only(event: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<serde::de::IgnoredAny>>,
    }
    serde_json::from_slice::<Chunk>(&event_data(event))
        .is_ok_and(|c| c.choices.is_some_and(|v| v.is_empty()))
}

fn is_done(event: &[u8]) -> bool {
    lines(event).any(|line| data_value(line).is_some_and(|v| v.trim_ascii_end() == b"[DONE]"))
}

/// Splits into lines, each with its terminator.
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match memchr2(b'\n', b'\r', rest) {
            Some(at) if rest.get(at) == Some(&b'\r') && rest.get(at + 1) == Some(&b'\n') => at + 2,
            Some(at) => at + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// Appends the event with every backend name renamed: JSON data as JSON, any other data and
/// the `event:`, `id:` and `retry:` lines as plain text after their field name; comments lose
/// their text and fields the spec ignores are dropped (see [`rewrite_field_line`]). An event whose JSON data is an error object goes out as OpenAI's envelope, with only
/// its fields (see [`crate::backend_errors::trimmed`]).
fn rewrite_event(names: &NameRewriter, event: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let data = event_data(event);
    let is_json = matches!(data.trim_ascii_start().first(), Some(b'{' | b'[' | b'"'));
    if is_json && memmem::find(&data, b"\"error\"").is_some() {
        if let Some(envelope) = crate::backend_errors::trimmed(&data, names) {
            for line in lines(event).filter(|l| !l.starts_with(b"data:")) {
                if strip_line_end(line).is_empty() {
                    continue;
                }
                rewrite_field_line(names, line, out);
            }
            out.extend_from_slice(b"data: ");
            out.extend(envelope);
            out.extend_from_slice(b"\n\n");
            return;
        }
    }
    let mut state = ScanState::default();
    let mut changed = false;
    for line in lines(event) {
        match line.strip_prefix(b"data:") {
            Some(value) => {
                let skip = usize::from(value.first() == Some(&b' '));
                out.extend_from_slice(line.get(..5 + skip).unwrap_or(&[]));
                let value = value.get(skip..).unwrap_or(&[]);
                changed |= if is_json {
                    names.rewrite_fragment(&mut state, value, out)
                } else {
                    names.rewrite_text(value, out)
                };
            }
            None => changed |= rewrite_field_line(names, line, out),
        }
    }
    if !changed {
        out.truncate(start);
        out.extend_from_slice(event);
    }
}

/// A line other than `data:`. `event:`, `id:` and `retry:` are renamed as text after their
/// field name; a comment keeps only its colon (a keep-alive still, its text meant for no one);
/// a field the SSE spec ignores (any other name) is dropped, as clients would ignore it.
/// Returns whether the line changed.
fn rewrite_field_line(names: &NameRewriter, line: &[u8], out: &mut Vec<u8>) -> bool {
    let content = strip_line_end(line);
    let ending = line.get(content.len()..).unwrap_or(&[]);
    let colon = memchr(b':', content);
    let field = content.get(..colon.unwrap_or(content.len())).unwrap_or(&[]);
    match (field, colon) {
        // The blank line ending the event, and a `data` field with no value.
        (b"", None) | (b"data", None) => {
            out.extend_from_slice(line);
            false
        }
        (b"", Some(_)) => {
            out.push(b':');
            out.extend_from_slice(ending);
            content.len() > 1
        }
        (b"event" | b"id" | b"retry", _) => {
            let (field, value) = line.split_at(colon.map_or(line.len(), |c| c + 1));
            out.extend_from_slice(field);
            names.rewrite_text(value, out)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests;
