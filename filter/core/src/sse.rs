//! Server-sent events: a byte-level incremental framer, and the per-event model-name rewriter
//! built on it. Chunks may split events, lines, CRLF pairs and UTF-8 characters anywhere; only
//! whole events are emitted, each rewritten or, when nothing changed, as the original bytes.

use memchr::memchr2;

use crate::model_names::{NameRewriter, ScanState};

/// Largest event held back while waiting for its end; a longer one is passed on as it is.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Cuts a byte stream into SSE events (each ending with its blank line).
#[derive(Debug, Default)]
pub struct SseFramer {
    pending: Vec<u8>,
}

/// Where the first complete event in `data` ends, or `None` when more bytes are needed.
/// Lines end with LF, CRLF or CR; a CR at the very end is undecided until the next byte.
pub fn event_end(data: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    let mut pos = 0;
    loop {
        let at = pos + memchr2(b'\n', b'\r', data.get(pos..)?)?;
        let eol = if data.get(at) == Some(&b'\r') {
            match data.get(at + 1) {
                Some(b'\n') => 2,
                Some(_) => 1,
                None => return None,
            }
        } else {
            1
        };
        if at == line_start {
            return Some(at + eol);
        }
        line_start = at + eol;
        pos = line_start;
    }
}

impl SseFramer {
    /// Adds a chunk and hands each event it completes to `on_event`.
    pub fn push(&mut self, chunk: &[u8], on_event: &mut dyn FnMut(&[u8])) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(len) = self.pending.get(start..).and_then(event_end) {
            if let Some(event) = self.pending.get(start..start + len) {
                on_event(event);
            }
            start += len;
        }
        if self.pending.len() - start > MAX_EVENT_BYTES {
            if let Some(rest) = self.pending.get(start..) {
                on_event(rest);
            }
            start = self.pending.len();
        }
        self.pending.drain(..start);
    }

    /// The bytes of an unfinished last event, when the stream ends.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Rewrites the model names in every `data:` line of an SSE stream.
#[derive(Debug)]
pub struct SseModelRewriter {
    framer: SseFramer,
    names: NameRewriter,
    /// An event `data: [DONE]` went by: the stream ended as OpenAI streams do.
    saw_done: bool,
    /// `usage.total_tokens` from the stream, once seen.
    usage_tokens: Option<u64>,
    /// Remove the usage-only chunk (the router asked for it, the client did not).
    strip_usage: bool,
}

impl SseModelRewriter {
    pub fn new(names: NameRewriter) -> Self {
        SseModelRewriter {
            framer: SseFramer::default(),
            names,
            saw_done: false,
            usage_tokens: None,
            strip_usage: false,
        }
    }

    /// A rewriter that also removes the usage-only chunk the router asked for.
    pub fn stripping_usage(names: NameRewriter) -> Self {
        SseModelRewriter {
            strip_usage: true,
            ..Self::new(names)
        }
    }

    /// `usage.total_tokens`, when the stream carried it.
    pub fn usage_tokens(&self) -> Option<u64> {
        self.usage_tokens
    }

    /// What to send downstream for this chunk (possibly empty while an event is incomplete).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
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
        out
    }

    /// What is left when the upstream stream ends.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = self.framer.finish();
        self.saw_done |= is_done(&rest);
        let mut out = Vec::with_capacity(rest.len());
        rewrite_event(&self.names, &rest, &mut out);
        out
    }

    /// Whether `data: [DONE]` has been seen.
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }
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

/// The data of a one-line event.
fn single_data(event: &[u8]) -> Option<&[u8]> {
    let line = lines(event).find(|l| l.starts_with(b"data:"))?;
    let value = line.strip_prefix(b"data:")?;
    Some(value.strip_prefix(b" ").unwrap_or(value).trim_ascii_end())
}

/// `usage.total_tokens` of an event that carries usage (cheap test first: most do not).
fn usage_of(event: &[u8]) -> Option<u64> {
    memchr::memmem::find(event, b"\"usage\"")?;
    crate::json_body::total_tokens(single_data(event)?)
}

/// The final chunk OpenAI sends when asked for usage: no choices, just usage.
fn is_usage_only(event: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<serde::de::IgnoredAny>>,
    }
    single_data(event)
        .and_then(|d| serde_json::from_slice::<Chunk>(d).ok())
        .is_some_and(|c| c.choices.is_some_and(|v| v.is_empty()))
}

fn is_done(event: &[u8]) -> bool {
    lines(event).any(|line| {
        let value = line.strip_prefix(b"data:").unwrap_or(&[]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        value.trim_ascii_end() == b"[DONE]"
    })
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

fn rewrite_event(names: &NameRewriter, event: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut state = ScanState::default();
    let mut changed = false;
    for line in lines(event) {
        match line.strip_prefix(b"data:") {
            Some(value) => {
                let skip = usize::from(value.first() == Some(&b' '));
                out.extend_from_slice(line.get(..5 + skip).unwrap_or(&[]));
                changed |=
                    names.rewrite_fragment(&mut state, value.get(skip..).unwrap_or(&[]), out);
            }
            None => out.extend_from_slice(line),
        }
    }
    if !changed {
        out.truncate(start);
        out.extend_from_slice(event);
    }
}

#[cfg(test)]
mod tests;
