//! Token settlement: usage charged here or through the global limits' marks, capped, estimated
//! when a success reports none.

use std::rc::Rc;

use super::host::*;
use crate::config::{compile, Plan};
use crate::flow::HttpFlow;
use crate::host::Host;
use crate::{contract, global_limits, limits, metrics};

#[test]
fn global_limits_name_key_and_reservation_and_leave_counting_to_envoy() {
    let body = br#"{"model":"chat-small","messages":[],"max_tokens":10}"#;
    // A client cannot charge someone else's key: its own copies of the headers are dropped.
    let mut h = request("POST", "/v1/chat/completions", Some("sk-alice"), body);
    h.req.push((contract::RL_KEY_HEADER.into(), "bob".into()));
    h.now = 5_000;
    let mut f = global_flow();
    let h = send(&mut f, h);
    assert!(h.sent.is_none());
    assert_eq!(
        header_of(&h, contract::RL_KEY_HEADER).as_deref(),
        Some("alice")
    );
    let reserve = header_of(&h, contract::RL_RESERVE_HEADER).unwrap();
    let (tokens, at) = global_limits::parse_reserve(&reserve).unwrap();
    // The reservation: the body's estimate for the prompt, plus max_tokens.
    assert_eq!(
        (tokens, at),
        (global_limits::prompt_tokens(body) + 10, 5_000)
    );
    assert_eq!(
        h.state.get(contract::USED_PROPERTY),
        Some(&tokens.to_string())
    );
    // Local limits are not kept: a second request within the minute is Envoy's to refuse.
    let h2 = send(
        &mut global_flow(),
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h2.sent.is_none());
}

#[test]
fn global_limits_charge_the_used_tokens_when_the_response_ends() {
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let mut f = global_flow();
    let mut h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"qwen2-0.5b","usage":{"total_tokens":42}}"#],
    );
    assert_eq!(
        h.state.get(contract::USED_PROPERTY).map(String::as_str),
        Some("42")
    );
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 42);
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        42
    );
}

/// Issue 14: `total_tokens: 18446744073709551615` saturated the stats and would have wrapped the
/// token limiter.
#[test]
fn absurd_usage_is_capped_and_counted() {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = 1000",
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", br#"{"model":"chat-small"}"#);
    h.now = 1_000;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    f.on_request_body(&mut h, len, true);
    assert!(h.sent.is_none());
    let reply = br#"{"model":"qwen2-0.5b","usage":{"total_tokens":18446744073709551615}}"#;
    respond(&mut f, &mut h, "200", "application/json", &[reply]);
    assert_eq!(h.counter(metrics::USAGE_CAPPED), 1);
    assert_eq!(
        h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")),
        limits::MAX_USAGE_TOKENS
    );
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        limits::MAX_USAGE_TOKENS
    );
    // Charged, not wrapped: the key is over its budget.
    let h = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&h).0, 429);
    assert!(metrics::all(&plan.metric_names).contains(&metrics::USAGE_CAPPED.to_string()));
}

const RESPONSES_CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "assistant"
apis = ["responses", "chat"]
target = { backend = "local", model = "acme-llama-3" }
[[keys]]
name = "small"
key = "sk-small"
tokens_per_minute = 100
"#;

/// A streamed Responses request reports its usage in `response.completed`: the key is charged
/// for it, and its next request is refused.
#[test]
fn a_streamed_responses_request_is_charged_its_usage() {
    let plan = Rc::new(compile("t.toml", RESPONSES_CONFIG, &|_| None).unwrap());
    let body = br#"{"model":"assistant","input":"hi","stream":true}"#;
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = request("POST", "/v1/responses", Some("sk-small"), body);
    h.now = 1_000_000;
    let mut h = send(&mut f, h);
    assert!(h.sent.is_none());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let stream = std::fs::read(dir.join("responses_stream.sse")).unwrap();
    let chunks: Vec<&[u8]> = stream.chunks(100).collect();
    let out = respond(&mut f, &mut h, "200", "text/event-stream", &chunks);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\"model\":\"assistant\"") && !text.contains("acme"),
        "{text}"
    );
    // A Responses stream has no [DONE], and none is added.
    assert!(!text.contains("[DONE]"));
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "small")), 400);
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "assistant")),
        400
    );
    let mut next = request("POST", "/v1/responses", Some("sk-small"), body);
    next.shared = h.shared.clone();
    next.now = 1_000_500;
    let (status, e) = error_of(&send(&mut HttpFlow::new(Rc::clone(&plan)), next));
    assert_eq!(status, 429, "{e}");
}

/// Non-streamed bodies of every API report usage where their API puts it.
#[test]
fn usage_is_counted_for_every_body_kind() {
    for (path, body) in [
        ("/v1/responses", &br#"{"id":"r","model":"acme-llama-3","usage":{"input_tokens":30,"output_tokens":12,"total_tokens":42}}"#[..]),
        ("/v1/chat/completions", br#"{"model":"acme-llama-3","choices":[],"usage":{"total_tokens":42}}"#),
    ] {
        let plan = Rc::new(compile("t.toml", RESPONSES_CONFIG, &|_| None).unwrap());
        let mut f = HttpFlow::new(Rc::clone(&plan));
        let req = br#"{"model":"assistant","input":"hi","messages":[]}"#;
        let mut h = send(&mut f, request("POST", path, Some("sk-small"), req));
        respond(&mut f, &mut h, "200", "application/json", &[body]);
        assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "small")), 42, "{path}");
    }
}

/// A budgeted key's flow, routed with `body`; its host holds the stream's state.
fn budgeted(tpm: u32, body: &[u8]) -> (Rc<Plan>, HttpFlow, FakeHost) {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        &format!("name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = {tpm}"),
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", body);
    h.now = 1_000;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    f.on_request_body(&mut h, len, true);
    (plan, f, h)
}

/// A budgeted key never streams for free: a stream that declines usage is still asked for it
/// (and the router's chunk taken out), a stream that ends reporting none is charged its
/// estimate from what it streamed, and one the client leaves before its end is charged the
/// request's admission estimate.
#[test]
fn a_budgeted_key_is_charged_whatever_the_stream_reports() {
    let declining = br#"{"model":"chat-small","stream":true,"stream_options":{"include_usage":false},"max_tokens":50}"#;
    let (_, _, h) = budgeted(100, declining);
    let sent: serde_json::Value = serde_json::from_slice(&h.req_body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let (_, _, h) = budgeted(100, br#"{"model":"chat-small","stream":"true"}"#);
    assert_eq!(error_of(&h).0, 400);

    // The backend ends the stream without usage: charged its estimate (the prompt, a quarter
    // of the body's bytes, plus a token per chunk of text: over the budget of 100).
    let body = br#"{"model":"chat-small","stream":true,"max_tokens":200}"#;
    let (plan, mut f, mut h) = budgeted(100, body);
    let text = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    let mut chunks: Vec<&[u8]> = vec![b"data: {\"choices\":[]}\n\n"];
    chunks.extend([&text[..]; 100]);
    chunks.push(b"data: [DONE]\n\n");
    respond(&mut f, &mut h, "200", "text/event-stream", &chunks);
    f.on_log(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1, "charged once");
    let next = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&next).0, 429);

    // The client leaves mid-stream: the access-log callback charges it.
    let (plan, mut f, mut h) = budgeted(100, body);
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    h.resp_body = b"data: {\"choices\":[]}\n\n".to_vec();
    let size = h.resp_body.len();
    f.on_response_body(&mut h, size, false);
    f.on_log(&mut h);
    let next = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&next).0, 429);

    // The client leaves before any response came (a non-streamed answer still being made):
    // charged the admission estimate all the same.
    let plain = br#"{"model":"chat-small","max_tokens":200}"#;
    let (plan, mut f, mut h) = budgeted(100, plain);
    f.on_log(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1);
    let next = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&next).0, 429);

    // A failed request is not charged an estimate; reported usage is charged as reported.
    let (_, mut f, mut h) = budgeted(100, body);
    respond(
        &mut f,
        &mut h,
        "500",
        "application/json",
        &[br#"{"error":"x"}"#],
    );
    f.on_log(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
    let (_, mut f, mut h) = budgeted(1000, plain);
    let reply = br#"{"model":"qwen2-0.5b","usage":{"total_tokens":1e30}}"#;
    respond(&mut f, &mut h, "200", "application/json", &[reply]);
    f.on_log(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
    assert_eq!(
        h.counter(metrics::USAGE_CAPPED),
        1,
        "a float count is bounded, not ignored"
    );
}
