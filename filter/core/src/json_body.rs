//! Request bodies edited in place: find the top-level `model` and splice a new value into the
//! original bytes. Every other byte, unknown fields included, reaches the backend as sent.
//!
//! # One model for every parser
//!
//! The backend must read the model the router checked, whatever JSON parser it uses. So a body is
//! refused (400) unless exactly one top-level key could be read as `model` by any of them, and that
//! key is written exactly `"model"`:
//!
//! - strict JSON (RFC 8259, serde_json): valid UTF-8, no BOM, comments, trailing commas, `NaN`,
//!   or text after the object, which lenient parsers or Go's streaming decoder read otherwise;
//! - no second `model`, as written or decoded (`mod\u0065l`): Python, Go, JavaScript and most
//!   others keep the last, some the first;
//! - no other key that Go's `encoding/json` matches to a `model` field: it folds case (`MODEL`,
//!   `Model`, Unicode simple folding such as the Kelvin sign for `k`) and keeps the last match;
//! - no key that reads as `model` once its escapes are decoded (`mod\u0065l`, `MOD\u0045L`),
//!   once cut at a NUL, as C parsers holding keys as C strings do (`model\u0000x`), or once its
//!   control characters are dropped (`mo\u0001del`).
//!
//! Nested objects are not the request's model and are left alone.

use std::ops::Range;

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::errors::ApiError;
use crate::json_scan;
use crate::text::concat;

/// The fields of a request body the router reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelField {
    /// Byte range of the `model` value (with its quotes) in the body.
    pub span: Range<usize>,
    /// The decoded name.
    pub name: String,
}

/// The top level of a request body: the `model` value, and whether another key could be read
/// as `model` too.
struct TopLevel<'a> {
    model: Option<&'a RawValue>,
    ambiguous: Option<&'static str>,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel {
            model: None,
            ambiguous: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Model => {
                    if top.model.is_some() {
                        top.ambiguous
                            .get_or_insert("the body has the key `model` twice");
                    }
                    top.model = Some(map.next_value()?);
                }
                Key::ReadAsModel => {
                    top.ambiguous.get_or_insert(
                        "the body has a key that some parsers read as `model` (another case, escapes or a NUL)",
                    );
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
}

/// A top-level key, as far as the model is concerned.
enum Key {
    /// Written exactly `"model"`.
    Model,
    /// Another key some parser reads as `model` (see the module doc).
    ReadAsModel,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    /// A key borrowed from the body had no escapes: it is written as it reads.
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key, E> {
        Ok(match key {
            "model" => Key::Model,
            _ if may_read_as(key, "model") => Key::ReadAsModel,
            _ => Key::Other,
        })
    }

    /// A key decoded from escapes.
    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(if may_read_as(key, "model") {
            Key::ReadAsModel
        } else {
            Key::Other
        })
    }
}

/// Whether some JSON parser may read the decoded key `key` as the field `field` (ASCII, lower
/// case): equal under Unicode simple case folding (Go's `encoding/json`), also when cut at its
/// first NUL (C strings) or with its control characters dropped (sanitizers).
pub(crate) fn may_read_as(key: &str, field: &str) -> bool {
    let cut = key.split('\0').next().unwrap_or(key);
    folds_equal(cut.chars(), field) || folds_equal(key.chars().filter(|c| !c.is_control()), field)
}

/// `key` equals `field` under simple case folding.
fn folds_equal(mut key: impl Iterator<Item = char>, field: &str) -> bool {
    let mut f = field.chars();
    loop {
        match (key.next(), f.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if folds_to(a, b) => {}
            _ => return false,
        }
    }
}

/// `a` and `b` are one letter under simple case folding (U+212A, the Kelvin sign, is `k`;
/// U+017F, long s, is `s`).
fn folds_to(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase()) || a.to_uppercase().eq(b.to_uppercase())
}

#[derive(Deserialize)]
struct StreamFields<'a> {
    #[serde(borrow, default)]
    stream: Present<'a>,
    #[serde(borrow, default)]
    stream_options: Present<'a>,
}

/// A member's raw value when the member is present, `null` included (an `Option` field would
/// read `null` as absent, and a member added in front of a `null` one would be read last).
#[derive(Default)]
struct Present<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Present<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| Present(Some(raw)))
    }
}

/// A streaming body rewritten to ask the backend for usage.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageRequest {
    pub body: Vec<u8>,
    /// The client did not ask for usage itself: the usage chunk is the router's, and is taken
    /// out of what the client gets.
    pub strip: bool,
}

/// For a streaming chat or completions body, the body that makes the backend report usage, so
/// that a key's token budget can be charged: `stream_options.include_usage` set to `true`,
/// added when absent or `null`, replaced when `false` or missing from the client's own
/// `stream_options` object (whose other members are kept). `Ok(None)` when the body needs no
/// change (not streaming, or already asking). Errors, as OpenAI answers them: `stream` that is
/// not a boolean (`"true"` streams on some servers, so it cannot be read as "not streaming"),
/// `stream_options` or `include_usage` of another type.
pub fn with_stream_usage(body: &[u8]) -> Result<Option<UsageRequest>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_json())?;
    let fields: StreamFields = serde_json::from_str(text).map_err(|_| ApiError::bad_json())?;
    match fields.stream.0.map(RawValue::get) {
        None | Some("null") | Some("false") => return Ok(None),
        Some("true") => {}
        Some(_) => {
            return Err(ApiError::invalid_param(
                "stream",
                "Invalid type for 'stream': expected a boolean.",
            ))
        }
    }
    const ASK: &str = r#"{"include_usage":true}"#;
    let Some(raw) = fields.stream_options.0.filter(|r| r.get() != "null") else {
        // Absent (or null): added as the body's first member, or the null replaced.
        let out = match fields.stream_options.0 {
            Some(null) => splice(body, span_in(text, null.get()), ASK.as_bytes()),
            None => {
                let at = text.find('{').ok_or_else(ApiError::bad_json)? + 1;
                let rest = text.get(at..).unwrap_or_default();
                let comma = if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                let member = concat(&["\"stream_options\":", ASK, comma]);
                splice(body, at..at, member.as_bytes())
            }
        };
        return Ok(Some(UsageRequest {
            body: out,
            strip: true,
        }));
    };
    let invalid = || {
        ApiError::invalid_param(
            "stream_options",
            "Invalid type for 'stream_options': expected an object with a boolean 'include_usage'.",
        )
    };
    let mut options: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw.get()).map_err(|_| invalid())?;
    match options.get("include_usage") {
        Some(serde_json::Value::Bool(true)) => return Ok(None),
        None | Some(serde_json::Value::Bool(false)) | Some(serde_json::Value::Null) => {}
        Some(_) => return Err(invalid()),
    }
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    let replaced = serde_json::to_string(&options).map_err(|_| invalid())?;
    Ok(Some(UsageRequest {
        body: splice(body, span_in(text, raw.get()), replaced.as_bytes()),
        strip: true,
    }))
}

/// Whether a JSON body asks for a stream: `stream` is `true` (a body that cannot be read asks
/// for none).
pub fn asks_stream(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        stream: Option<bool>,
    }
    memchr::memmem::find(body, b"\"stream\"").is_some()
        && serde_json::from_slice::<Fields>(body).is_ok_and(|f| f.stream == Some(true))
}

/// Whether a streaming chat or completions body asks for usage itself: `stream` is `true` and
/// `stream_options.include_usage` is `true`. False for anything else, malformed bodies included
/// (a body without the word `include_usage` is not parsed).
pub fn asks_stream_usage(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Options {
        #[serde(default)]
        include_usage: Option<bool>,
    }
    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        stream_options: Option<Options>,
    }
    memchr::memmem::find(body, b"include_usage").is_some()
        && serde_json::from_slice::<Fields>(body).is_ok_and(|f| {
            f.stream == Some(true) && f.stream_options.and_then(|o| o.include_usage) == Some(true)
        })
}

/// Where `part`, a slice borrowed from `text` (a raw value serde handed back), lies in it.
fn span_in(text: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    start..start.saturating_add(part.len())
}

/// The tokens a response body or stream event reports using, wherever its API puts them:
/// top-level `usage` (chat, completions, embeddings, non-streamed Responses, transcriptions with
/// `"type":"tokens"`, streamed chat and transcription events) or `response.usage` (the Responses
/// stream's `response.completed`, `response.incomplete` and `response.failed`). Within it,
/// `total_tokens`, else the sum of `input_tokens` and `output_tokens` (Responses, audio), else of
/// `prompt_tokens` and `completion_tokens`. `None` without usage, or with usage in other units
/// (a transcription's `"type":"duration"`). Found by walking the text rather than parsing it:
/// the body goes to the client as the backend wrote it, so only these members are read.
pub fn total_tokens(json: &[u8]) -> Option<u64> {
    let is_object = |v: &&[u8]| v.first() == Some(&b'{');
    let usage = json_scan::member(json, b"usage")
        .filter(is_object)
        .or_else(|| json_scan::member(json_scan::member(json, b"response")?, b"usage"))
        .filter(is_object)?;
    let count = |key: &[u8]| json_scan::member(usage, key).and_then(json_scan::as_count);
    if let Some(total) = count(b"total_tokens") {
        return Some(total);
    }
    let sum = |a: &[u8], b: &[u8]| match (count(a), count(b)) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
    };
    sum(b"input_tokens", b"output_tokens").or_else(|| sum(b"prompt_tokens", b"completion_tokens"))
}

/// Finds the top-level `model` of a JSON request body, or the OpenAI error for a body without one.
pub fn find_model(body: &[u8]) -> Result<ModelField, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_json())?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => ApiError::not_an_object(),
            Err(_) => ApiError::bad_json(),
        });
    }
    let top: TopLevel = serde_json::from_str(text).map_err(|_| ApiError::bad_json())?;
    if let Some(why) = top.ambiguous {
        return Err(ApiError::ambiguous_model(why));
    }
    let raw = top.model.ok_or_else(ApiError::missing_model)?;
    let value = raw.get();
    if value == "null" {
        return Err(ApiError::missing_model());
    }
    if !value.starts_with('"') {
        return Err(ApiError::model_not_a_string());
    }
    let name: String = serde_json::from_str(value).map_err(|_| ApiError::bad_json())?;
    // `value` borrows from `text`, so its address lies inside the body.
    let span = span_in(text, value);
    if body.get(span.clone()) != Some(value.as_bytes()) {
        return Err(ApiError::internal("could not locate the model field"));
    }
    Ok(ModelField { span, name })
}

/// The body with `span` replaced by `name` as a JSON string.
pub fn splice_string(body: &[u8], span: Range<usize>, name: &str) -> Vec<u8> {
    splice(body, span, quoted(name).as_bytes())
}

/// `text` as a JSON string, quotes included. Model names seldom need escapes, so those that do
/// not are quoted directly; the rest go through serde_json.
pub fn quoted(text: &str) -> String {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        return concat(&["\"", text, "\""]);
    }
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

/// The body with `span` replaced by `with`.
pub fn splice(body: &[u8], span: Range<usize>, with: &[u8]) -> Vec<u8> {
    let head = body.get(..span.start).unwrap_or(&[]);
    let tail = body.get(span.end..).unwrap_or(&[]);
    let mut out = Vec::with_capacity(head.len() + with.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(with);
    out.extend_from_slice(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_replaces_only_the_model_value() {
        let body = br#"{"messages":[{"role":"user","content":"model \"x\""}], "model" : "gpt-4o","zz_unknown":{"model":"inner"}}"#;
        let f = find_model(body).unwrap();
        assert_eq!(f.name, "gpt-4o");
        let out = splice_string(body, f.span, "llama/3 \"8b\"");
        let expected = br#"{"messages":[{"role":"user","content":"model \"x\""}], "model" : "llama/3 \"8b\"","zz_unknown":{"model":"inner"}}"#;
        assert_eq!(out, expected.to_vec());
    }

    #[test]
    fn streaming_requests_are_asked_for_usage_once() {
        let asked = |body: &str| {
            let out = with_stream_usage(body.as_bytes()).unwrap().unwrap();
            assert!(out.strip, "{body}");
            let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
            assert_eq!(v["stream_options"]["include_usage"], true, "{body}");
            v
        };
        assert_eq!(asked(r#"{"model":"m","stream":true}"#)["model"], "m");
        assert_eq!(asked(r#"{"stream":true}"#)["stream"], true);
        // A client declining usage, or asking for nothing, still has the backend report it
        // (the router's chunk is taken out again): otherwise a budgeted key streams for free.
        asked(r#"{"stream":true,"stream_options":{"include_usage":false}}"#);
        asked(r#"{"stream":true,"stream_options":{}}"#);
        asked(r#"{"stream":true,"stream_options":null}"#);
        let kept = asked(r#"{"stream":true,"stream_options":{"continuous_usage_stats":true}}"#);
        assert_eq!(kept["stream_options"]["continuous_usage_stats"], true);
        for no_change in [
            r#"{"model":"m"}"#,
            r#"{"stream":false}"#,
            r#"{"stream":null}"#,
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
        ] {
            assert_eq!(
                with_stream_usage(no_change.as_bytes()),
                Ok(None),
                "{no_change}"
            );
        }
        for refused in [
            r#"{"stream":"true"}"#,
            r#"{"stream":1}"#,
            r#"{"stream":true,"stream_options":"x"}"#,
            r#"{"stream":true,"stream_options":{"include_usage":"no"}}"#,
        ] {
            let err = with_stream_usage(refused.as_bytes()).unwrap_err();
            assert_eq!(err.status, 400, "{refused}");
        }
        assert_eq!(
            total_tokens(br#"{"usage":{"prompt_tokens":1,"total_tokens":9}}"#),
            Some(9)
        );
        assert_eq!(total_tokens(br#"{"usage":null}"#), None);
    }

    #[test]
    fn a_body_asks_for_stream_usage_only_when_streaming_with_include_usage_true() {
        let asks = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}}"#;
        assert!(asks_stream_usage(asks.as_bytes()));
        for not in [
            r#"{"model":"m","stream":true}"#,
            r#"{"model":"m","stream":false,"stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":null}}"#,
            r#"{"model":"m","stream":"true","stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}"#,
        ] {
            assert!(!asks_stream_usage(not.as_bytes()), "{not}");
        }
    }

    #[test]
    fn usage_is_found_in_every_dialect() {
        let cases: [(&[u8], Option<u64>); 9] = [
            (br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#, Some(7)),
            (br#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":100,"output_tokens":300,"total_tokens":400}},"sequence_number":9}"#, Some(400)),
            (br#"{"type":"response.incomplete","sequence_number":9,"response":{"usage":{"input_tokens":5,"output_tokens":6}}}"#, Some(11)),
            (br#"{"type":"response.created","response":{"usage":null}}"#, None),
            (br#"{"text":"hi","usage":{"type":"tokens","input_tokens":14,"output_tokens":45,"total_tokens":59}}"#, Some(59)),
            (br#"{"text":"hi","usage":{"type":"duration","seconds":3}}"#, None),
            (br#"{"object":"list","usage":{"prompt_tokens":8}}"#, Some(8)),
            // Usage of the top level wins over a nested response's.
            (br#"{"usage":{"total_tokens":1},"response":{"usage":{"total_tokens":2}}}"#, Some(1)),
            (br#"{"usage":{"total_tokens":"9"}}"#, None),
        ];
        for (json, want) in cases {
            assert_eq!(
                total_tokens(json),
                want,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn quotes_like_serde() {
        for name in [
            "llama-3.1",
            "a/b:c",
            "é 🚀",
            "",
            "q\"",
            "b\\s",
            "tab\t",
            "\u{1}",
            "\u{7f}",
        ] {
            assert_eq!(
                quoted(name),
                serde_json::to_string(name).unwrap(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn decodes_escaped_names() {
        let f = find_model(br#"{"model":"a\u0062c"}"#).unwrap();
        assert_eq!(f.name, "abc");
        assert_eq!(f.span, 9..19);
    }

    /// Issue 14: every way a backend's parser could read another model than the one checked.
    #[test]
    fn keys_any_parser_reads_as_model_are_refused() {
        let ambiguous = [
            // last-wins duplicates (Python, Go, JavaScript), also escaped
            r#"{"model":"allowed","model":"other"}"#,
            r#"{"model":"allowed","mod\u0065l":"other"}"#,
            r#"{"mod\u0065l":"other","model":"allowed"}"#,
            // Go's case-insensitive field matching
            r#"{"model":"allowed","MODEL":"other"}"#,
            r#"{"model":"allowed","Model":"other"}"#,
            r#"{"MoDeL":"other","model":"allowed"}"#,
            r#"{"model":"allowed","MOD\u0045L":"other"}"#,
            // keys C parsers cut at a NUL
            r#"{"model":"allowed","model\u0000":"other"}"#,
            r#"{"model":"allowed","MODEL\u0000x":"other"}"#,
            r#"{"model":"allowed","\u0000model":"other"}"#,
            r#"{"model":"allowed","mo\u0001del":"other"}"#,
            // an escaped spelling alone, or a variant alone
            r#"{"mod\u0065l":"allowed"}"#,
            r#"{"\u006dodel":"allowed"}"#,
            r#"{"Model":"allowed"}"#,
        ];
        for body in ambiguous {
            let e = find_model(body.as_bytes()).unwrap_err();
            assert_eq!((e.status, e.code), (400, Some("ambiguous_model")), "{body}");
        }
        // Keys that no parser reads as `model` pass; nested ones are the request's own business.
        for body in [
            r#"{"model":"m","models":"x","model ":"x","x\u0000model":"x","mode":"x"}"#,
            r#"{"model":"m","metadata":{"model":"x","MODEL":"y"},"m\u00f6del":"x"}"#,
            r#"{"model":"m","mod\u0435l":"cyrillic e"}"#,
        ] {
            assert_eq!(find_model(body.as_bytes()).unwrap().name, "m", "{body}");
        }
        // Bodies other parsers read differently are not JSON objects here.
        for body in [
            "\u{feff}{\"model\":\"m\"}",
            "{\"model\":\"m\"} {\"model\":\"x\"}",
            "{\"model\":\"m\",}",
            "{\"model\":\"m\" /* c */}",
            "{\"model\":\"m\",\"t\":NaN}",
            "\u{a0}{\"model\":\"m\"}",
            "{\"model\":\"m\"}\u{c}",
        ] {
            assert_eq!(
                find_model(body.as_bytes()).unwrap_err(),
                ApiError::bad_json(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn case_folding_follows_go() {
        assert!(may_read_as("MODEL", "model"));
        assert!(may_read_as("model\0anything", "model"));
        assert!(may_read_as("\u{212a}ey", "key"), "Kelvin sign");
        assert!(may_read_as("\u{17f}tream", "stream"), "long s");
        assert!(!may_read_as("modelx", "model"));
        assert!(!may_read_as("mode", "model"));
        assert!(may_read_as("\0model", "model"), "sanitized");
        assert!(may_read_as("mo\u{1}del\u{7f}", "model"));
        assert!(!may_read_as("mo del", "model"));
        assert!(!may_read_as("mod\u{435}l", "model"));
    }

    #[test]
    fn bad_bodies_get_openai_errors() {
        let cases: [(&[u8], u16, Option<&str>); 7] = [
            (b"{not json", 400, None),
            (b"[1,2]", 400, None),
            (b"{}", 400, Some("model")),
            (br#"{"model":null}"#, 400, Some("model")),
            (br#"{"model":7}"#, 400, Some("model")),
            (br#"{"model":"a","model":"b"}"#, 400, Some("model")),
            (b"\xff\xfe", 400, None),
        ];
        for (body, status, param) in cases {
            let e = find_model(body).unwrap_err();
            assert_eq!(
                (e.status, e.param),
                (status, param),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
