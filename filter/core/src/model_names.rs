//! Rewrites model names in texts going back to the client. In JSON: the value of every `"model"`
//! key, every string equal to a backend's model name, and every place inside a longer string
//! where a backend name stands as a word, become the client-visible name. In plain text (SSE
//! field lines, `text/plain` bodies): every place a backend name stands as a word.
//!
//! "As a word": a name made only of word characters (ASCII letters, digits, `_`) is not renamed
//! where it continues a longer identifier, so that the protocol's own strings survive a backend
//! model with a plain name: for a backend model `chat`, `"model chat overloaded"`, `"(chat)"`,
//! `"chat."` and `"chat-v2"` are renamed, but `chat.completion.chunk`, `text_chat`,
//! `chatcmpl-1` are not (a `.` between two word characters joins them; in JSON an escape such
//! as `\n` or `\u00e9` ends a word). A name with any other character (`qwen2-0.5b`,
//! `meta-llama/Llama-3`) cannot be part of a protocol string and is renamed wherever it occurs:
//! `qwen2-0.5b-instruct` and `qwen2-0.5b.chunk` become `chat-small-instruct` and `chat-small.chunk`.
//!
//! Names are matched in any ASCII case (`QWEN2-0.5B` too), and in what a client's JSON parser
//! reads rather than in the bytes: a string holding an escape that can stand for a printable
//! character (`\u002d`, `\/`) is decoded, renamed and written back in canonical JSON (only that
//! string; its other escapes may be written differently, meaning the same).
//!
//! Works on whole documents, searching them with memmem for `"model"` and the backend names, and
//! on fragments (an SSE event's data lines), walking only their quotes and colons; either way
//! large bodies such as embeddings pass at memchr speed. A document where a name stands inside a
//! longer string, or with such an escape anywhere, is walked like a fragment, which knows where
//! strings begin.
//!
//! Here: [`NameRewriter`] and the document path; `fragment`: the walk over a fragment;
//! `words`: each name's case-insensitive searcher and the "as a word" test.

use std::sync::OnceLock;

use memchr::memmem;

use crate::json_scan::{has_printable_escape, is_escaped, skip_whitespace, string_end};

mod fragment;
mod words;

use words::{is_word_at, word_spans, CiName};

/// The names to swap for one request.
#[derive(Debug, Clone)]
pub struct NameRewriter {
    /// The client-visible name as a JSON string, quotes included.
    client_json: Vec<u8>,
    /// The client-visible name as plain text, control characters made spaces (it goes into SSE
    /// field lines, where a line break would start a new field).
    client_text: Vec<u8>,
    /// The client-visible name as it is, for decoded JSON strings (encoded again after).
    client_plain: String,
    /// Backend names as they appear between quotes, those that differ from the client's (a
    /// failover model has one per target), longest first, each with its searcher built once.
    backend_raw: Vec<CiName>,
    /// The same names as plain text, longest first.
    backend_text: Vec<CiName>,
}

/// Scanner state carried across the fragments of one JSON text.
#[derive(Debug, Clone, Default)]
pub struct ScanState {
    /// The last string was the key `model`...
    last_was_model_key: bool,
    /// ...and a colon followed it: the next string, if only whitespace comes first, is its value.
    expect_model_value: bool,
}

fn json_escaped(s: &str) -> Vec<u8> {
    crate::json_body::quoted(s).into_bytes()
}

impl NameRewriter {
    pub fn new(client_name: &str, backend_name: &str) -> Self {
        Self::with_backends(client_name, &[backend_name])
    }

    /// A rewriter for a response that may come from any of several backend model names.
    pub fn with_backends(client_name: &str, backend_names: &[&str]) -> Self {
        let client_json = json_escaped(client_name);
        let mut names: Vec<&str> = backend_names
            .iter()
            .copied()
            .filter(|b| *b != client_name && !b.is_empty())
            .collect();
        names.sort_by_key(|b| std::cmp::Reverse(b.len()));
        names.dedup();
        let backend_raw = names
            .iter()
            .filter_map(|b| {
                let quoted = json_escaped(b);
                quoted
                    .get(1..quoted.len().saturating_sub(1))
                    .map(CiName::new)
            })
            .collect();
        let backend_text = names.iter().map(|b| CiName::new(b.as_bytes())).collect();
        let client_text = client_name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into_bytes();
        NameRewriter {
            client_json,
            client_text,
            client_plain: client_name.to_string(),
            backend_raw,
            backend_text,
        }
    }

    /// Whether there is any name to replace (a pass-through model has none but `model` values).
    pub fn has_backend_names(&self) -> bool {
        !self.backend_text.is_empty()
    }

    /// The backend names as plain text, longest first.
    pub fn backend_names(&self) -> impl Iterator<Item = &[u8]> {
        self.backend_text.iter().map(|n| n.needle.as_slice())
    }

    /// The client-visible name as a JSON string.
    pub fn client_json(&self) -> &[u8] {
        &self.client_json
    }

    /// The client-visible name as it is.
    pub fn client_name(&self) -> &str {
        &self.client_plain
    }

    /// The client-visible name as plain text (control characters made spaces).
    pub fn client_text(&self) -> &[u8] {
        &self.client_text
    }

    /// Rewrites one complete JSON text; `None` when nothing changed. A whole text needs no walk
    /// from its start: a quote that is not escaped always opens or closes a string (JSON strings
    /// hold no bare quotes), so each `"model"` key and backend name memmem finds is checked where
    /// it stands. Fragments, whose start may lie inside a string, go through
    /// [`Self::rewrite_fragment`].
    pub fn rewrite_document(&self, input: &[u8]) -> Option<Vec<u8>> {
        if self.has_backend_names() && has_printable_escape(input) {
            return self.walk(input);
        }
        let lower = self.lowered(input);
        let mut spans = Vec::new();
        static MODEL_KEY: OnceLock<memmem::Finder<'static>> = OnceLock::new();
        let model_key = MODEL_KEY.get_or_init(|| memmem::Finder::new(b"\"model\""));
        for key in model_key.find_iter(input) {
            let colon = skip_whitespace(input, key + 7);
            if is_escaped(input, key) || input.get(colon) != Some(&b':') {
                continue;
            }
            let open = skip_whitespace(input, colon + 1);
            if input.get(open) == Some(&b'"') {
                if let Some(close) = string_end(input, open) {
                    spans.push(open..close + 1);
                }
            }
        }
        for finder in &self.backend_raw {
            let name = &finder.needle;
            for at in finder.find_iter(&lower) {
                let (open, close) = (at.wrapping_sub(1), at + name.len());
                let quoted = input.get(open) == Some(&b'"') && input.get(close) == Some(&b'"');
                if quoted && !is_escaped(input, open) {
                    // The key `model` (a backend model of that name) is renamed only as a
                    // `model` value, as in fragments.
                    if input.get(at..close) != Some(b"model") {
                        spans.push(open..close + 1);
                    }
                } else if is_word_at(input, at..close, true) {
                    // Inside a longer string (or outside any): only a walk knows which.
                    return self.walk(input);
                }
            }
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_unstable_by_key(|s| s.start);
        let mut out = Vec::with_capacity(input.len() + 16);
        let mut copied = 0;
        for span in spans {
            // A model value that is also a backend name was found twice.
            if span.start < copied {
                continue;
            }
            out.extend_from_slice(input.get(copied..span.start).unwrap_or(&[]));
            out.extend_from_slice(&self.client_json);
            copied = span.end;
        }
        out.extend_from_slice(input.get(copied..).unwrap_or(&[]));
        Some(out)
    }

    /// `input` lower-cased for [`CiName::find_iter`]; empty when there is no name to find.
    fn lowered(&self, input: &[u8]) -> Vec<u8> {
        if self.has_backend_names() {
            input.to_ascii_lowercase()
        } else {
            Vec::new()
        }
    }

    /// The whole text walked as one fragment; `None` when nothing changed.
    fn walk(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() + 16);
        let changed = self.rewrite_fragment(&mut ScanState::default(), input, &mut out);
        changed.then_some(out)
    }
}

impl NameRewriter {
    /// Appends `input`, a plain text, to `out` with every backend name standing as a word
    /// replaced by the client's; returns whether anything was replaced.
    pub fn rewrite_text(&self, input: &[u8], out: &mut Vec<u8>) -> bool {
        self.rename_words(input, &self.client_text, out)
    }

    /// Appends `input`, a plain text, to `out` with every backend name standing as a word (in
    /// any case) replaced by `client`; returns whether anything was replaced.
    fn rename_words(&self, input: &[u8], client: &[u8], out: &mut Vec<u8>) -> bool {
        let words = word_spans(&self.backend_text, input, &self.lowered(input), false);
        let mut copied = 0;
        for w in &words {
            out.extend_from_slice(input.get(copied..w.start).unwrap_or(&[]));
            out.extend_from_slice(client);
            copied = w.end;
        }
        out.extend_from_slice(input.get(copied..).unwrap_or(&[]));
        !words.is_empty()
    }
}

#[cfg(test)]
mod tests;
