//! The walk over a JSON fragment (an SSE event's data lines, or a whole document that needs
//! one): every quote and colon in order, so it knows where strings begin even when the text was
//! cut anywhere, carrying a [`ScanState`] from one fragment to the next.

use memchr::memchr2;

use super::words::word_spans;
use super::{json_escaped, NameRewriter, ScanState};
use crate::json_scan::{decode_string, is_whitespace, string_end_noting_escapes};

impl NameRewriter {
    /// Appends `input`, rewritten, to `out`; `state` continues from the previous fragment of the same
    /// text. Returns whether anything was replaced.
    pub fn rewrite_fragment(&self, state: &mut ScanState, input: &[u8], out: &mut Vec<u8>) -> bool {
        let words = word_spans(&self.backend_raw, input, &self.lowered(input), true);
        let mut next_word = 0;
        let client_inner = self
            .client_json
            .get(1..self.client_json.len().saturating_sub(1))
            .unwrap_or(&[]);
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
            let Some((end, escaped)) = string_end_noting_escapes(input, at) else {
                // A string cut by the fragment's end: JSON strings never span lines, so this is
                // malformed input. The rest is renamed as plain text, so that no name in it
                // passes unread.
                state.expect_model_value = false;
                out.extend_from_slice(input.get(copied..at).unwrap_or(&[]));
                let rest = input.get(at..).unwrap_or(&[]);
                let renamed = self.rename_words(rest, &self.client_text, out);
                return changed || renamed;
            };
            let content = input.get(at + 1..end).unwrap_or(&[]);
            // Names standing as words before this string were outside strings: skipped.
            while words.get(next_word).is_some_and(|w| w.start <= at) {
                next_word += 1;
            }
            if escaped && self.has_backend_names() {
                // Read as the client's parser reads it; the string's raw words do not count.
                while words.get(next_word).is_some_and(|w| w.end <= end) {
                    next_word += 1;
                }
                let text = decode_string(content);
                let is_model_key = text == "model";
                let renamed = if state.expect_model_value
                    || (!is_model_key && self.backend_text.iter().any(|b| b.is(text.as_bytes())))
                {
                    Some(self.client_json.clone())
                } else {
                    let mut renamed = Vec::with_capacity(text.len() + 16);
                    self.rename_words(text.as_bytes(), self.client_plain.as_bytes(), &mut renamed)
                        .then(|| json_escaped(&String::from_utf8_lossy(&renamed)))
                };
                if let Some(renamed) = renamed {
                    out.extend_from_slice(input.get(copied..at).unwrap_or(&[]));
                    out.extend_from_slice(&renamed);
                    copied = end + 1;
                    changed = true;
                }
                state.expect_model_value = false;
                state.last_was_model_key = is_model_key;
                i = end + 1;
                continue;
            }
            let is_model_key = content == b"model";
            let replace = state.expect_model_value
                || (!is_model_key && self.backend_raw.iter().any(|b| b.is(content)));
            if replace {
                out.extend_from_slice(input.get(copied..at).unwrap_or(&[]));
                out.extend_from_slice(&self.client_json);
                copied = end + 1;
                changed = true;
            }
            while let Some(w) = words.get(next_word).filter(|w| w.end <= end) {
                next_word += 1;
                // The whole string was handled above (renamed, or the key `model`).
                let whole = w.start == at + 1 && w.end == end;
                if !replace && !whole {
                    out.extend_from_slice(input.get(copied..w.start).unwrap_or(&[]));
                    out.extend_from_slice(client_inner);
                    copied = w.end;
                    changed = true;
                }
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
