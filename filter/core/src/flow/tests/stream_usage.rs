//! Streams whose backend reports no usage (llama.cpp's server ignores
//! `stream_options.include_usage`): counted from their streamed text, and, when the client asked
//! for usage, ended with a usage chunk the router writes from that count.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::HttpFlow;
use crate::host::Host;
use crate::{global_limits, metrics};

/// A chat chunk of the backend's stream carrying `content`.
fn chat_chunk(content: &str) -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "qwen2-0.5b",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

/// A stream of `contents`, ending with a `finish_reason` chunk and `[DONE]`, with no usage.
fn stream_without_usage(contents: &[&str]) -> String {
    let mut s: String = contents.iter().map(|c| chat_chunk(c)).collect();
    s.push_str("data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"qwen2-0.5b\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

/// The `data:` values of a stream's events.
fn data_of(out: &[u8]) -> Vec<String> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// Routes `body` for alice and answers it with `stream`, cut into `cut`-byte chunks.
fn stream(body: &[u8], stream: &str, cut: usize) -> (FakeHost, Vec<u8>) {
    let mut f = flow();
    let mut h = send(&mut f, chat("sk-alice", body));
    assert!(h.sent.is_none());
    let chunks: Vec<&[u8]> = stream.as_bytes().chunks(cut).collect();
    let out = respond(&mut f, &mut h, "200", "text/event-stream", &chunks);
    (h, out)
}

const ASKING: &[u8] = br#"{"model":"chat-small","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":8}"#;

#[test]
fn a_client_that_asked_for_usage_gets_a_usage_chunk_before_done() {
    let backend = stream_without_usage(&["Hello", " there", "!"]);
    for cut in [1, 7, backend.len()] {
        let (h, out) = stream(ASKING, &backend, cut);
        let events = data_of(&out);
        let n = events.len();
        assert_eq!(events[n - 1], "[DONE]");
        let usage: serde_json::Value = serde_json::from_str(&events[n - 2]).unwrap();
        // OpenAI's usage chunk: the stream's id, object and created, the client's model name,
        // no choices, the three counts.
        assert_eq!(usage["id"], "chatcmpl-7");
        assert_eq!(usage["object"], "chat.completion.chunk");
        assert_eq!(usage["created"], 1_700_000_000);
        assert_eq!(usage["model"], "chat-small");
        assert_eq!(usage["choices"], serde_json::json!([]));
        let prompt = global_limits::prompt_tokens(ASKING);
        // Three chunks of text, 12 bytes: three tokens (more than 12 / 4).
        assert_eq!(usage["usage"]["prompt_tokens"], prompt);
        assert_eq!(usage["usage"]["completion_tokens"], 3);
        assert_eq!(usage["usage"]["total_tokens"], prompt + 3);
        // Every other event passes as it was, renamed; exactly one usage chunk.
        assert_eq!(n, 3 + 1 + 1 + 1, "cut {cut}");
        assert_eq!(events.iter().filter(|e| e.contains("\"usage\"")).count(), 1);
        assert!(!String::from_utf8_lossy(&out).contains("qwen2"));
        // The count is the stream's: charged, and in the token stats.
        assert_eq!(
            h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
            prompt + 3
        );
        assert_eq!(
            h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")),
            prompt + 3
        );
        assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1);
    }
}

#[test]
fn completion_tokens_are_the_larger_of_output_chunks_and_the_texts_estimate() {
    let completion = |contents: &[&str]| {
        let (_, out) = stream(ASKING, &stream_without_usage(contents), 64);
        let events = data_of(&out);
        let usage: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        usage["usage"]["completion_tokens"].as_u64().unwrap()
    };
    // A 40-letter run and a letter in two chunks: 8 + 1 tokens by text, more than 2 chunks.
    assert_eq!(completion(&[&"x".repeat(40), "y"]), 9);
    // Digits and symbols count one each: 12 by text.
    assert_eq!(completion(&["123456", "<|>!?."]), 12);
    // A chunk whose text is empty is still a token the backend ran (a special token that
    // decodes to nothing); the role-only and finish chunks are not.
    assert_eq!(completion(&["", "a"]), 2);
    assert_eq!(completion(&["", "", "", ""]), 4);
}

#[test]
fn each_choice_of_a_stream_is_counted() {
    let mut backend = String::new();
    for (i, text) in [(0, "a"), (1, "b"), (1, "c"), (0, "d")] {
        backend.push_str(&format!(
            "data: {{\"id\":\"x\",\"choices\":[{{\"index\":{i},\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        ));
    }
    backend.push_str("data: [DONE]\n\n");
    let (_, out) = stream(ASKING, &backend, 5);
    let events = data_of(&out);
    let usage: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 4);
}

#[test]
fn reported_usage_is_passed_and_counted_as_reported() {
    let mut backend = stream_without_usage(&["Hello"]);
    backend = backend.replace(
        "data: [DONE]",
        "data: {\"id\":\"chatcmpl-7\",\"model\":\"qwen2-0.5b\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":1,\"total_tokens\":31}}\n\ndata: [DONE]",
    );
    let (h, out) = stream(ASKING, &backend, 9);
    let events = data_of(&out);
    assert_eq!(events.iter().filter(|e| e.contains("\"usage\"")).count(), 1);
    assert!(events.iter().any(|e| e.contains("\"total_tokens\":31")));
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        31
    );
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
}

/// A key without a budget whose client did not ask for usage: its backend was not asked either,
/// so the stream passes as it came, and is neither estimated nor counted.
#[test]
fn a_stream_nobody_asked_usage_of_passes_as_it_came_uncounted() {
    for body in [
        &br#"{"model":"chat-small","messages":[],"stream":true}"#[..],
        br#"{"model":"chat-small","messages":[],"stream":true,"stream_options":{"include_usage":false}}"#,
    ] {
        let backend = stream_without_usage(&["Hello", " there"]);
        let (h, out) = stream(body, &backend, 11);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            backend.replace("qwen2-0.5b", "chat-small")
        );
        assert_eq!(
            h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
            0
        );
        assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
    }
}

/// A budgeted key's stream is asked for usage by the router; when the backend ignores that, the
/// client (who did not ask) gets no usage chunk, and the key is charged the stream's estimate.
#[test]
fn a_budgeted_key_is_charged_the_estimate_of_a_stream_without_usage() {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = 20",
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let body = br#"{"model":"chat-small","stream":true}"#;
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", body);
    h.now = 1_000;
    let mut h = send(&mut f, h);
    let sent: serde_json::Value = serde_json::from_slice(&h.req_body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let backend = stream_without_usage(&["a"; 12]);
    let chunks: Vec<&[u8]> = backend.as_bytes().chunks(13).collect();
    let out = respond(&mut f, &mut h, "200", "text/event-stream", &chunks);
    assert!(!String::from_utf8(out).unwrap().contains("\"usage\""));
    f.on_log(&mut h);
    let charged = global_limits::prompt_tokens(body) + 12;
    assert_eq!(
        h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")),
        charged
    );
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1);
    // 21 tokens of a budget of 20: the next request waits.
    let next = send_at(&plan, &h.shared, 2_000, chat("sk-alice", body));
    assert_eq!(error_of(&next).0, 429);
}

#[test]
fn a_completions_stream_is_counted_from_its_text() {
    let mut f = flow();
    let body = br#"{"model":"chat-small","prompt":"One,","stream":true,"stream_options":{"include_usage":true}}"#;
    let mut h = send(
        &mut f,
        request("POST", "/v1/completions", Some("sk-alice"), body),
    );
    let backend = concat!(
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"qwen2-0.5b\",\"choices\":[{\"text\":\" two\",\"index\":0}]}\n\n",
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"qwen2-0.5b\",\"choices\":[{\"text\":\",\",\"index\":0,\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[backend.as_bytes()],
    );
    let events = data_of(&out);
    let usage: serde_json::Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(usage["object"], "text_completion");
    assert_eq!(usage["model"], "chat-small");
    assert_eq!(usage["usage"]["completion_tokens"], 2);
    assert_eq!(events[3], "[DONE]");
}

/// A stream the backend cut short gets no usage chunk (it ends with the router's error), and is
/// still counted from what it streamed.
#[test]
fn a_truncated_stream_gets_its_error_not_a_usage_chunk() {
    let backend = chat_chunk("Hello");
    let (h, out) = stream(ASKING, &backend, 10);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("stream_truncated") && !text.contains("\"usage\""),
        "{text}"
    );
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        // One chunk, a five-letter word: one token.
        global_limits::prompt_tokens(ASKING) + 1
    );
}

/// Streams `stream` to alice's request (her key's budget `tpm`) without its end (no
/// end-of-stream callback), then the client leaves: the plan, and the host after `on_log`.
fn left_after(stream: &str, tpm: u64) -> (Rc<crate::config::Plan>, FakeHost) {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        &format!("name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = {tpm}"),
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", ASKING);
    h.now = 1_000;
    let mut h = send(&mut f, h);
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    h.resp_body = stream.as_bytes().to_vec();
    let size = h.resp_body.len();
    f.on_response_body(&mut h, size, false);
    f.on_log(&mut h);
    (plan, h)
}

/// The openai SDK may hang up once it has read `[DONE]`, before the stream's end reaches the
/// filter: the stream is then charged what it told (its usage, or its estimate), not the
/// admission estimate.
#[test]
fn a_client_leaving_after_done_is_charged_what_the_stream_told() {
    let reservation = global_limits::reservation(crate::api::Api::Chat, ASKING, 1024);
    // `max_tokens` is 8.
    assert_eq!(reservation, global_limits::prompt_tokens(ASKING) + 8);

    let (plan, h) = left_after(
        &stream_without_usage(&["Hello", " there", "!"]),
        reservation,
    );
    let tokens = global_limits::prompt_tokens(ASKING) + 3;
    assert_eq!(
        h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")),
        tokens
    );
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1);
    // Charged the estimate, under the reservation: the key has budget left.
    let next = send_at(&plan, &h.shared, 2_000, chat("sk-alice", ASKING));
    assert!(next.sent.is_none());

    let reported = stream_without_usage(&["Hello"]).replace(
        "data: [DONE]",
        "data: {\"choices\":[],\"usage\":{\"total_tokens\":31}}\n\ndata: [DONE]",
    );
    let (_, h) = left_after(&reported, reservation);
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 31);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);

    // Left before [DONE]: the backend may go on, so the admission estimate is charged (the
    // whole budget here), and the stats count no tokens.
    let (plan, h) = left_after(&chat_chunk("Hello"), reservation);
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 0);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1);
    let next = send_at(&plan, &h.shared, 2_000, chat("sk-alice", ASKING));
    assert_eq!(error_of(&next).0, 429);
}
