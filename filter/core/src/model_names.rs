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

use std::ops::Range;
use std::sync::OnceLock;

use memchr::memchr2;
use memchr::memmem::{self, Finder};

use crate::json_scan::{
    decode_string, has_printable_escape, is_escaped, is_whitespace, skip_whitespace, string_end,
    string_end_noting_escapes,
};

/// One backend name and its searcher for any ASCII case: memmem for the lower-cased name in
/// the lower-cased text (positions and lengths are the same in both). One pass to lower a text
/// serves every name; memmem keeps the search linear and at memchr speed, which a search for the
/// first byte followed by a comparison would not be on a text of near misses.
#[derive(Debug, Clone)]
struct CiName {
    needle: Vec<u8>,
    lower: Finder<'static>,
}

impl CiName {
    fn new(needle: &[u8]) -> Self {
        CiName {
            needle: needle.to_vec(),
            lower: Finder::new(&needle.to_ascii_lowercase()).into_owned(),
        }
    }

    /// Where the name starts in the text whose lower-cased copy is `lower`, in any case,
    /// without overlaps, in order.
    fn find_iter<'a>(&'a self, lower: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        self.lower.find_iter(lower)
    }

    fn is(&self, text: &[u8]) -> bool {
        self.needle.eq_ignore_ascii_case(text)
    }
}

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
                // malformed input; leave it as it is.
                state.expect_model_value = false;
                break;
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

/// Where `names` stand as words in `hay` (see the module doc), in any ASCII case, a longer name
/// winning over a shorter one it contains; in order, without overlaps. `lower` is `hay`
/// lower-cased. `json`: `hay` is JSON text, whose escapes end words. Linear in `hay` per name,
/// plus a sort: a backend repeating a name a million times costs no more than its bytes.
fn word_spans(names: &[CiName], hay: &[u8], lower: &[u8], json: bool) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    for finder in names {
        let name = &finder.needle;
        // Spans of longer names so far, sorted and disjoint, to test overlaps by bisection.
        let taken = spans.len();
        for at in finder.find_iter(lower) {
            let span = at..at + name.len();
            let earlier = spans.get(..taken).unwrap_or(&[]);
            let after = earlier.partition_point(|s| s.end <= span.start);
            let overlaps = earlier.get(after).is_some_and(|s| s.start < span.end);
            if !overlaps && is_word_at(hay, span.clone(), json) {
                spans.push(span);
            }
        }
        spans.sort_unstable_by_key(|s| s.start);
    }
    spans
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the name at `span` is to be renamed: any name with a non-word byte is; a plain one
/// only where it stands as a word, not continuing a word before or after it.
fn is_word_at(hay: &[u8], span: Range<usize>, json: bool) -> bool {
    if !hay
        .get(span.clone())
        .is_some_and(|name| name.iter().all(|b| is_word_byte(*b)))
    {
        return true;
    }
    let first = hay.get(span.start).copied().is_some_and(is_word_byte);
    let last = span
        .end
        .checked_sub(1)
        .and_then(|i| hay.get(i))
        .copied()
        .is_some_and(is_word_byte);
    (!first || starts_word(hay, span.start, json)) && (!last || ends_word(hay, span.end))
}

fn starts_word(hay: &[u8], at: usize, json: bool) -> bool {
    let byte = |i: Option<usize>| i.and_then(|i| hay.get(i)).copied();
    let Some(prev) = byte(at.checked_sub(1)) else {
        return true;
    };
    if prev == b'.' {
        return !byte(at.checked_sub(2)).is_some_and(is_word_byte);
    }
    if !is_word_byte(prev) {
        return true;
    }
    // In JSON a letter or digit may be the end of an escape: `\n`, `\u00e9`.
    json && (matches!(prev, b'b' | b'f' | b'n' | b'r' | b't') && is_escaped(hay, at - 1)
        || at >= 6
            && hay.get(at - 5) == Some(&b'u')
            && is_escaped(hay, at - 5)
            && hay
                .get(at - 4..at)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

fn ends_word(hay: &[u8], end: usize) -> bool {
    match hay.get(end) {
        None => true,
        Some(b'.') => !hay.get(end + 1).copied().is_some_and(is_word_byte),
        Some(next) => !is_word_byte(*next),
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
    fn leaves_non_string_models_and_quoted_keys_alone() {
        // The backend name inside the content is renamed; the `"model"` inside it is not a key.
        let content =
            r#"{"content":"the \"model\": \"backend/llama-3\" said","model":null,"x":"model"}"#;
        assert_eq!(
            rw(content),
            r#"{"content":"the \"model\": \"my-model\" said","model":null,"x":"model"}"#
        );
        let arr = r#"{"data":[{"embedding":[0.1,-2e-3]}],"usage":{"prompt_tokens":3}}"#;
        assert_eq!(rw(arr), arr);
    }

    #[test]
    fn names_inside_longer_strings_are_renamed() {
        let r = NameRewriter::new("chat-small", "qwen2-0.5b");
        let doc = |s: &str| {
            r.rewrite_document(s.as_bytes())
                .map(|o| String::from_utf8(o).unwrap())
                .unwrap_or_else(|| s.to_string())
        };
        assert_eq!(
            doc(r#"{"error":{"message":"model qwen2-0.5b overloaded"}}"#),
            r#"{"error":{"message":"model chat-small overloaded"}}"#
        );
        // A name with a non-word character is renamed wherever it occurs.
        assert_eq!(
            doc(r#"{"a":"(qwen2-0.5b). xqwen2-0.5b-v2.chunk\nqwen2-0.5b"}"#),
            r#"{"a":"(chat-small). xchat-small-v2.chunk\nchat-small"}"#
        );
        // Keys too, and never outside strings.
        assert_eq!(doc(r#"{"by qwen2-0.5b":1}"#), r#"{"by chat-small":1}"#);
    }

    #[test]
    fn plain_names_are_renamed_as_words() {
        let r = NameRewriter::new("chat-small", "llama3");
        let doc = |s: &str| {
            r.rewrite_document(s.as_bytes())
                .map(|o| String::from_utf8(o).unwrap())
                .unwrap_or_else(|| s.to_string())
        };
        // Sentence ends, punctuation, escapes and other names around it.
        assert_eq!(
            doc(r#"{"a":"(llama3). `llama3`\nllama3\tllama3-v2 llama3:8b /llama3"}"#),
            r#"{"a":"(chat-small). `chat-small`\nchat-small\tchat-small-v2 chat-small:8b /chat-small"}"#
        );
        // A string with a `\u` escape is decoded, renamed and written again canonically.
        assert_eq!(
            doc(r#"{"a":"llama3\u00e9llama3\n","b":"\u00e9"}"#),
            "{\"a\":\"chat-small\u{e9}chat-small\\n\",\"b\":\"\\u00e9\"}"
        );
        // Not where it continues another identifier.
        for kept in [
            r#"{"a":"xllama3"}"#,
            r#"{"a":"llama3x"}"#,
            r#"{"a":"llama3_x"}"#,
            r#"{"a":"llama3.x"}"#,
            r#"{"a":"v.llama3"}"#,
            r#"{"a":[1,llama3]}"#,
        ] {
            assert_eq!(doc(kept), kept);
        }
    }

    /// A backend model with a plain name leaves the protocol's own strings alone.
    #[test]
    fn protocol_strings_survive_a_plain_backend_name() {
        let r = NameRewriter::new("my-chat", "chat");
        let chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"chat","choices":[{"delta":{"content":"let's chat"}}]}"#;
        assert_eq!(
            String::from_utf8(r.rewrite_document(chunk.as_bytes()).unwrap()).unwrap(),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"my-chat","choices":[{"delta":{"content":"let's my-chat"}}]}"#
        );
        let r = NameRewriter::new("c", "output_text");
        let event = r#"{"type":"response.output_text.delta","x":{"type":"output_text"}}"#;
        assert_eq!(
            String::from_utf8(r.rewrite_document(event.as_bytes()).unwrap()).unwrap(),
            r#"{"type":"response.output_text.delta","x":{"type":"c"}}"#
        );
    }

    #[test]
    fn plain_text_is_renamed_as_words() {
        let r = NameRewriter::with_backends("chat\r\nx", &["llama-3", "llama-3-70b", "phi3"]);
        let mut out = Vec::new();
        assert!(r.rewrite_text(b"llama-3-70b, then llama-3: phi3 xphi3", &mut out));
        // The longer name wins; control characters of the client name become spaces.
        assert_eq!(out, b"chat  x, then chat  x: chat  x xphi3".to_vec());
        let mut out = Vec::new();
        assert!(!r.rewrite_text(b"nothing here", &mut out));
        assert_eq!(out, b"nothing here".to_vec());
    }

    /// A backend repeating its name costs work linear in its bytes, however many times.
    #[test]
    fn many_occurrences_stay_linear() {
        let r = NameRewriter::with_backends("c", &["ab", "abab"]);
        let text = "ab ".repeat(200_000);
        let mut out = Vec::new();
        r.rewrite_text(text.as_bytes(), &mut out);
        assert_eq!(out, "c ".repeat(200_000).into_bytes());
        let doc = format!("{{\"x\":\"{text}\"}}");
        let out = r.rewrite_document(doc.as_bytes()).unwrap();
        assert_eq!(out.len(), doc.len() - 200_000);
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
        let pieces = [&TRICKY[..], &["model", "b/x", "c", " ", ".", "x_"]].concat();
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

    /// What a client's parser reads: names written with escapes (`\u002d`, `\/`, one escaped
    /// letter) or in another case are renamed, in documents and in fragments.
    #[test]
    fn escaped_and_case_changed_spellings_are_renamed() {
        let r = NameRewriter::with_backends("chat", &["zeta-secret-7b", "acme/zeta-slash-1"]);
        for (input, want) in [
            (
                r#"{"a":"I am zeta\u002dsecret\u002d7b"}"#,
                r#"{"a":"I am chat"}"#,
            ),
            (
                r#"{"a":"I am \u007aeta-secret-7b"}"#,
                r#"{"a":"I am chat"}"#,
            ),
            (r#"{"a":"I am ZETA-SECRET-7B"}"#, r#"{"a":"I am chat"}"#),
            (r#"{"a":"Zeta-Secret-7B"}"#, r#"{"a":"chat"}"#),
            (r#"{"a":"acme\/zeta-slash-1"}"#, r#"{"a":"chat"}"#),
            (
                r#"{"a":"I am acme\/ZETA-slash-1\n"}"#,
                r#"{"a":"I am chat\n"}"#,
            ),
            (
                r#"{"mod\u0065l":"other","b":"x"}"#,
                r#"{"mod\u0065l":"chat","b":"x"}"#,
            ),
            // Only strings with such escapes are written again; others stay byte for byte.
            (
                r#"{"a":"\u00e9 zeta-secret-7b","b":"\u00e9"}"#,
                "{\"a\":\"\u{e9} chat\",\"b\":\"\\u00e9\"}",
            ),
        ] {
            let got = r
                .rewrite_document(input.as_bytes())
                .map(|o| String::from_utf8(o).unwrap());
            assert_eq!(got.as_deref(), Some(want), "{input}");
            let mut walked = Vec::new();
            assert!(r.rewrite_fragment(&mut ScanState::default(), input.as_bytes(), &mut walked));
            assert_eq!(String::from_utf8(walked).unwrap(), want, "{input}");
        }
        let mut out = Vec::new();
        assert!(r.rewrite_text(b"I am ZETA-Secret-7b.", &mut out));
        assert_eq!(out, b"I am chat.".to_vec());
    }

    fn strings_of(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings_of(x, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push(k.clone());
                strings_of(x, out);
            }),
            _ => {}
        }
    }

    /// Random documents full of spellings of a name: once renamed, no string a parser reads
    /// holds the name in any case, and the document is still valid JSON.
    #[test]
    fn no_spelling_survives_decoding() {
        let r = NameRewriter::with_backends("c", &["b/x"]);
        let spellings = [
            "b/x",
            "B/X",
            "b\\/x",
            "\\u0062/x",
            "b\\u002Fx",
            "b\\/X",
            "model",
        ];
        let pieces = [&TRICKY[..], &spellings].concat();
        let mut rng = Rng::new(99);
        for _ in 0..3000 {
            let doc = rng.document(&pieces);
            let out = r
                .rewrite_document(doc.as_bytes())
                .unwrap_or_else(|| doc.as_bytes().to_vec());
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let mut strings = Vec::new();
            strings_of(&v, &mut strings);
            for s in strings {
                assert!(!s.to_ascii_lowercase().contains("b/x"), "{s} in {doc}");
            }
        }
    }

    #[test]
    fn same_names_only_touch_model_keys() {
        let r = NameRewriter::new("same", "same");
        assert_eq!(r.rewrite_document(br#"{"a":"same"}"#), None);
    }
}
