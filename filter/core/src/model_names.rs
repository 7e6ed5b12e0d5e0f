//! Rewrites model names in JSON texts going back to the client: the value of every `"model"` key,
//! and every string token equal to the backend's model name, become the client-visible name.
//!
//! Works on whole documents, searching them with memmem for `"model"` and the backend names, and
//! on fragments (an SSE event's data lines), walking only their quotes and colons; either way
//! large bodies such as embeddings pass at memchr speed.

use std::sync::OnceLock;

use memchr::{memchr2, memmem};

use crate::json_scan::{is_escaped, is_whitespace, skip_whitespace, string_end};

/// The names to swap for one request.
#[derive(Debug, Clone)]
pub struct NameRewriter {
    /// The client-visible name as a JSON string, quotes included.
    client_json: Vec<u8>,
    /// Backend names as they appear between quotes, those that differ from the client's (a
    /// failover model has one per target).
    backend_raw: Vec<Vec<u8>>,
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
        let backend_raw = backend_names
            .iter()
            .filter(|b| **b != client_name && !b.is_empty())
            .filter_map(|b| {
                let quoted = json_escaped(b);
                quoted
                    .get(1..quoted.len().saturating_sub(1))
                    .map(<[u8]>::to_vec)
            })
            .collect();
        NameRewriter {
            client_json,
            backend_raw,
        }
    }

    /// The client-visible name as a JSON string.
    pub fn client_json(&self) -> &[u8] {
        &self.client_json
    }

    /// Rewrites one complete JSON text; `None` when nothing changed. A whole text needs no walk
    /// from its start: a quote that is not escaped always opens or closes a string (JSON strings
    /// hold no bare quotes), so each `"model"` key and backend name memmem finds is checked where
    /// it stands. Fragments, whose start may lie inside a string, go through
    /// [`Self::rewrite_fragment`].
    pub fn rewrite_document(&self, input: &[u8]) -> Option<Vec<u8>> {
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
        // A backend model called `model` is renamed only as a `model` value, as in fragments.
        for name in self.backend_raw.iter().filter(|n| n.as_slice() != b"model") {
            for at in memmem::find_iter(input, name) {
                let (open, close) = (at.wrapping_sub(1), at + name.len());
                let quoted = input.get(open) == Some(&b'"') && input.get(close) == Some(&b'"');
                if quoted && !is_escaped(input, open) {
                    spans.push(open..close + 1);
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

    /// Appends `input`, rewritten, to `out`; `state` continues from the previous fragment of the same
    /// text. Returns whether anything was replaced.
    pub fn rewrite_fragment(&self, state: &mut ScanState, input: &[u8], out: &mut Vec<u8>) -> bool {
        let mut changed = false;
        let mut copied = 0;
        let mut i = 0;
        while let Some(off) = input.get(i..).and_then(|rest| memchr2(b'"', b':', rest)) {
            let at = i + off;
            if state.expect_model_value && !all_whitespace(input.get(i..at).unwrap_or(&[])) {
                state.expect_model_value = false;
            }
            if input.get(at) == Some(&b':') {
                state.expect_model_value = state.last_was_model_key;
                state.last_was_model_key = false;
                i = at + 1;
                continue;
            }
            let Some(end) = string_end(input, at) else {
                // A string cut by the fragment's end: JSON strings never span lines, so this is
                // malformed input; leave it as it is.
                state.expect_model_value = false;
                break;
            };
            let content = input.get(at + 1..end).unwrap_or(&[]);
            let is_model_key = content == b"model";
            let replace = state.expect_model_value
                || (!is_model_key && self.backend_raw.iter().any(|b| b.as_slice() == content));
            if replace {
                out.extend_from_slice(input.get(copied..at).unwrap_or(&[]));
                out.extend_from_slice(&self.client_json);
                copied = end + 1;
                changed = true;
            }
            state.expect_model_value = false;
            state.last_was_model_key = is_model_key;
            i = end + 1;
        }
        if state.expect_model_value && !all_whitespace(input.get(i..).unwrap_or(&[])) {
            state.expect_model_value = false;
        }
        out.extend_from_slice(input.get(copied..).unwrap_or(&[]));
        changed
    }
}

fn all_whitespace(b: &[u8]) -> bool {
    b.iter().all(|c| is_whitespace(*c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_json::{Rng, TRICKY};

    fn rw(input: &str) -> String {
        let r = NameRewriter::new("my-model", "backend/llama-3");
        match r.rewrite_document(input.as_bytes()) {
            Some(out) => String::from_utf8(out).unwrap(),
            None => input.to_string(),
        }
    }

    #[test]
    fn replaces_model_values_and_backend_tokens() {
        assert_eq!(
            rw(r#"{"id":"x","model":"backend/llama-3","choices":[]}"#),
            r#"{"id":"x","model":"my-model","choices":[]}"#
        );
        // A dated snapshot the backend chose is still replaced.
        assert_eq!(
            rw(r#"{"model" : "other-2024"}"#),
            r#"{"model" : "my-model"}"#
        );
        // Nested model keys (Responses API events) and bare tokens anywhere.
        assert_eq!(
            rw(r#"{"response":{"model":"x"},"meta":["backend/llama-3"]}"#),
            r#"{"response":{"model":"my-model"},"meta":["my-model"]}"#
        );
    }

    #[test]
    fn leaves_content_and_non_string_models_alone() {
        let content =
            r#"{"content":"the \"model\": \"backend/llama-3\" said","model":null,"x":"model"}"#;
        assert_eq!(rw(content), content);
        let arr = r#"{"data":[{"embedding":[0.1,-2e-3]}],"usage":{"prompt_tokens":3}}"#;
        assert_eq!(rw(arr), arr);
    }

    #[test]
    fn fragments_carry_the_pending_key() {
        let r = NameRewriter::new("c", "b");
        let mut st = ScanState::default();
        let mut out = Vec::new();
        r.rewrite_fragment(&mut st, br#"{"model":"#, &mut out);
        r.rewrite_fragment(&mut st, br#"  "zzz","x":1}"#, &mut out);
        assert_eq!(out, br#"{"model":  "c","x":1}"#.to_vec());
    }

    #[test]
    fn any_of_several_backend_names_is_replaced() {
        let r = NameRewriter::with_backends("c", &["b1", "b2"]);
        assert_eq!(
            r.rewrite_document(br#"{"x":"b2","y":["b1"],"z":"b3"}"#),
            Some(br#"{"x":"c","y":["c"],"z":"b3"}"#.to_vec())
        );
    }

    /// The document path (memmem, checked in place) and the fragment path (a walk from the
    /// start) rename the same strings in random documents full of model keys and backend names.
    #[test]
    fn documents_and_fragments_agree() {
        let r = NameRewriter::with_backends("c", &["b/x", "model"]);
        let pieces = [&TRICKY[..], &["model", "b/x", "c"]].concat();
        let mut rng = Rng::new(7);
        let mut renamed = 0;
        for _ in 0..3000 {
            let doc = rng.document(&pieces);
            let mut walked = Vec::new();
            r.rewrite_fragment(&mut ScanState::default(), doc.as_bytes(), &mut walked);
            let found = r.rewrite_document(doc.as_bytes());
            renamed += usize::from(found.is_some());
            let found = found.unwrap_or_else(|| doc.as_bytes().to_vec());
            assert_eq!(
                String::from_utf8(found).unwrap(),
                String::from_utf8(walked).unwrap(),
                "{doc}"
            );
        }
        assert!(
            renamed > 300,
            "only {renamed} documents had something to rename"
        );
    }

    #[test]
    fn same_names_only_touch_model_keys() {
        let r = NameRewriter::new("same", "same");
        assert_eq!(r.rewrite_document(br#"{"a":"same"}"#), None);
    }
}
