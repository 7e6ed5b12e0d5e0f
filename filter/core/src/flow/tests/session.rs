//! The session record each request leaves in Envoy's filter state (`[session_log]`): what it
//! holds at each capture level, for answers, streams, refusals and clients that leave, its cap,
//! and that no key or credential is ever in it.

use std::rc::Rc;

use serde_json::{json, Value};

use super::host::*;
use crate::config::compile;
use crate::contract::{SESSION_ATTEMPTS_PROPERTY, SESSION_PROPERTY};
use crate::flow::{HttpFlow, UpstreamFlow};
use crate::host::Action;

fn flow_with(session_log: &str) -> HttpFlow {
    let config = format!("{CONFIG}\n[session_log]\n{session_log}\n");
    HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()))
}

/// The record the flow handed to Envoy, parsed; panics when there is none.
fn record(h: &FakeHost) -> Value {
    let text = h.state.get(SESSION_PROPERTY).expect("a session record");
    serde_json::from_str(text).unwrap()
}

fn chat_request(body: &Value, key: &str) -> FakeHost {
    let mut h = chat(key, body.to_string().as_bytes());
    h.req.push(("x-request-id".into(), "req-1".into()));
    h.now = 1_000;
    h
}

const CHAT_BODY: &str = r#"{"model":"chat-small","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"}]}"#;

fn answer(text: &str) -> Vec<u8> {
    json!({
        "id": "c1", "object": "chat.completion", "model": "qwen2-0.5b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_full_record_holds_the_messages_sent_and_the_answer_and_no_key() {
    let mut f = flow_with("capture = \"full\"");
    let body: Value = serde_json::from_str(CHAT_BODY).unwrap();
    let mut h = send(&mut f, chat_request(&body, "sk-alice"));
    assert!(h.sent.is_none());
    h.now = 1_040;
    respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[&answer("Hi there.")],
    );
    h.now = 1_050;
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["schema"], 1);
    assert_eq!(r["request_id"], "req-1");
    assert_eq!(r["start_ms"], 1_000);
    assert_eq!(
        (r["method"].as_str(), r["path"].as_str()),
        (Some("POST"), Some("/v1/chat/completions"))
    );
    assert_eq!(
        (r["api"].as_str(), r["key"].as_str()),
        (Some("chat"), Some("alice"))
    );
    assert_eq!(
        (r["model"].as_str(), r["stream"].as_bool()),
        (Some("chat-small"), Some(false))
    );
    assert_eq!(r["status"], 200);
    assert_eq!(
        r["attempts"],
        json!([{"backend": "local", "model": "qwen2-0.5b", "status": 200}])
    );
    assert_eq!(r["request"]["messages"], body["messages"]);
    assert_eq!(r["request"]["count"], 2);
    assert_eq!(r["response"]["text"], "Hi there.");
    assert_eq!(r["response"]["finish_reason"], "stop");
    assert_eq!(
        r["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );
    assert_eq!(r["timings"]["total_ms"], 50);
    assert_eq!(r["timings"]["first_byte_ms"], 40);
    assert!(r.get("truncated").is_none());
    assert_eq!(h.counters.get(crate::metrics::SESSION_RECORDS), Some(&1));
    let text = h.state[SESSION_PROPERTY].as_str();
    for secret in ["sk-alice", "authorization", "Bearer"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn a_streamed_answer_is_gathered_from_its_deltas_with_the_time_of_its_first_token() {
    let mut f = flow_with("capture = \"full\"");
    let body = json!({"model": "chat-small", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut h = send(&mut f, chat_request(&body, "sk-alice"));
    h.now = 1_010;
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    let chunks: [(&[u8], u64); 4] = [
        (b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n", 1_020),
        (b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"del", 1_030),
        (b"ta\":{\"content\":\"lo \\u00e9\"},\"finish_reason\":\"stop\"}]}\n\n", 1_040),
        (b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}}\n\ndata: [DONE]\n\n", 1_050),
    ];
    for (i, (chunk, at)) in chunks.iter().enumerate() {
        h.now = *at;
        h.resp_body = chunk.to_vec();
        assert_eq!(
            f.on_response_body(&mut h, chunk.len(), i == 3),
            Action::Continue
        );
    }
    h.now = 1_060;
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["stream"], true);
    assert_eq!(r["response"]["text"], "Hello é");
    assert_eq!(r["response"]["finish_reason"], "stop");
    assert_eq!(r["usage"]["total_tokens"], 4);
    assert_eq!(
        (
            r["timings"]["first_byte_ms"].as_u64(),
            r["timings"]["first_token_ms"].as_u64()
        ),
        (Some(10), Some(30))
    );
}

#[test]
fn a_client_that_leaves_mid_stream_still_gets_its_record() {
    let mut f = flow_with("capture = \"full\"");
    let body = json!({"model": "chat-small", "stream": true, "messages": []});
    let mut h = send(&mut f, chat_request(&body, "sk-alice"));
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    let chunk = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"part\"}}]}\n\n";
    h.resp_body = chunk.to_vec();
    f.on_response_body(&mut h, chunk.len(), false);
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["response"]["text"], "part");
    assert!(r["response"].get("finish_reason").is_none());
}

#[test]
fn capture_levels_keep_nothing_the_shape_or_the_content() {
    let run = |capture: &str| {
        let mut f = flow_with(&format!("capture = \"{capture}\""));
        let body: Value = serde_json::from_str(CHAT_BODY).unwrap();
        let mut h = send(&mut f, chat_request(&body, "sk-alice"));
        respond(
            &mut f,
            &mut h,
            "200",
            "application/json",
            &[&answer("Hi there.")],
        );
        f.on_log(&mut h);
        record(&h)
    };
    let none = run("none");
    assert!(none.get("request").is_none() && none.get("response").is_none());
    assert_eq!(
        none["usage"]["total_tokens"], 10,
        "usage is not conversation"
    );
    assert_eq!(none["model"], "chat-small");
    let metadata = run("metadata");
    assert_eq!(
        metadata["request"],
        json!({"bytes": CHAT_BODY.len(), "count": 2})
    );
    assert_eq!(
        metadata["response"],
        json!({"text_bytes": 9, "finish_reason": "stop"})
    );
    let full = run("full");
    assert_eq!(full["response"]["text"], "Hi there.");
    assert!(!metadata.to_string().contains("hello") && full.to_string().contains("hello"));
}

#[test]
fn a_long_conversation_is_cut_to_the_cap_newest_messages_and_first_text_kept() {
    let mut f = flow_with("capture = \"full\"\nmax_record_bytes = 4096");
    let messages: Vec<Value> = (0..10)
        .map(|i| json!({"role": "user", "content": format!("message {i} {}", "x".repeat(300))}))
        .collect();
    let body = json!({"model": "chat-small", "messages": messages});
    let mut f2 = flow_with("capture = \"full\"\nmax_record_bytes = 4096");
    let mut h = send(&mut f, chat_request(&body, "sk-alice"));
    let long = format!("START{}\"quoted\"\n{}", "é".repeat(2000), "y".repeat(3000));
    respond(&mut f, &mut h, "200", "application/json", &[&answer(&long)]);
    f.on_log(&mut h);
    let text = &h.state[SESSION_PROPERTY];
    assert!(text.len() <= 4096, "{} bytes", text.len());
    let r = record(&h);
    assert_eq!(r["truncated"], true);
    let kept = r["request"]["messages"].as_array().unwrap();
    let omitted = r["request"]["omitted"].as_u64().unwrap();
    assert_eq!(kept.len() as u64 + omitted, 10);
    assert!(omitted > 0);
    assert_eq!(kept.last(), messages.last(), "the newest message is kept");
    let said = r["response"]["text"].as_str().unwrap();
    assert!(said.starts_with("START") && long.starts_with(said));
    assert_eq!(r["response"]["text_bytes"], long.len());
    assert_eq!(r["usage"]["total_tokens"], 10, "metadata survives the cut");
    // A record that fits is not cut.
    let mut h = send(
        &mut f2,
        chat_request(&json!({"model": "chat-small", "messages": []}), "sk-alice"),
    );
    respond(&mut f2, &mut h, "200", "application/json", &[&answer("ok")]);
    f2.on_log(&mut h);
    assert!(record(&h).get("truncated").is_none());
}

#[test]
fn refusals_are_recorded_with_their_status_and_health_checks_are_not() {
    let mut f = flow_with("");
    let h = send(
        &mut f,
        chat_request(&serde_json::from_str(CHAT_BODY).unwrap(), "sk-wrong"),
    );
    let mut h = h;
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["status"], 401);
    assert_eq!(r["error"]["code"], "invalid_api_key");
    assert!(r.get("key").is_none());
    assert!(!h.state[SESSION_PROPERTY].contains("sk-wrong"));

    let mut f = flow_with("");
    let mut h = send(
        &mut f,
        chat_request(&json!({"model": "nope", "messages": []}), "sk-alice"),
    );
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(
        (r["status"].as_u64(), r["key"].as_str()),
        (Some(404), Some("alice"))
    );
    assert_eq!(r["api"], "chat");

    let mut f = flow_with("");
    let mut h = send(&mut f, request("GET", "/health", None, b""));
    f.on_log(&mut h);
    assert!(!h.state.contains_key(SESSION_PROPERTY));
}

#[test]
fn a_backend_credential_never_reaches_the_record() {
    let mut f = flow_with("capture = \"full\"");
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let mut h = send(&mut f, chat_request(&body, "sk-alice"));
    assert_eq!(
        header_of(&h, "authorization").as_deref(),
        Some("Bearer sk-backend")
    );
    respond(&mut f, &mut h, "200", "application/json", &[&answer("ok")]);
    f.on_log(&mut h);
    let text = &h.state[SESSION_PROPERTY];
    assert!(
        !text.contains("sk-backend") && !text.contains("sk-alice"),
        "{text}"
    );
    assert_eq!(record(&h)["attempts"][0]["backend"], "hosted");
}

#[test]
fn without_a_session_log_no_record_is_made() {
    let (mut f, mut h) = routed();
    respond(&mut f, &mut h, "200", "application/json", &[&answer("ok")]);
    f.on_log(&mut h);
    assert!(!h.state.contains_key(SESSION_PROPERTY));
}

#[test]
fn a_failover_models_attempts_come_from_its_upstream_filter() {
    let config = r#"
[backends.a]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.b]
kind = "openai"
url = "http://127.0.0.1:8001/v1"
[[models]]
name = "m"
apis = ["chat"]
targets = [{ backend = "a", model = "ma" }, { backend = "b", model = "mb" }]
[session_log]
"#;
    let plan = Rc::new(compile("t.toml", config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = send(
        &mut f,
        request(
            "POST",
            "/v1/chat/completions",
            None,
            br#"{"model":"m","messages":[]}"#,
        ),
    );
    for (backend, status) in [("a", "503"), ("b", "200")] {
        h.props.insert(
            crate::contract::BACKEND_METADATA_PATH.join("."),
            backend.into(),
        );
        let mut up = UpstreamFlow::new(Rc::clone(&plan));
        up.on_request_headers(&mut h, true);
        h.resp = vec![(":status".into(), status.into())];
        up.on_response_headers(&mut h, false);
    }
    assert_eq!(h.state[SESSION_ATTEMPTS_PROPERTY], "a\tma\t503\nb\tmb\t200");
    respond(&mut f, &mut h, "200", "application/json", &[&answer("ok")]);
    f.on_log(&mut h);
    assert_eq!(
        record(&h)["attempts"],
        json!([
            {"backend": "a", "model": "ma", "status": 503},
            {"backend": "b", "model": "mb", "status": 200}
        ])
    );
}
