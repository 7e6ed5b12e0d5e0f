//! Model discovery (`[discovery]`) through the release `.wasm`: the root context sets its timer,
//! a tick sends the fetch of the backend's models as a call-out, the answer comes back to the
//! root context (whose token the SDK must know, or the VM traps), and the next `GET /v1/models`
//! lists what the pattern serves.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use airouter_wasm_tests::Filter;

const CONFIG: &str = r#"
[backends.hosted]
kind = "openai"
url = "https://api.example.com/openai/v1"
api_key_env = "HOSTED_KEY"
[[models]]
name = "hosted-*"
apis = ["chat"]
target = { backend = "hosted" }
[[keys]]
name = "t"
sha256 = "12ccad2ae47ed66bd36c79cd9207e9fcc7240fee258112de2c0591b173b09be6"
[discovery]
interval_ms = 1000
timeout_ms = 500
grace_ms = 2000
"#;

fn model_ids(f: &mut Filter) -> Vec<String> {
    let ctx = f.new_stream().unwrap();
    let headers = [
        (":method", "GET"),
        (":path", "/v1/models"),
        (":authority", "r"),
        ("authorization", "Bearer sk-t"),
    ];
    f.request_headers(ctx, &headers, true).unwrap();
    let reply = f.state().local_reply.clone().unwrap();
    f.end_stream(ctx).unwrap();
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_tick_fetches_and_the_list_shows_the_answer() {
    let mut f = Filter::load(CONFIG, &[("HOSTED_KEY", "sk-hosted")]).unwrap();
    assert!(f.configured, "{:?}", f.state().logs);
    assert_eq!(f.state().tick_period_ms, Some(500));
    assert!(model_ids(&mut f).is_empty());
    f.tick().unwrap();
    let call = f.state().http_calls.last().cloned().unwrap();
    assert_eq!(call.cluster, "airouter_backend_hosted");
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.header(":path"), Some("/openai/v1/models"));
    assert_eq!(call.header(":authority"), Some("api.example.com"));
    assert_eq!(call.header("authorization"), Some("Bearer sk-hosted"));
    // The fetch is leased: the next tick sends nothing while it is out.
    f.tick().unwrap();
    assert_eq!(f.state().http_calls.len(), 1);
    let body = br#"{"object":"list","data":[{"id":"hosted-b","created":2,"owned_by":"acme"},{"id":"hosted-a"},{"id":"other"}]}"#;
    f.http_call_response(call.token, &[(":status", "200")], body)
        .unwrap();
    assert_eq!(
        model_ids(&mut f),
        ["hosted-a", "hosted-b"],
        "{:?}",
        f.state().logs
    );
}

#[test]
fn without_discovery_no_timer_is_set() {
    let config = CONFIG.split("[discovery]").next().unwrap();
    let f = Filter::load(config, &[("HOSTED_KEY", "sk-hosted")]).unwrap();
    assert!(f.configured);
    assert_eq!(f.state().tick_period_ms, None);
}
