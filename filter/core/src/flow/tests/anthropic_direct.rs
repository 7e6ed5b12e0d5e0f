//! A Messages request to a model served by Anthropic backends only goes as the client sent it
//! (its model replaced), and the backend's own answer comes back renamed but untranslated:
//! JSON, streams (usage read with the prompt cache, a stream cut short ended with an `error`
//! event), errors in Anthropic's shape, token counting, and failover across Anthropic targets.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::{HttpFlow, UpstreamFlow};
use crate::host::Host;
use crate::{contract, metrics};

const CONFIG: &str = r#"
[backends.claude]
kind = "anthropic"
url = "https://api.anthropic.com/v1"
api_key = "sk-ant-backend"
[backends.claude2]
kind = "anthropic"
url = "https://other.example/v1"
api_key = "sk-ant-other"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "claude"
apis = ["chat"]
target = { backend = "claude", model = "claude-x-1" }
[[models]]
name = "claude-ha"
apis = ["chat"]
targets = [{ backend = "claude", model = "claude-x-1" }, { backend = "claude2", model = "claude-y-2" }]
[[models]]
name = "mixed"
apis = ["chat"]
targets = [{ backend = "claude", model = "claude-x-1" }, { backend = "local", model = "qwen2" }]
[[keys]]
name = "alice"
key = "sk-alice"
tokens_per_minute = 100000
"#;

fn plan() -> Rc<crate::config::Plan> {
    Rc::new(compile("t.toml", CONFIG, &|_| None).unwrap())
}

const ASK: &[u8] = br#"{"model":"claude","max_tokens":2000,"top_k":5,"thinking":{"type":"enabled","budget_tokens":1024},"system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"The answer is"}]}"#;

#[test]
fn the_request_goes_as_sent_with_only_its_model_replaced() {
    let mut f = HttpFlow::new(plan());
    let mut h = request("POST", "/v1/messages", Some("sk-alice"), ASK);
    h.req
        .push(("anthropic-version".into(), "2099-01-01".into()));
    h.req
        .push(("anthropic-beta".into(), "client-chosen".into()));
    let h = send(&mut f, h);
    assert!(h.sent.is_none(), "{:?}", h.sent);
    let expected = String::from_utf8(ASK.to_vec())
        .unwrap()
        .replace(r#""model":"claude""#, r#""model":"claude-x-1""#);
    assert_eq!(String::from_utf8(h.req_body.clone()).unwrap(), expected);
    assert_eq!(header_of(&h, ":path").as_deref(), Some("/v1/messages"));
    assert_eq!(
        header_of(&h, "x-api-key").as_deref(),
        Some("sk-ant-backend")
    );
    assert_eq!(header_of(&h, "authorization"), None);
    assert_eq!(
        header_of(&h, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(header_of(&h, "anthropic-beta"), None);
}

#[test]
fn a_json_answer_comes_back_as_it_is_renamed_and_counted_with_its_cache() {
    let mut f = HttpFlow::new(plan());
    let mut h = send(
        &mut f,
        request("POST", "/v1/messages", Some("sk-alice"), ASK),
    );
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-1","content":[{"type":"thinking","thinking":"hm","signature":"SIG"},{"type":"redacted_thinking","data":"X"},{"type":"text","text":"I am claude-x-1"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":10}}"#;
    let out = respond(&mut f, &mut h, "200", "application/json", &[answer]);
    let expected = String::from_utf8(answer.to_vec())
        .unwrap()
        .replace("claude-x-1", "claude");
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 17);
}

#[test]
fn a_stream_comes_back_as_it_is_and_a_cut_one_ends_with_an_error_event() {
    let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x-1\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let ask = br#"{"model":"claude","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"q"}]}"#;
    let bytes = stream.as_bytes();
    for at in [1, 100, 200, bytes.len() - 3] {
        let mut f = HttpFlow::new(plan());
        let mut h = send(
            &mut f,
            request("POST", "/v1/messages", Some("sk-alice"), ask),
        );
        let out = respond(
            &mut f,
            &mut h,
            "200",
            "text/event-stream",
            &[&bytes[..at], &bytes[at..]],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            stream.replace("claude-x-1", "claude"),
            "split at {at}"
        );
        assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 40);
    }
    let cut = stream.find("event: message_delta").unwrap();
    let mut f = HttpFlow::new(plan());
    let mut h = send(
        &mut f,
        request("POST", "/v1/messages", Some("sk-alice"), ask),
    );
    let out = respond(&mut f, &mut h, "200", "text/event-stream", &[&bytes[..cut]]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The stream was cut short: the backend's answer ended before it was complete.\"}}\n\n"), "{text}");
    // A backend's error event: once, in Anthropic's shape, its words scrubbed of its names.
    let mut f = HttpFlow::new(plan());
    let mut h = send(
        &mut f,
        request("POST", "/v1/messages", Some("sk-alice"), ask),
    );
    let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"claude-x-1 is overloaded\"}}\n\n";
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[&bytes[..cut], err.as_bytes()],
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("event: error").count(), 1, "{text}");
    assert!(!text.contains("claude-x-1"), "{text}");
}

#[test]
fn errors_and_unreadable_answers_are_anthropic_errors() {
    let ask = br#"{"model":"claude","max_tokens":20,"messages":[{"role":"user","content":"q"}]}"#;
    for (status, ctype, body, want_status, want_type) in [
        (
            "400",
            "application/json",
            &br#"{"type":"error","error":{"type":"invalid_request_error","message":"top_k: bad"}}"#
                [..],
            "400",
            "invalid_request_error",
        ),
        (
            "529",
            "application/json",
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "529",
            "overloaded_error",
        ),
        (
            "200",
            "application/json",
            br#"{"foo":"http://10.9.9.9:1"}"#,
            "502",
            "api_error",
        ),
        (
            "200",
            "text/html",
            b"<html>claude-x-1</html>",
            "502",
            "api_error",
        ),
    ] {
        let mut f = HttpFlow::new(plan());
        let mut h = send(
            &mut f,
            request("POST", "/v1/messages", Some("sk-alice"), ask),
        );
        let out = respond(&mut f, &mut h, status, ctype, &[body]);
        assert_eq!(
            header_of_resp(&h, ":status").as_deref(),
            Some(want_status),
            "{status} {ctype}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["error"]["type"].as_str()),
            (Some("error"), Some(want_type)),
            "{v}"
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("10.9.9.9") && !text.contains("claude-x-1"),
            "{text}"
        );
    }
}

#[test]
fn tokens_are_counted_by_an_anthropic_backend_and_charged_nothing() {
    let mut f = HttpFlow::new(plan());
    let ask = br#"{"model":"claude","messages":[{"role":"user","content":"q"}]}"#;
    let mut h = send(
        &mut f,
        request("POST", "/v1/messages/count_tokens", Some("sk-alice"), ask),
    );
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(
        header_of(&h, ":path").as_deref(),
        Some("/v1/messages/count_tokens")
    );
    assert!(String::from_utf8(h.req_body.clone())
        .unwrap()
        .contains(r#""model":"claude-x-1""#));
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"input_tokens":12}"#],
    );
    assert_eq!(out, br#"{"input_tokens":12}"#);
    f.on_log(&mut h);
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 0);
}

#[test]
fn a_failover_across_anthropic_backends_sends_each_attempt_as_sent() {
    let shared = plan();
    let mut f = HttpFlow::new(Rc::clone(&shared));
    let ask = br#"{"model":"claude-ha","max_tokens":20,"top_k":3,"messages":[{"role":"user","content":"q"}]}"#;
    let h = send(
        &mut f,
        request("POST", "/v1/messages", Some("sk-alice"), ask),
    );
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(
        header_of(&h, contract::CLIENT_PATH_HEADER).as_deref(),
        Some("/v1/messages")
    );
    // The attempt at the second target.
    let mut up = UpstreamFlow::new(shared);
    let mut a = request("POST", "/", None, b"");
    a.req = h.req.clone();
    a.req_body = h.req_body.clone();
    a.props
        .insert(contract::BACKEND_METADATA_PATH.join("."), "claude2".into());
    up.on_request_headers(&mut a, false);
    let size = a.req_body.len();
    up.on_request_body(&mut a, size, true);
    assert_eq!(header_of(&a, ":path").as_deref(), Some("/v1/messages"));
    assert_eq!(header_of(&a, "x-api-key").as_deref(), Some("sk-ant-other"));
    let sent = String::from_utf8(a.req_body.clone()).unwrap();
    assert_eq!(
        sent,
        String::from_utf8(ask.to_vec())
            .unwrap()
            .replace("claude-ha", "claude-y-2")
    );
    // A model with a target of another kind is translated, as before.
    let mut f = HttpFlow::new(plan());
    let ask = br#"{"model":"mixed","max_tokens":20,"messages":[{"role":"user","content":"q"}]}"#;
    let h = send(
        &mut f,
        request("POST", "/v1/messages", Some("sk-alice"), ask),
    );
    assert_eq!(
        header_of(&h, contract::CLIENT_PATH_HEADER).as_deref(),
        Some("/v1/chat/completions")
    );
}

#[test]
fn what_the_client_cannot_count_on_is_refused_in_anthropics_shape() {
    // A count that is not a count.
    let mut f = HttpFlow::new(plan());
    let ask = br#"{"model":"claude","messages":[{"role":"user","content":"q"}]}"#;
    let mut h = send(
        &mut f,
        request("POST", "/v1/messages/count_tokens", Some("sk-alice"), ask),
    );
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"type":"message","content":[]}"#],
    );
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("502"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["type"],
        "error"
    );
    // A count request whose model is ambiguous.
    let ask = br#"{"model":"claude","model":"other","messages":[]}"#;
    let h = send(
        &mut HttpFlow::new(plan()),
        request("POST", "/v1/messages/count_tokens", Some("sk-alice"), ask),
    );
    let (status, e) = error_of(&h);
    assert_eq!((status, e["type"].as_str()), (400, Some("error")), "{e}");
    // A path of Anthropic's API the router does not serve.
    let h = send(
        &mut HttpFlow::new(plan()),
        request("POST", "/v1/messages/batches", Some("sk-alice"), b"{}"),
    );
    let (status, e) = error_of(&h);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("not_found_error")),
        "{e}"
    );
    // Client headers of Anthropic's API do not reach the backend; its version is the router's.
    let mut f = HttpFlow::new(plan());
    let ask = br#"{"model":"claude","max_tokens":5,"messages":[]}"#;
    let mut h = request("POST", "/v1/messages", Some("sk-alice"), ask);
    h.req
        .push(("anthropic-organization-id".into(), "org-x".into()));
    h.req.push((
        "anthropic-dangerous-direct-browser-access".into(),
        "true".into(),
    ));
    let h = send(&mut f, h);
    assert_eq!(header_of(&h, "anthropic-organization-id"), None);
    assert_eq!(
        header_of(&h, "anthropic-dangerous-direct-browser-access"),
        None
    );
    assert_eq!(
        header_of(&h, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
}
