use super::*;

const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":10}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n\
event: ping\ndata: {\"type\":\"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"SIG\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn run(chunks: &[&[u8]]) -> (String, Option<u64>) {
    let mut s = DirectStream::new(7);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.feed(c));
    }
    out.extend(s.finish());
    (String::from_utf8(out).unwrap(), s.tokens().map(|(n, _)| n))
}

#[test]
fn a_whole_stream_passes_as_it_came_at_every_split_point() {
    let bytes = STREAM.as_bytes();
    for at in 0..=bytes.len() {
        let (out, tokens) = run(&[&bytes[..at], &bytes[at..]]);
        assert_eq!(out, STREAM, "split at {at}");
        // 25 uncached + 10 read from the cache, and the last output count.
        assert_eq!(tokens, Some(50), "split at {at}");
    }
}

#[test]
fn a_stream_cut_short_ends_with_an_error_event() {
    let cut = STREAM.find("event: message_delta").unwrap();
    let (out, tokens) = run(&[&STREAM.as_bytes()[..cut]]);
    assert!(out.starts_with(&STREAM[..cut]), "{out}");
    assert!(out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The stream was cut short: the backend's answer ended before it was complete.\"}}\n\n"), "{out}");
    assert_eq!(tokens, Some(36));
    // Cut inside an event: the half event is dropped, not glued to the error.
    let (out, _) = run(&[&STREAM.as_bytes()[..cut + 30]]);
    assert!(!out.contains("message_delta"), "{out}");
    assert_eq!(out.matches("event: error").count(), 1, "{out}");
}

#[test]
fn a_last_event_without_its_blank_line_is_passed_whole() {
    let text = STREAM.strip_suffix("\n\n").unwrap();
    let (out, _) = run(&[text.as_bytes()]);
    assert_eq!(out, STREAM);
}

#[test]
fn errors_come_out_in_anthropic_shape_once_and_end_the_stream() {
    // As the flow writes a backend's error event: OpenAI's envelope.
    let openai = "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\",\"param\":null,\"code\":null}}\n\n";
    let (out, _) = run(&[
        STREAM
            .split("event: content_block_start")
            .next()
            .unwrap()
            .as_bytes(),
        openai.as_bytes(),
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ]);
    assert!(out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), "{out}");
    assert_eq!(out.matches("event: error").count(), 1);
    assert!(!out.contains("message_stop"));
    // The router's own ending of an oversized event (OpenAI's `server_error`).
    let own = "data: {\"error\":{\"message\":\"too big\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_event_too_large\"}}\n\n";
    let (out, _) = run(&[own.as_bytes()]);
    assert_eq!(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"too big\"}}\n\n");
    let (out, _) = run(&[&crate::sse::too_large_ending(false)]);
    assert!(out.starts_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The backend sent a stream event larger"), "{out}");
    assert_eq!(out.matches("event: error").count(), 1, "{out}");
}

#[test]
fn comments_pass() {
    let (out, _) = run(&[b": keep-alive\n\n", STREAM.as_bytes()]);
    assert_eq!(out, [": keep-alive\n\n", STREAM].concat());
}

#[test]
fn only_what_the_router_reads_is_checked() {
    let ok = br#"{"model":"m","max_tokens":5,"messages":[],"thinking":{"type":"enabled","budget_tokens":1024},"top_k":3,"anything":1}"#;
    assert_eq!(check_direct(ok, false), Ok(false));
    let streaming = br#"{"model":"m","max_tokens":5,"messages":[],"stream":true}"#;
    assert_eq!(check_direct(streaming, false), Ok(true));
    assert_eq!(
        check_direct(br#"{"model":"m","messages":[]}"#, true),
        Ok(false)
    );
    for (body, says) in [
        (&b"[]"[..], "JSON object"),
        (b"{", "not valid JSON"),
        (br#"{"messages":[]}"#, "model: Field required"),
        (br#"{"model":1,"messages":[]}"#, "model: must be a string"),
        (
            br#"{"model":"m","max_tokens":5}"#,
            "messages: Field required",
        ),
        (
            br#"{"model":"m","max_tokens":5,"messages":{}}"#,
            "messages: must be an array",
        ),
        (
            br#"{"model":"m","messages":[]}"#,
            "max_tokens: Field required",
        ),
        (
            br#"{"model":"m","max_tokens":0,"messages":[]}"#,
            "max_tokens: must be",
        ),
        (
            br#"{"model":"m","max_tokens":1.5,"messages":[]}"#,
            "max_tokens: must be",
        ),
        (
            br#"{"model":"m","max_tokens":5,"messages":[],"stream":"yes"}"#,
            "stream: must be",
        ),
    ] {
        let err = check_direct(body, false).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains(says),
            "{} -> {}",
            String::from_utf8_lossy(body),
            err.message
        );
    }
}

#[test]
fn a_whole_answer_is_counted_with_its_cache() {
    let body = br#"{"type":"message","usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":5}}"#;
    assert_eq!(message_tokens(body), Some(12));
    assert_eq!(message_tokens(br#"{"type":"message"}"#), None);
    assert_eq!(message_tokens(b"nope"), None);
}

#[test]
fn events_are_written_as_anthropic_writes_them() {
    let odd = "\u{feff}event: message_start\r\ndata: {\"type\":\"message_start\",\r\ndata:  \"message\":{\"usage\":{\"input_tokens\":2}}}\r\r: keep\r\rdata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\r\rdata: {\"type\":\"message_stop\"}\r\n\r\n";
    let (out, tokens) = run(&[odd.as_bytes()]);
    assert_eq!(
        out,
        "event: message_start\ndata: {\"type\":\"message_start\",  \"message\":{\"usage\":{\"input_tokens\":2}}}\n\n: keep\r\revent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    assert_eq!(tokens, Some(2));
}

#[test]
fn what_cannot_be_read_ends_the_stream_with_an_error() {
    // Data that is not JSON (its text was never checked for names): not passed on.
    let start = STREAM.split("event: content_block_start").next().unwrap();
    let bad = "event: content_block_delta\ndata: {not json at backend-x 10.0.0.5:80\n\n";
    let (out, _) = run(&[start.as_bytes(), bad.as_bytes(), STREAM.as_bytes()]);
    assert!(
        !out.contains("10.0.0.5") && !out.contains("not json"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "\"message\":\"The backend sent a stream event that could not be read.\"}}\n\n"
        ),
        "{out}"
    );
    // `message_stop` before any stop reason: the answer is not complete.
    let (out, _) = run(&[
        start.as_bytes(),
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ]);
    assert!(
        out.ends_with("ended without a stop reason.\"}}\n\n"),
        "{out}"
    );
    assert!(!out.contains("event: message_stop"), "{out}");
}

#[test]
fn a_stream_without_usage_is_charged_its_estimate() {
    let text = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let mut s = DirectStream::new(7);
    let mut out = s.feed(text.as_bytes());
    assert_eq!(s.tokens(), Some((7 + 2, true)));
    out.extend(s.finish());
    assert_eq!(String::from_utf8(out).unwrap(), text);
    // Not before it ended.
    let mut s = DirectStream::new(7);
    s.feed(&text.as_bytes()[..100]);
    assert_eq!(s.tokens(), None);
}
