//! The benchmarks' workload: one routed chat request in the shape of the example configuration
//! (a client key, an alias, a 1 KB body, a JSON response to rename and count), and the phases
//! it can be cut at. Shared by the criterion timing and the instruction count.

use anyhow::{ensure, Result};

use crate::Filter;

pub const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "gpt-4o-mini"
apis = ["chat"]
target = { backend = "local", model = "llama-3.1-8b-instruct" }
[[keys]]
name = "bench"
sha256 = "c00397de4384b5bbaf14c02fe1ec7020d28d1eeab6a722c576c84b6678c41c29"
"#;

pub const REQUEST_HEADERS: [(&str, &str); 7] = [
    (":method", "POST"),
    (":path", "/v1/chat/completions"),
    (":authority", "127.0.0.1:10000"),
    (":scheme", "http"),
    ("authorization", "Bearer sk-bench"),
    ("content-type", "application/json"),
    ("x-request-id", "4f8e2b9c-62a1-4d0e-9a53-0c1d2e3f4a5b"),
];

pub const RESPONSE_HEADERS: [(&str, &str); 4] = [
    (":status", "200"),
    ("content-type", "application/json"),
    ("content-length", "420"),
    ("date", "Sat, 21 Nov 2026 12:00:00 GMT"),
];

pub fn request_body() -> String {
    let text = "lorem ipsum dolor sit amet ".repeat(34);
    format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}],"max_tokens":64}}"#,
        text.get(..900).unwrap_or(&text)
    )
}

pub fn response_body() -> String {
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"llama-3.1-8b-instruct","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":230,"completion_tokens":40,"total_tokens":270}}}}"#,
        "lorem ipsum ".repeat(20)
    )
}

/// How far into the request an iteration goes.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Phase {
    StreamOnly,
    RequestHeaders,
    RequestBody,
    Response,
}

/// The phases with the names the reports use.
pub const PHASES: [(&str, Phase); 4] = [
    ("stream_only", Phase::StreamOnly),
    ("request_headers", Phase::RequestHeaders),
    ("request_routed", Phase::RequestBody),
    ("whole_request", Phase::Response),
];

/// One stream up to `phase`, then its end (done, log, delete).
pub fn run(f: &mut Filter, phase: Phase, body: &[u8], response: &[u8]) -> Result<()> {
    let ctx = f.new_stream()?;
    if phase >= Phase::RequestHeaders {
        f.request_headers(ctx, &REQUEST_HEADERS, false)?;
    }
    if phase >= Phase::RequestBody {
        f.request_body(ctx, body, true)?;
    }
    if phase >= Phase::Response {
        f.response_headers(ctx, &RESPONSE_HEADERS, false)?;
        f.response_body(ctx, response, true)?;
    }
    f.end_stream(ctx)
}

/// Runs the whole request once and checks it was routed and renamed: numbers measured on a
/// request the filter refused would mean nothing.
pub fn check_routed(f: &mut Filter, body: &[u8], response: &[u8]) -> Result<()> {
    ensure!(f.configured, "not configured: {:?}", f.state().logs);
    let ctx = f.new_stream()?;
    f.request_headers(ctx, &REQUEST_HEADERS, false)?;
    f.request_body(ctx, body, true)?;
    ensure!(
        f.state().local_reply.is_none(),
        "the filter answered itself"
    );
    ensure!(f.route().as_deref() == Some("local"), "not routed");
    f.response_headers(ctx, &RESPONSE_HEADERS, false)?;
    let (_, out) = f.response_body(ctx, response, true)?;
    ensure!(
        out.windows(13).any(|w| w == b"\"gpt-4o-mini\""),
        "response not renamed"
    );
    f.end_stream(ctx)
}
