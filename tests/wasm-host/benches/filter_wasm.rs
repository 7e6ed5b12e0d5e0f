//! The release filter module on wasmtime, one whole routed chat request per iteration (new
//! stream, request headers, a 1 KB body, JSON response headers and body, end of stream), and each
//! phase on its own: the time spent inside the module, with host calls costing next to nothing.
//! Envoy's v8 adds its own cost per host call; `tests/bench/run.py` measures that end to end.
//! `make bench` runs it; no test asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airouter_wasm_tests::Filter;
use criterion::{criterion_group, criterion_main, Criterion};

const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "gpt-4o-mini"
apis = ["chat"]
target = { backend = "local", model = "llama-3.1-8b-instruct" }
[[keys]]
name = "bench"
key = "sk-bench"
"#;

const REQUEST_HEADERS: [(&str, &str); 7] = [
    (":method", "POST"),
    (":path", "/v1/chat/completions"),
    (":authority", "127.0.0.1:10000"),
    (":scheme", "http"),
    ("authorization", "Bearer sk-bench"),
    ("content-type", "application/json"),
    ("x-request-id", "4f8e2b9c-62a1-4d0e-9a53-0c1d2e3f4a5b"),
];

const RESPONSE_HEADERS: [(&str, &str); 4] = [
    (":status", "200"),
    ("content-type", "application/json"),
    ("content-length", "420"),
    ("date", "Sat, 21 Nov 2026 12:00:00 GMT"),
];

fn request_body() -> String {
    let text = "lorem ipsum dolor sit amet ".repeat(34);
    format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}],"max_tokens":64}}"#,
        &text[..900]
    )
}

fn response_body() -> String {
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"llama-3.1-8b-instruct","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":230,"completion_tokens":40,"total_tokens":270}}}}"#,
        "lorem ipsum ".repeat(20)
    )
}

/// How far into the request an iteration goes.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Phase {
    StreamOnly,
    RequestHeaders,
    RequestBody,
    Response,
}

fn run(f: &mut Filter, phase: Phase, body: &[u8], response: &[u8]) {
    let ctx = f.new_stream().unwrap();
    if phase >= Phase::RequestHeaders {
        f.request_headers(ctx, &REQUEST_HEADERS, false).unwrap();
    }
    if phase >= Phase::RequestBody {
        f.request_body(ctx, body, true).unwrap();
    }
    if phase >= Phase::Response {
        f.response_headers(ctx, &RESPONSE_HEADERS, false).unwrap();
        f.response_body(ctx, response, true).unwrap();
    }
    f.end_stream(ctx).unwrap();
}

fn whole_request(c: &mut Criterion) {
    let mut f = Filter::load(CONFIG, &[]).unwrap();
    assert!(f.configured, "{:?}", f.state().logs);
    let (body, response) = (request_body(), response_body());
    // The request really is routed and renamed, or the numbers mean nothing.
    run(
        &mut f,
        Phase::Response,
        body.as_bytes(),
        response.as_bytes(),
    );
    assert!(f.state().local_reply.is_none());
    assert_eq!(f.request_header("x-airouter-backend"), Some("local"));
    let mut g = c.benchmark_group("filter_wasm_chat_1kb");
    for (name, phase) in [
        ("stream_only", Phase::StreamOnly),
        ("request_headers", Phase::RequestHeaders),
        ("request_routed", Phase::RequestBody),
        ("whole_request", Phase::Response),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| run(&mut f, phase, body.as_bytes(), response.as_bytes()));
        });
    }
    g.finish();
}

criterion_group!(benches, whole_request);
criterion_main!(benches);
