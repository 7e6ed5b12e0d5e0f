//! Anthropic both ways through the flow: a chat request to a `kind = "anthropic"` backend (the
//! Messages request it becomes, its headers, the answer made OpenAI's) and a Messages request
//! from an Anthropic client (made a chat request, answered in Anthropic's shape).

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::HttpFlow;

const CONFIG: &str = r#"
[backends.claude]
kind = "anthropic"
url = "https://api.anthropic.com/v1"
api_key = "sk-ant-backend"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "claude"
apis = ["chat"]
target = { backend = "claude", model = "claude-x-1" }
[[models]]
name = "chat"
apis = ["chat"]
target = { backend = "local", model = "qwen2" }
[[keys]]
name = "alice"
key = "sk-alice"
"#;

fn flow() -> HttpFlow {
    HttpFlow::new(Rc::new(compile("t.toml", CONFIG, &|_| None).unwrap()))
}

fn sent_json(h: &FakeHost) -> serde_json::Value {
    serde_json::from_slice(&h.req_body).unwrap()
}

#[test]
fn a_chat_request_to_an_anthropic_backend_goes_as_a_messages_request_with_its_key() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        Some("sk-alice"),
        br#"{"model":"claude","messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}"#,
    );
    h.req
        .push(("anthropic-beta".into(), "client-chosen".into()));
    let h = send(&mut f, h);
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(header_of(&h, ":path").as_deref(), Some("/v1/messages"));
    assert_eq!(
        header_of(&h, "x-api-key").as_deref(),
        Some("sk-ant-backend")
    );
    assert_eq!(
        header_of(&h, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(header_of(&h, "authorization"), None);
    assert_eq!(header_of(&h, "anthropic-beta"), None);
    let body = sent_json(&h);
    assert_eq!(body["model"], "claude-x-1");
    assert_eq!(body["system"], "S");
    assert_eq!(body["max_tokens"], 4096);
}

#[test]
fn an_anthropic_answer_reaches_the_client_as_a_chat_completion_under_the_clients_name() {
    let mut f = flow();
    let mut h = send(
        &mut f,
        request(
            "POST",
            "/v1/chat/completions",
            Some("sk-alice"),
            br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#,
        ),
    );
    let msg = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-1","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#;
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[&msg[..10], &msg[10..]],
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["usage"]["total_tokens"], 4);
    assert!(!String::from_utf8_lossy(&out).contains("claude-x-1"));
    // Anthropic's 529 is OpenAI's 503.
    let mut f = flow();
    let mut h = send(
        &mut f,
        request(
            "POST",
            "/v1/chat/completions",
            Some("sk-alice"),
            br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#,
        ),
    );
    let err = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let out = respond(&mut f, &mut h, "529", "application/json", &[err]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("503"));
    assert_eq!(v["error"]["code"], "overloaded");
}

#[test]
fn a_messages_request_becomes_a_chat_request_on_the_chat_path() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/messages?beta=true",
        Some("sk-alice"),
        br#"{"model":"chat","max_tokens":16,"system":"S","messages":[{"role":"user","content":"hi"}]}"#,
    );
    h.req
        .push(("anthropic-version".into(), "2023-06-01".into()));
    let h = send(&mut f, h);
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(
        header_of(&h, ":path").as_deref(),
        Some("/v1/chat/completions?beta=true")
    );
    assert_eq!(header_of(&h, "anthropic-version"), None);
    let body = sent_json(&h);
    assert_eq!(body["model"], "qwen2");
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "system", "content": "S"})
    );
    assert_eq!(body["max_tokens"], 16);
}

#[test]
fn anthropic_clients_get_anthropic_errors_and_answers() {
    // No key: Anthropic's words and shape.
    let h = send(&mut flow(), request("POST", "/v1/messages", None, b"{}"));
    let (status, e) = error_of(&h);
    assert_eq!(status, 401);
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "authentication_error");
    assert_eq!(e["error"]["message"], "x-api-key header is required");
    // A Messages request without max_tokens, and an unknown model.
    let h = send(
        &mut flow(),
        request(
            "POST",
            "/v1/messages",
            Some("sk-alice"),
            br#"{"model":"chat","messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    let (status, e) = error_of(&h);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let h = send(
        &mut flow(),
        request(
            "POST",
            "/v1/messages",
            Some("sk-alice"),
            br#"{"model":"nope","max_tokens":4,"messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    let (status, e) = error_of(&h);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    // Token counting: a request without a model is a 400, a model whose backend cannot count
    // a 404 saying so.
    let h = send(
        &mut flow(),
        request("POST", "/v1/messages/count_tokens", Some("sk-alice"), b"{}"),
    );
    let (status, e) = error_of(&h);
    assert_eq!((status, e["type"].as_str()), (400, Some("error")));
    let h = send(
        &mut flow(),
        request(
            "POST",
            "/v1/messages/count_tokens",
            Some("sk-alice"),
            br#"{"model":"chat","messages":[]}"#,
        ),
    );
    let (status, e) = error_of(&h);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Token counting is served for models"));
    // A chat answer becomes a message.
    let mut f = flow();
    let mut h = send(
        &mut f,
        request(
            "POST",
            "/v1/messages",
            Some("sk-alice"),
            br#"{"model":"chat","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
    );
    let answer = br#"{"id":"c1","object":"chat.completion","created":1,"model":"qwen2","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
    let out = respond(&mut f, &mut h, "200", "application/json", &[answer]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "chat");
    assert_eq!(v["content"][0]["text"], "Hello");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        header_of_resp(&h, "content-length"),
        Some(out.len().to_string())
    );
}

#[test]
fn what_an_anthropic_backend_must_not_pass_on_becomes_a_502() {
    let ask = br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#;
    // Its refusal of the router's key, whose message may echo it.
    let mut f = flow();
    let mut h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), ask),
    );
    let err = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-backend"}}"#;
    let out = respond(&mut f, &mut h, "401", "application/json", &[err]);
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("502"));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("backend_auth_failed") && !text.contains("sk-ant-backend"),
        "{text}"
    );
    // A 200 that is not a message.
    let mut f = flow();
    let mut h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), ask),
    );
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"foo":"http://10.9.9.9:1"}"#],
    );
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("502"));
    assert!(!String::from_utf8_lossy(&out).contains("10.9.9.9"));
}

#[test]
fn an_overloaded_backend_is_a_529_to_anthropic_clients() {
    let mut f = flow();
    let mut h = send(
        &mut f,
        request(
            "POST",
            "/v1/messages",
            Some("sk-alice"),
            br#"{"model":"claude","max_tokens":4,"messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    let err = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let out = respond(&mut f, &mut h, "529", "application/json", &[err]);
    assert_eq!(header_of_resp(&h, ":status").as_deref(), Some("529"));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
}

#[test]
fn model_names_with_invisible_formatting_are_refused() {
    for name in [r"chat\u202e", r"ch\u200bat", r"\ufeffchat"] {
        let body = format!(r#"{{"model":"{name}","messages":[]}}"#);
        let (status, _) = error_of(&send(
            &mut flow(),
            request(
                "POST",
                "/v1/chat/completions",
                Some("sk-alice"),
                body.as_bytes(),
            ),
        ));
        assert_eq!(status, 400, "{name}");
    }
}
