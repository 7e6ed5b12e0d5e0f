//! The release `.wasm` driven through the proxy-wasm ABI on wasmtime: configuration refusal,
//! local replies, request rewriting, and response rewriting at every split point.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use airouter_wasm_tests::{Filter, CONTINUE, PAUSE};

const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "HOSTED_KEY"
[[models]]
name = "chat"
apis = ["chat"]
target = { backend = "local", model = "llama-3-8b-backend" }
[[models]]
name = "big"
apis = ["chat"]
target = { backend = "hosted", model = "gpt-big-2024" }
[[keys]]
name = "t"
sha256 = "12ccad2ae47ed66bd36c79cd9207e9fcc7240fee258112de2c0591b173b09be6"
"#;

fn filter() -> Filter {
    let f = Filter::load(CONFIG, &[("HOSTED_KEY", "sk-hosted")]).unwrap();
    assert!(f.configured, "{:?}", f.state().logs);
    f
}

fn post(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":path", path),
        (":authority", "r"),
        ("authorization", "Bearer sk-t"),
        ("content-type", "application/json"),
    ]
}

#[test]
fn bad_configuration_is_refused_with_file_line_and_key() {
    let f = Filter::load("[listener]\nport = 1\nbogus = 2\n", &[]).unwrap();
    assert!(!f.configured);
    let logs: Vec<&str> = f.state().logs.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        logs.iter()
            .any(|m| m.contains("airouter.toml:3:1: listener.bogus: unknown field")),
        "{logs:?}"
    );
}

#[test]
fn a_missing_environment_key_is_refused() {
    let f = Filter::load(CONFIG, &[]).unwrap();
    assert!(!f.configured);
    assert!(f.state().logs.iter().any(|(_, m)| m.contains("HOSTED_KEY")));
}

#[test]
fn health_is_answered_locally() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    let a = f
        .request_headers(ctx, &[(":method", "GET"), (":path", "/health")], true)
        .unwrap();
    assert_eq!(a, PAUSE);
    let reply = f.state().local_reply.clone().unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &br#"{"status":"ok"}"#[..])
    );
}

#[test]
fn missing_key_is_401_in_the_openai_envelope() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    f.request_headers(ctx, &[(":method", "GET"), (":path", "/v1/models")], true)
        .unwrap();
    let reply = f.state().local_reply.clone().unwrap();
    assert_eq!(reply.status, 401);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(reply
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
}

#[test]
fn request_is_rewritten_for_the_backend_across_body_chunks() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    assert_eq!(
        f.request_headers(ctx, &post("/v1/chat/completions"), false)
            .unwrap(),
        PAUSE
    );
    assert_eq!(
        f.request_body(ctx, br#"{"messages":[],"mo"#, false)
            .unwrap(),
        PAUSE
    );
    assert_eq!(
        f.request_body(ctx, br#"del":"big","n":1}"#, true).unwrap(),
        CONTINUE
    );
    assert_eq!(
        f.state().request_body,
        br#"{"messages":[],"model":"gpt-big-2024","n":1}"#.to_vec()
    );
    assert_eq!(f.request_header("content-length"), Some("44"));
    assert_eq!(f.request_header(":authority"), Some("api.example.com"));
    assert_eq!(f.request_header(":path"), Some("/v1/chat/completions"));
    assert_eq!(f.request_header("authorization"), Some("Bearer sk-hosted"));
    assert_eq!(f.route().as_deref(), Some("hosted"));
}

/// HTTP/2 and chunked HTTP/1.1 may end a body with trailers instead of an end-of-stream body
/// callback: the filter must route at the trailers, never let the request go on unrouted.
#[test]
fn trailers_end_the_body_and_the_request_is_routed() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    let mut headers = post("/v1/chat/completions");
    headers.push(("x-airouter-backend", "local"));
    headers.push(("x-airouter-client-model", "chat"));
    assert_eq!(f.request_headers(ctx, &headers, false).unwrap(), PAUSE);
    assert_eq!(f.request_header("x-airouter-backend"), None);
    assert_eq!(f.request_header("x-airouter-client-model"), None);
    assert_eq!(
        f.request_body(ctx, br#"{"model":"big","n":1}"#, false)
            .unwrap(),
        PAUSE
    );
    assert_eq!(f.request_trailers(ctx, 1).unwrap(), CONTINUE);
    assert_eq!(
        f.state().request_body,
        br#"{"model":"gpt-big-2024","n":1}"#.to_vec()
    );
    assert_eq!(f.route().as_deref(), Some("hosted"));
    assert_eq!(f.request_header("authorization"), Some("Bearer sk-hosted"));
}

#[test]
fn non_utf8_header_values_do_not_trap_the_vm() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    // The host delivers bytes; the module must read them lossily rather than panic.
    let weird = String::from_utf8_lossy(b"Bearer sk-\xff\xfe").into_owned();
    f.request_headers(
        ctx,
        &[
            (":method", "GET"),
            (":path", "/v1/models"),
            ("authorization", &weird),
        ],
        true,
    )
    .unwrap();
    assert_eq!(f.state().local_reply.as_ref().unwrap().status, 401);
}

const SSE: &str = "data: {\"model\":\"llama-3-8b-backend\",\"choices\":[{\"delta\":{\"content\":\"\u{1f600}\u{4e16}\"}}]}\r\n\r\ndata: {\"model\":\"llama-3-8b-backend\",\"usage\":null}\n\ndata: [DONE]\n\n";
const SSE_OUT: &str = "data: {\"model\":\"chat\",\"choices\":[{\"delta\":{\"content\":\"\u{1f600}\u{4e16}\"}}]}\r\n\r\ndata: {\"model\":\"chat\",\"usage\":null}\n\ndata: [DONE]\n\n";

fn routed(f: &mut Filter) -> i32 {
    routed_with(f, br#"{"model":"chat","stream":true}"#)
}

/// A request that asked for no stream (answered whole), routed.
fn routed_whole(f: &mut Filter) -> i32 {
    routed_with(f, br#"{"model":"chat"}"#)
}

fn routed_with(f: &mut Filter, body: &[u8]) -> i32 {
    let ctx = f.new_stream().unwrap();
    f.request_headers(ctx, &post("/v1/chat/completions"), false)
        .unwrap();
    assert_eq!(f.request_body(ctx, body, true).unwrap(), CONTINUE);
    ctx
}

#[test]
fn sse_is_rewritten_identically_at_every_split_point() {
    let mut f = filter();
    let bytes = SSE.as_bytes();
    for cut in 0..=bytes.len() {
        let ctx = routed(&mut f);
        f.response_headers(
            ctx,
            &[(":status", "200"), ("content-type", "text/event-stream")],
            false,
        )
        .unwrap();
        let (a1, mut out) = f.response_body(ctx, &bytes[..cut], false).unwrap();
        let (a2, rest) = f.response_body(ctx, &bytes[cut..], true).unwrap();
        assert_eq!((a1, a2), (CONTINUE, CONTINUE));
        out.extend(rest);
        assert_eq!(String::from_utf8(out).unwrap(), SSE_OUT, "split at {cut}");
    }
}

#[test]
fn json_response_is_buffered_and_renamed() {
    let mut f = filter();
    let ctx = routed_whole(&mut f);
    let held = f
        .response_headers(
            ctx,
            &[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", "53"),
            ],
            false,
        )
        .unwrap();
    // Held until the renamed body's length is known.
    assert_eq!(held, PAUSE);
    let (a, _) = f
        .response_body(ctx, br#"{"model":"llama-3-8b-"#, false)
        .unwrap();
    assert_eq!(a, PAUSE);
    let (a, out) = f
        .response_body(
            ctx,
            br#"backend","system_fingerprint":"llama-3-8b-backend"}"#,
            true,
        )
        .unwrap();
    assert_eq!(a, CONTINUE);
    assert_eq!(
        out,
        br#"{"model":"chat","system_fingerprint":"chat"}"#.to_vec()
    );
    assert_eq!(
        f.response_header("content-length"),
        Some(out.len().to_string().as_str())
    );
}

/// A client error's text is kept, renamed (a 5xx's would be replaced by a generic one).
#[test]
fn upstream_text_error_is_wrapped() {
    let mut f = filter();
    let ctx = routed(&mut f);
    f.response_headers(
        ctx,
        &[(":status", "400"), ("content-type", "text/plain")],
        false,
    )
    .unwrap();
    let (_, out) = f
        .response_body(ctx, b"llama-3-8b-backend is overloaded", true)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "chat is overloaded");
    assert_eq!(f.response_header("content-type"), Some("application/json"));
}

/// Every host call costs the worker a trip out of the VM (on v8, about as much as a little
/// parsing), so a routed chat request has a budget: one read of each header map, one read and
/// one write of each body, only the header edits that change something, and the counters.
#[test]
fn a_routed_request_makes_few_host_calls() {
    let mut f = filter();
    let ctx = f.new_stream().unwrap();
    f.request_headers(ctx, &post("/v1/chat/completions"), false)
        .unwrap();
    f.request_body(
        ctx,
        br#"{"messages":[{"role":"user","content":"hi"}],"model":"chat"}"#,
        true,
    )
    .unwrap();
    f.response_headers(
        ctx,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", "90"),
        ],
        false,
    )
    .unwrap();
    let (_, out) = f
        .response_body(
            ctx,
            br#"{"model":"llama-3-8b-backend","usage":{"total_tokens":7}}"#,
            true,
        )
        .unwrap();
    assert_eq!(
        out,
        br#"{"model":"chat","usage":{"total_tokens":7}}"#.to_vec()
    );
    let calls = &f.state().calls;
    let count = |name: &str| calls.get(name).copied().unwrap_or(0);
    assert_eq!(count("proxy_get_header_map_pairs"), 2, "{calls:?}");
    assert_eq!(count("proxy_get_header_map_value"), 0, "{calls:?}");
    assert_eq!(count("proxy_get_buffer_bytes"), 2, "{calls:?}");
    assert_eq!(count("proxy_set_buffer_bytes"), 2, "{calls:?}");
    // The request's content-length and :authority, the response's content-length; the
    // client's key removed. Headers already right or absent are left alone.
    assert_eq!(count("proxy_replace_header_map_value"), 3, "{calls:?}");
    // The route, as filter state no client can set, and Envoy asked to pick the route again.
    assert_eq!(count("proxy_set_property"), 1, "{calls:?}");
    assert_eq!(count("proxy_call_foreign_function"), 1, "{calls:?}");
    assert_eq!(count("proxy_remove_header_map_value"), 1, "{calls:?}");
    // Key, model and backend requests; model and key tokens.
    assert_eq!(count("proxy_increment_metric"), 5, "{calls:?}");
    // No limit and no cool-down to compare with: the clock is not read.
    assert_eq!(count("proxy_get_current_time_nanoseconds"), 0, "{calls:?}");
    assert!(f.state().host_calls() <= 18, "{calls:?}");
}

/// The response-header allow-list in the real module: a backend's own headers are removed, one
/// host call each, and listing them costs none (the map read once for the callback is reused).
#[test]
fn leaky_response_headers_are_removed_with_one_call_each() {
    let mut f = filter();
    let ctx = routed(&mut f);
    f.state_mut().calls.clear();
    f.response_headers(
        ctx,
        &[
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("server", "uvicorn"),
            ("openai-model", "llama-3-8b-backend"),
            ("x-request-id", "req_1"),
            ("retry-after", "inf"),
            ("x-envoy-upstream-service-time", "3"),
        ],
        false,
    )
    .unwrap();
    let names: Vec<&str> = f
        .state()
        .response_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        names,
        [":status", "content-type", "x-envoy-upstream-service-time"]
    );
    let calls = &f.state().calls;
    let count = |name: &str| calls.get(name).copied().unwrap_or(0);
    assert_eq!(count("proxy_get_header_map_pairs"), 1, "{calls:?}");
    assert_eq!(count("proxy_get_header_map_value"), 0, "{calls:?}");
    assert_eq!(count("proxy_remove_header_map_value"), 4, "{calls:?}");
}
