//! The record's parts on their own: what a transcript reads in each API's dialect, what a
//! request's content keeps, and the cut that keeps a record under its cap whatever it holds.

use serde_json::{json, Value};

use super::record::SCHEMA;
use super::*;
use crate::config::compile;

fn recorder(capture: &str, max: usize) -> Recorder {
    let text = format!("[session_log]\ncapture = \"{capture}\"\nmax_record_bytes = {max}\n");
    let plan = compile("t.toml", &text, &|_| None).unwrap();
    let log = plan.session_log.unwrap();
    struct NoHost;
    impl Host for NoHost {
        fn header(&self, _: Headers, name: &str) -> Option<std::borrow::Cow<'_, str>> {
            match name {
                ":method" => Some("POST".into()),
                ":path" => Some("/v1/chat/completions?api-version=1".into()),
                "x-request-id" => Some("r".repeat(300).into()),
                _ => None,
            }
        }
        fn header_names_with_prefix(&self, _: Headers, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn header_names(&self, _: Headers) -> Vec<String> {
            Vec::new()
        }
        fn set_header(&mut self, _: Headers, _: &str, _: Option<&str>) {}
        fn body(&self, _: Headers, _: usize) -> Option<Vec<u8>> {
            None
        }
        fn replace_body(&mut self, _: Headers, _: usize, _: &[u8]) -> bool {
            false
        }
        fn send_response(&mut self, _: u16, _: &[(&str, &str)], _: &[u8]) {}
        fn property(&self, _: &[&str]) -> Option<String> {
            None
        }
        fn log_warn(&self, _: &str) {}
        fn now_ms(&self) -> u64 {
            5
        }
        fn shared_get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
            None
        }
        fn shared_set(&mut self, _: &str, _: &[u8], _: u32) -> crate::host::SharedWrite {
            crate::host::SharedWrite::Failed
        }
        fn add(&mut self, _: &str, _: u64) {}
        fn set_property(&mut self, _: &str, _: &[u8]) {}
        fn clear_route_cache(&mut self) {}
        fn counter(&self, _: &str) -> u64 {
            0
        }
        fn http_call(&mut self, _: &crate::host::CallOut<'_>) -> Option<u32> {
            None
        }
        fn resume_request(&mut self) -> bool {
            false
        }
    }
    Recorder::start(&log, &NoHost)
}

#[test]
fn the_request_line_is_kept_without_its_query_and_bounded() {
    let mut rec = recorder("none", 4096);
    let r: Value = serde_json::from_slice(&rec.finish(Some(200), 9, None, None)).unwrap();
    assert_eq!(r["schema"], SCHEMA);
    assert_eq!(r["path"], "/v1/chat/completions");
    assert_eq!(r["request_id"].as_str().map(str::len), Some(MAX_ID_BYTES));
    assert_eq!(r["timings"]["total_ms"], 4);
}

#[test]
fn a_transcript_reads_each_apis_text_finish_and_usage() {
    let mut t = Transcript::new(true, 1000);
    t.add_body(br#"{"choices":[{"index":0,"text":"legacy","finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#);
    assert_eq!((t.text(), t.finish_reason()), ("legacy", Some("length")));
    assert_eq!(t.usage().and_then(|u| u.total_tokens), Some(3));

    let mut t = Transcript::new(true, 1000);
    t.add_body(br#"{"object":"response","status":"completed","output":[{"type":"reasoning"},{"type":"message","content":[{"type":"output_text","text":"Hi"},{"type":"refusal","refusal":"no"}]}],"usage":{"input_tokens":4,"output_tokens":1,"total_tokens":5}}"#);
    assert_eq!((t.text(), t.finish_reason()), ("Hi", Some("completed")));
    let u = t.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(4), Some(1)));

    let mut t = Transcript::new(true, 1000);
    for event in [
        r#"{"type":"response.created","response":{"status":"in_progress"}}"#,
        r#"{"type":"response.output_text.delta","delta":"Hel"}"#,
        r#"{"type":"response.output_text.delta","delta":"lo"}"#,
        r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":2,"output_tokens":2,"total_tokens":4}}}"#,
        "[DONE]",
        "not json",
    ] {
        t.add_event(event.as_bytes());
    }
    assert_eq!((t.text(), t.finish_reason()), ("Hello", Some("completed")));
    assert_eq!(t.usage().and_then(|u| u.total_tokens), Some(4));

    // Content that is not a string (parts), a second choice, a null finish: no failure.
    let mut t = Transcript::new(true, 1000);
    t.add_event(br#"{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":[1]},"finish_reason":null}]}"#);
    t.add_event(br#"{"choices":[{"index":0,"delta":{"content":"mine"}}]}"#);
    assert_eq!((t.text(), t.finish_reason()), ("mine", None));
}

#[test]
fn a_transcript_keeps_at_most_its_share_of_text_and_counts_the_rest() {
    let mut t = Transcript::new(true, 5);
    t.add_event(r#"{"choices":[{"delta":{"content":"abcdé"}}]}"#.as_bytes());
    t.add_event(br#"{"choices":[{"delta":{"content":"fgh"}}]}"#);
    assert_eq!(t.text(), "abcd", "cut on a character boundary");
    assert_eq!(t.text_bytes(), 9);
    assert!(t.text_cut());
    let mut counting = Transcript::new(false, 5);
    counting.add_event(br#"{"choices":[{"delta":{"content":"abcdefgh"}}]}"#);
    assert_eq!((counting.text(), counting.text_bytes()), ("", 8));
    assert!(!counting.text_cut());
}

#[test]
fn request_content_keeps_the_newest_items_that_fit() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"one"},{"role":"user","content":"two"}]}"#;
    let all = RequestContent::read(Api::Chat, body, true, 1000);
    assert_eq!((all.count, all.kept.len(), all.omitted), (2, 2, 0));
    let some = RequestContent::read(Api::Chat, body, true, 40);
    assert_eq!((some.kept.len(), some.omitted), (1, 1));
    assert!(some.kept[0].get().contains("two"));
    let shape = RequestContent::read(Api::Chat, body, false, 1000);
    assert_eq!(
        (shape.count, shape.kept.len(), shape.bytes),
        (2, 0, body.len())
    );
    let prompt = RequestContent::read(
        Api::Completions,
        br#"{"prompt":"say hi","model":"m"}"#,
        true,
        100,
    );
    assert_eq!(
        (prompt.array, prompt.count, prompt.kept[0].get()),
        (false, 1, "\"say hi\"")
    );
    let form = RequestContent::read(Api::AudioTranscriptions, b"--x\r\n", true, 100);
    assert_eq!((form.field, form.bytes), (None, 5));
}

#[test]
fn any_record_fits_its_cap_even_when_the_text_is_all_escapes() {
    for text in [
        "\"".repeat(20_000),
        "\u{1}".repeat(9_000),
        "é".repeat(9_000),
    ] {
        let mut rec = recorder("full", 4096);
        let body = json!({"messages": [{"role": "user", "content": text.clone()}]}).to_string();
        rec.routed(Api::Chat, "m", Some(body.as_bytes()));
        rec.attempt("b", "bm", Some(200));
        let mut t = rec.transcript();
        t.add_body(
            json!({"choices": [{"message": {"content": text}}]})
                .to_string()
                .as_bytes(),
        );
        let out = rec.finish(Some(200), 10, Some(&t), None);
        assert!(out.len() <= 4096, "{} bytes", out.len());
        let r: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(r["truncated"], true);
        assert_eq!(
            r["request"]["omitted"], 1,
            "a message over the cap is left out whole"
        );
        let said = r["response"]["text"].as_str().unwrap();
        assert!(!said.is_empty() && text.starts_with(said));
    }
}
