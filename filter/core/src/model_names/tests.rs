//! The renamer on whole documents, fragments and plain text: model values, backend names as
//! words, escaped and case-changed spellings, and random documents checked against a parser.

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

#[test]
fn a_malformed_fragment_has_its_rest_renamed_as_text() {
    let r = NameRewriter::new("my-model", "backend/llama-3");
    let mut out = Vec::new();
    let changed = r.rewrite_fragment(
        &mut ScanState::default(),
        br#"{"a":"ok","b":"cut at backend/llama-3 10.0.0.5"#,
        &mut out,
    );
    assert!(changed);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a":"ok","b":"cut at my-model 10.0.0.5"#
    );
}
