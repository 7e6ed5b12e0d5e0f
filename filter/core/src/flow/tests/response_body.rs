//! The response body renamed: JSON, SSE, text; bodies passed untouched or counted; streams cut
//! short or with an event over the limit.

use super::host::*;
use crate::host::{Action, Headers, Host};
use crate::{metrics, sse};

#[test]
fn json_responses_lose_backend_names() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[b"{\"model\":\"qwen2-", b"0.5b\",\"x\":1}"],
    );
    assert_eq!(out, b"{\"model\":\"chat-small\",\"x\":1}".to_vec());
    assert_eq!(
        h.header(Headers::Response, "content-length"),
        Some(out.len().to_string().into())
    );
}

#[test]
fn sse_responses_are_rewritten_chunk_by_chunk() {
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[
            b"data: {\"model\":\"qwen2-0.5b\"}\n\ndata: {\"mod",
            b"el\":\"qwen2-0.5b\"}\n\ndata: [DONE]\n\n",
        ],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: {\"model\":\"chat-small\"}\n\ndata: {\"model\":\"chat-small\"}\n\ndata: [DONE]\n\n"
    );
}

#[test]
fn binary_responses_pass_untouched() {
    let (mut f, mut h) = routed();
    let out = respond(&mut f, &mut h, "200", "audio/mpeg", &[b"ID3\x00qwen2-0.5b"]);
    assert_eq!(out, b"ID3\x00qwen2-0.5b".to_vec());
    assert_eq!(
        h.header(Headers::Response, "content-length").as_deref(),
        Some("99")
    );
}

#[test]
fn a_compressed_readable_body_is_refused_not_passed_unrenamed() {
    // The request asked for identity encoding: a compressed (or only said to be compressed)
    // JSON, event-stream or text answer would carry the backend's names unread.
    for ctype in ["application/json", "text/event-stream", "text/plain"] {
        let (mut f, mut h) = routed();
        h.resp = vec![
            (":status".into(), "200".into()),
            ("content-type".into(), ctype.into()),
            ("content-encoding".into(), "identity, gzip".into()),
        ];
        f.on_response_headers(&mut h, false);
        h.resp_body = b"\x1f\x8b\"model\":\"qwen2-0.5b\"".to_vec();
        let n = h.resp_body.len();
        f.on_response_body(&mut h, n, true);
        let body = String::from_utf8_lossy(&h.resp_body).into_owned();
        assert!(body.contains("bad_backend_response"), "{ctype}: {body}");
        assert!(!body.contains("qwen2"), "{body}");
        assert_eq!(
            h.header(Headers::Response, ":status").as_deref(),
            Some("502")
        );
        assert_eq!(h.header(Headers::Response, "content-encoding"), None);
    }
}

#[test]
fn a_chat_stream_cut_short_ends_with_an_error_event_and_done() {
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {\"model\":\"qwen2-0.5b\"}\n\ndata: {\"partial"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "data: {\"model\":\"chat-small\"}\n\ndata: {\"partial\n\ndata: {\"error\""
        ),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    // A complete stream is left alone.
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {}\n\ndata: [DONE]\n\n"],
    );
    assert_eq!(out, b"data: {}\n\ndata: [DONE]\n\n".to_vec());
    // A backend that tells its failure and closes: its error once, then `[DONE]`.
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {}\n\ndata: {\"error\":{\"message\":\"boom at 10.0.0.1\",\"code\":503}}\n\n"],
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\"error\"").count(), 1, "{text}");
    assert!(
        text.ends_with("\"code\":\"503\"}}\n\ndata: [DONE]\n\n"),
        "{text}"
    );
    // The router's own ending of a stream it translated keeps its code and words.
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[&crate::sse::too_large_ending(true)],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\"code\":\"stream_event_too_large\""),
        "{text}"
    );
    assert!(text.contains(crate::sse::TOO_LARGE_MESSAGE), "{text}");
}

#[test]
fn names_inside_longer_strings_are_renamed_in_json_and_sse() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"qwen2-0.5b","choices":[{"message":{"content":"model qwen2-0.5b overloaded"}}]}"#],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"chat-small","choices":[{"message":{"content":"model chat-small overloaded"}}]}"#
    );
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[
            b"event: qwen2-0.5b\nid: qwen2-0.5b-1\n: qwen2-0.5b\ndata: {\"x\":\"by qwen2-0.5b\"}\n\n",
            b"data: qwen2-0.5b plain\n\ndata: [DONE]\n\n",
        ],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event: chat-small\nid: chat-small-1\n:\ndata: {\"x\":\"by chat-small\"}\n\ndata: chat-small plain\n\ndata: [DONE]\n\n"
    );
}

/// JSON Lines, NDJSON, JSON text sequences and vendor JSON types are renamed as JSON, every
/// line of them.
#[test]
fn json_lines_and_other_json_types_are_renamed() {
    for ctype in [
        "application/jsonl",
        "application/x-ndjson",
        "application/json-seq",
        "application/vnd.api+json",
        "text/x-json",
    ] {
        let (mut f, mut h) = routed();
        let out = respond(
            &mut f,
            &mut h,
            "200",
            ctype,
            &[b"{\"model\":\"qwen2-0.5b\"}\n{\"a\":\"by QWEN2-0.5B\"}\n"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"model\":\"chat-small\"}\n{\"a\":\"by chat-small\"}\n",
            "{ctype}"
        );
    }
}

#[test]
fn text_bodies_are_renamed_with_their_exact_length() {
    for ctype in [
        "text/plain; charset=utf-8",
        "text/vtt",
        "application/xml",
        "",
    ] {
        let (mut f, mut h) = routed();
        let out = respond(&mut f, &mut h, "200", ctype, &[b"qwen2-0.5b says ", b"hi"]);
        assert_eq!(out, b"chat-small says hi".to_vec(), "{ctype}");
        assert_eq!(
            h.header(Headers::Response, "content-length"),
            Some(out.len().to_string().into())
        );
    }
}

#[test]
fn bodies_that_cannot_be_renamed_are_counted() {
    let counted = |h: &FakeHost| h.counter(&metrics::model(metrics::MODEL_UNRENAMED, "chat-small"));
    // Compressed media (the request asked for none) and unknown types pass on, counted.
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "audio/mpeg".into()),
        ("content-encoding".into(), "gzip".into()),
    ];
    f.on_response_headers(&mut h, false);
    assert_eq!(counted(&h), 1);
    assert_eq!(
        h.header(Headers::Response, "content-encoding").as_deref(),
        Some("gzip")
    );
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/octet-stream",
        &[b"qwen2-0.5b"],
    );
    assert_eq!(out, b"qwen2-0.5b".to_vec());
    assert_eq!(counted(&h), 1);
    // Audio is not a leak: passed on, not counted.
    let (mut f, mut h) = routed();
    respond(&mut f, &mut h, "200", "audio/wav", &[b"RIFF"]);
    assert_eq!(counted(&h), 0);
    // A compressed error is not passed on at all: its status is.
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "500".into()),
        ("content-type".into(), "application/json".into()),
        ("content-encoding".into(), "br".into()),
    ];
    assert_eq!(f.on_response_headers(&mut h, false), Action::Pause);
    h.resp_body = b"\x1b\x00qwen2-0.5b".to_vec();
    let n = h.resp_body.len();
    f.on_response_body(&mut h, n, true);
    let v: serde_json::Value = serde_json::from_slice(&h.resp_body).unwrap();
    assert_eq!(v["error"]["message"], "The backend answered HTTP 500.");
    assert_eq!(h.header(Headers::Response, "content-encoding"), None);
    assert_eq!(
        h.header(Headers::Response, ":status").as_deref(),
        Some("500")
    );
}

#[test]
fn an_overlong_stream_event_ends_the_stream_and_is_counted() {
    let (mut f, mut h) = routed_streaming();
    let big = vec![b'x'; sse::MAX_EVENT_BYTES + 1];
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {}\n\ndata: ", &big, b"\n\ndata: [DONE]\n\n"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("data: {}\n\ndata: {\"error\""),
        "{}",
        &text[..100]
    );
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
    assert_eq!(text.matches("[DONE]").count(), 1);
    assert_eq!(
        h.counter(&metrics::model(
            metrics::MODEL_EVENTS_TOO_LARGE,
            "chat-small"
        )),
        1
    );
}

/// A backend that streams an answer the request did not ask to be streamed: the client reads
/// JSON, so it gets a 502 rather than a success it cannot parse.
#[test]
fn a_stream_to_a_request_that_asked_for_none_is_a_502() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {\"model\":\"qwen2-0.5b\"}\n\n", b"data: [DONE]\n\n"],
    );
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("502"));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], "bad_backend_response");
    assert_eq!(
        header_of_resp(&h, "content-type").as_deref(),
        Some("application/json")
    );
}

/// A backend that answers whole where the request asked for a stream: the client reads events,
/// so it gets a 502 rather than an empty stream.
#[test]
fn a_whole_answer_to_a_request_that_asked_for_a_stream_is_a_502() {
    let (mut f, mut h) = routed_streaming();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"qwen2-0.5b","choices":[]}"#],
    );
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("502"));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], "bad_backend_response");
}
