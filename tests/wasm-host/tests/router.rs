//! A router's request (`[[routers]]`) through the release `.wasm`: held while its classifier is
//! asked through an HTTP call-out, then routed when the answer comes back to the root context,
//! as Envoy delivers it; and an answer whose stream has gone is dropped without trapping.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use airouter_wasm_tests::{Filter, PAUSE};

const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.cloud]
kind = "openai"
url = "https://cloud.example/v1"
api_key_env = "CLOUD_KEY"
[[models]]
name = "local-chat"
apis = ["chat"]
target = { backend = "local", model = "small-backend-8b" }
[[models]]
name = "cloud-chat"
apis = ["chat"]
target = { backend = "cloud", model = "big-backend-70b" }
[[models]]
name = "classifier"
apis = ["chat"]
target = { backend = "local", model = "clf-backend" }
[[routers]]
name = "ai-router"
default_route = "SIMPLE"
[routers.classifier]
model = "classifier"
prompt = "One of {{labels}}."
timeout_ms = 1500
[[routers.routes]]
label = "SIMPLE"
model = "local-chat"
[[routers.routes]]
label = "COMPLEX"
model = "cloud-chat"
[[keys]]
name = "t"
sha256 = "12ccad2ae47ed66bd36c79cd9207e9fcc7240fee258112de2c0591b173b09be6"
"#;

const REQUEST: &[u8] =
    br#"{"model":"ai-router","messages":[{"role":"user","content":"design a cache"}]}"#;

fn held_request(f: &mut Filter) -> i32 {
    let ctx = f.new_stream().unwrap();
    let headers = [
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "r"),
        ("authorization", "Bearer sk-t"),
        ("content-type", "application/json"),
    ];
    assert_eq!(f.request_headers(ctx, &headers, false).unwrap(), PAUSE);
    assert_eq!(f.request_body(ctx, REQUEST, true).unwrap(), PAUSE);
    ctx
}

fn answer(label: &str) -> Vec<u8> {
    serde_json::json!({"choices": [{"message": {"role": "assistant", "content": label}}]})
        .to_string()
        .into_bytes()
}

#[test]
fn the_classifiers_answer_reaches_the_request_that_asked() {
    let mut f = Filter::load(CONFIG, &[("CLOUD_KEY", "sk-cloud")]).unwrap();
    assert!(f.configured, "{:?}", f.state().logs);
    held_request(&mut f);
    let call = f.state().http_calls.last().cloned().unwrap();
    assert_eq!(call.cluster, "airouter_backend_local");
    assert_eq!(call.header(":path"), Some("/v1/chat/completions"));
    assert_eq!(call.timeout_ms, 1500);
    assert!(String::from_utf8_lossy(&call.body).contains("clf-backend"));
    assert_eq!(f.state().resumed, 0);
    // Envoy delivers the answer to the root context; the SDK must know which stream sent the
    // call (an unknown token traps the VM).
    f.http_call_response(call.token, &[(":status", "200")], &answer("COMPLEX"))
        .unwrap();
    assert_eq!(f.state().resumed, 1, "{:?}", f.state().logs);
    assert_eq!(f.route().as_deref(), Some("cloud"));
    let body = String::from_utf8_lossy(&f.state().request_body).into_owned();
    assert!(body.contains(r#""model":"big-backend-70b""#), "{body}");
    assert_eq!(f.request_header("authorization"), Some("Bearer sk-cloud"));
}

#[test]
fn an_answer_for_a_stream_that_is_gone_is_dropped() {
    let mut f = Filter::load(CONFIG, &[("CLOUD_KEY", "sk-cloud")]).unwrap();
    let ctx = held_request(&mut f);
    let token = f.state().http_calls.last().unwrap().token;
    f.end_stream(ctx).unwrap();
    f.http_call_response(token, &[], &[]).unwrap();
    assert_eq!(f.state().resumed, 0);
    // The VM still serves: the next request is held and answered.
    held_request(&mut f);
    let token = f.state().http_calls.last().unwrap().token;
    f.http_call_response(token, &[(":status", "200")], &answer("SIMPLE"))
        .unwrap();
    assert_eq!(f.route().as_deref(), Some("local"));
}
