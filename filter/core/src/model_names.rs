//! Rewrites model names in JSON texts going back to the client: the value of every `"model"` key,
//! and every string token equal to the backend's model name, become the client-visible name.
//!
//! Works on whole documents and on fragments (an SSE event's data lines), scanning only for
//! quotes and colons, so large bodies such as embeddings pass at memchr speed.

use memchr::{memchr2, memmem};

use crate::json_scan::string_end;

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

    fn may_need_rewrite(&self, input: &[u8]) -> bool {
        memmem::find(input, b"\"model\"").is_some()
            || self
                .backend_raw
                .iter()
                .any(|b| memmem::find(input, b).is_some())
    }

    /// Rewrites one complete JSON text; `None` when nothing changed.
    pub fn rewrite_document(&self, input: &[u8]) -> Option<Vec<u8>> {
        if !self.may_need_rewrite(input) {
            return None;
        }
        let mut out = Vec::with_capacity(input.len() + 16);
        let changed = self.rewrite_fragment(&mut ScanState::default(), input, &mut out);
        changed.then_some(out)
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
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn same_names_only_touch_model_keys() {
        let r = NameRewriter::new("same", "same");
        assert_eq!(r.rewrite_document(br#"{"a":"same"}"#), None);
    }
}
