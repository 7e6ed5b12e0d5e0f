//! The response headers: a backend's errors, Envoy's own failures and its rate limiter's refusals,
//! bodiless answers, and no backend-naming header reaching the client.

use super::host::*;
use crate::flow::HttpFlow;
use crate::host::{Action, Headers, Host};

#[test]
fn buffered_responses_hold_their_headers_for_the_exact_length() {
    for (status, ctype, held) in [
        ("200", "application/json", true),
        ("500", "text/plain", true),
        ("200", "text/event-stream", false),
        ("200", "audio/mpeg", false),
    ] {
        let (mut f, mut h) = routed_streaming();
        h.resp = vec![
            (":status".into(), status.into()),
            ("content-type".into(), ctype.into()),
            ("content-length".into(), "99".into()),
        ];
        let action = f.on_response_headers(&mut h, false);
        assert_eq!(action == Action::Pause, held, "{status} {ctype}");
        // Headers that end the stream have no body to wait for; a bodiless error gets the
        // filter's own OpenAI error in its place.
        let (mut f, mut h) = routed();
        h.resp = vec![
            (":status".into(), status.into()),
            ("content-type".into(), ctype.into()),
        ];
        let action = f.on_response_headers(&mut h, true);
        if status.starts_with('5') || status.starts_with('4') {
            assert_eq!(action, Action::Pause, "{status}");
            let (code, e) = error_of(&h);
            assert_eq!(code.to_string(), status);
            assert!(e["error"]["message"].is_string(), "{e}");
        } else {
            assert_eq!(action, Action::Continue, "{status}");
            assert!(h.sent.is_none());
        }
    }
}

#[test]
fn bodiless_backend_errors_and_redirects_get_an_openai_error() {
    for (status, hint, want) in [
        ("500", None, 500),
        ("429", Some("7"), 429),
        ("404", None, 404),
        ("302", None, 502),
        ("307", None, 502),
    ] {
        let (mut f, mut h) = routed();
        h.resp = vec![
            (":status".into(), status.into()),
            ("content-length".into(), "0".into()),
            ("location".into(), "http://10.9.8.7:8000/v1/x".into()),
        ];
        if let Some(secs) = hint {
            h.resp.push(("retry-after".into(), secs.into()));
        }
        assert_eq!(
            f.on_response_headers(&mut h, true),
            Action::Pause,
            "{status}"
        );
        let (code, e) = error_of(&h);
        assert_eq!(code, want, "{status}: {e}");
        let (_, headers, body) = h.sent.clone().unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.9.8.7"));
        let retry = headers
            .iter()
            .find(|(k, _)| k == "retry-after")
            .map(|(_, v)| v.as_str());
        assert_eq!(retry, hint, "{status}");
        // The reply, should Envoy run it through the filter again, passes untouched.
        assert_eq!(f.on_response_headers(&mut h, false), Action::Continue);
    }
}

#[test]
fn upstream_errors_keep_status_and_get_the_envelope() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "500",
        "text/plain",
        &[b"qwen2-0.5b exploded"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["error"]["message"],
        crate::backend_errors::generic_message(500)
    );
    assert_eq!(
        h.header(Headers::Response, "content-length"),
        Some(out.len().to_string().into())
    );
    assert_eq!(
        h.header(Headers::Response, ":status").as_deref(),
        Some("500")
    );
    assert_eq!(
        h.header(Headers::Response, "content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn envoy_connection_failures_become_502() {
    let (mut f, mut h) = routed();
    h.props.insert(
        "response.code_details".into(),
        "upstream_reset_before_response_started{remote_connection_failure}".into(),
    );
    let out = respond(
        &mut f,
        &mut h,
        "503",
        "text/plain",
        &[b"upstream connect error"],
    );
    assert_eq!(
        h.header(Headers::Response, ":status").as_deref(),
        Some("502")
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "server_error");
    assert_eq!(
        h.header(Headers::Response, "content-length"),
        Some(out.len().to_string().into())
    );
}

#[test]
fn bodiless_errors_keep_their_headers() {
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "503".into()),
        ("content-type".into(), "text/plain".into()),
    ];
    f.on_response_headers(&mut h, true);
    assert_eq!(
        h.header(Headers::Response, "content-type").as_deref(),
        Some("text/plain")
    );
}

#[test]
fn a_rate_limit_filter_refusal_passes_untouched_and_cools_nothing() {
    let mut f = global_flow();
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let mut h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    h.props.insert(
        "response.code_details".into(),
        "request_rate_limited".into(),
    );
    h.resp = vec![
        (":status".into(), "429".into()),
        ("retry-after".into(), "30".into()),
    ];
    f.on_response_headers(&mut h, false);
    h.resp_body = br#"{"error":{"message":"limited"}}"#.to_vec();
    let len = h.resp_body.len();
    assert_eq!(f.on_response_body(&mut h, len, true), Action::Continue);
    assert_eq!(h.resp_body, br#"{"error":{"message":"limited"}}"#.to_vec());
    assert!(h.shared.keys().all(|k| !k.starts_with("airouter/cool/")));
}

/// Response headers a leaky backend sends (and Envoy's own timing).
const LEAKY_HEADERS: [(&str, &str); 12] = [
    ("openai-model", "qwen2-0.5b"),
    ("openai-organization", "org-1"),
    ("x-model", "qwen2-0.5b"),
    ("location", "http://127.0.0.1:8000/v1/x"),
    ("server", "uvicorn"),
    ("via", "1.1 vllm"),
    ("x-powered-by", "FastAPI"),
    ("set-cookie", "a=1"),
    ("anthropic-ratelimit-tokens-limit", "100"),
    ("x-ratelimit-remaining-requests", "3"),
    ("x-request-id", "req_qwen2"),
    ("x-envoy-upstream-service-time", "4"),
];

/// Runs a response with leaky headers; returns the body the client got.
fn respond_leaky(
    f: &mut HttpFlow,
    h: &mut FakeHost,
    status: &str,
    ctype: &str,
    chunks: &[&[u8]],
) -> Vec<u8> {
    h.resp = vec![
        (":status".into(), status.into()),
        ("content-type".into(), ctype.into()),
        ("retry-after".into(), "7".into()),
    ];
    h.resp.extend(
        LEAKY_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    f.on_response_headers(h, chunks.is_empty());
    let mut delivered = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        h.resp_body.extend_from_slice(c);
        let size = h.resp_body.len();
        if f.on_response_body(h, size, i + 1 == chunks.len()) == Action::Continue {
            delivered.append(&mut h.resp_body);
        }
    }
    delivered
}

fn assert_headers_clean(h: &FakeHost) {
    let names: Vec<&str> = h.resp.iter().map(|(k, _)| k.as_str()).collect();
    for name in &names {
        assert!(
            [
                ":status",
                "content-type",
                "content-length",
                "retry-after",
                "x-envoy-upstream-service-time"
            ]
            .contains(name),
            "{name} reached the client: {names:?}"
        );
    }
    assert!(names.contains(&"retry-after"), "{names:?}");
    let text = format!("{:?}", h.resp);
    assert!(
        !text.contains("qwen2") && !text.contains("127.0.0.1"),
        "{text}"
    );
}

#[test]
fn leaky_response_headers_never_reach_the_client() {
    for (status, ctype, chunks) in [
        (
            "200",
            "application/json",
            &[&b"{\"model\":\"qwen2-0.5b\"}"[..]][..],
        ),
        (
            "200",
            "text/event-stream",
            &[&b"data: {}\n\ndata: [DONE]\n\n"[..]][..],
        ),
        ("200", "text/plain", &[&b"hi"[..]][..]),
        ("200", "audio/mpeg", &[&b"ID3"[..]][..]),
        ("302", "text/html", &[][..]),
        (
            "301",
            "text/html",
            &[&b"<a href='http://127.0.0.1:8000/v1'>"[..]][..],
        ),
        ("429", "application/json", &[&b"{}"[..]][..]),
        ("500", "text/plain", &[&b"boom"[..]][..]),
    ] {
        let (mut f, mut h) = routed();
        respond_leaky(&mut f, &mut h, status, ctype, chunks);
        assert_headers_clean(&h);
    }
    // Envoy's own answers after routing: the rate limiter's and a connection failure.
    for details in [
        "request_rate_limited",
        "upstream_reset_before_response_started{connection_failure}",
    ] {
        let (mut f, mut h) = routed();
        h.props
            .insert("response.code_details".into(), details.into());
        respond_leaky(&mut f, &mut h, "429", "application/json", &[b"{}"]);
        assert_headers_clean(&h);
    }
}

#[test]
fn backend_redirects_become_gateway_errors() {
    let (mut f, mut h) = routed();
    let out = respond_leaky(
        &mut f,
        &mut h,
        "307",
        "text/html",
        &[b"<a href='http://127.0.0.1:8000/x'>"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], "backend_redirect");
    assert_eq!(
        h.header(Headers::Response, ":status").as_deref(),
        Some("502")
    );
    assert_eq!(h.header(Headers::Response, "location"), None);
}

#[test]
fn retry_hints_pass_only_in_the_form_clients_read() {
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "429".into()),
        ("retry-after".into(), "inf".into()),
        ("retry-after-ms".into(), "250".into()),
        ("x-should-retry".into(), "qwen2-0.5b".into()),
    ];
    f.on_response_headers(&mut h, true);
    let names: Vec<&str> = h.resp.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, [":status", "retry-after-ms"]);
}

#[test]
fn openai_shaped_errors_lose_their_extra_fields() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "400",
        "application/json",
        &[br#"{"error":{"message":"model qwen2-0.5b overloaded","type":"server_error","param":null,"code":"overloaded","backend_url":"http://10.0.0.5:8000/v1"}}"#],
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"error": {"message": "model chat-small overloaded", "type": "server_error", "param": null, "code": "overloaded"}})
    );
}
