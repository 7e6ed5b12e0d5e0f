//! Admission at the request headers: keys, key limits, internal headers, the request line and
//! its declared size.

use std::collections::HashMap;
use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::HttpFlow;
use crate::host::Action;

#[test]
fn keys_are_checked() {
    let (s, e) = error_of(&send(&mut flow(), request("GET", "/v1/models", None, b"")));
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (s, _) = error_of(&send(
        &mut flow(),
        request("GET", "/v1/models", Some("sk-mallory"), b""),
    ));
    assert_eq!(s, 401);
    let mut h = request("GET", "/v1/models", None, b"");
    h.req.push(("x-api-key".into(), "sk-alice".into()));
    assert_eq!(send(&mut flow(), h).sent.unwrap().0, 200);
}

#[test]
fn request_errors_are_openai_shaped() {
    let cases: [(&str, &str, &[u8], u16); 6] = [
        ("POST", "/v1/chat/completions", b"{bad", 400),
        ("POST", "/v1/chat/completions", b"{\"messages\":[]}", 400),
        (
            "POST",
            "/v1/chat/completions",
            b"{\"model\":\"unknown\"}",
            404,
        ),
        ("POST", "/v1/embeddings", b"{\"model\":\"chat-small\"}", 404),
        ("POST", "/v1/nope", b"{}", 404),
        ("GET", "/v1/chat/completions", b"", 405),
    ];
    for (method, path, body, status) in cases {
        let (s, e) = error_of(&send(
            &mut flow(),
            request(method, path, Some("sk-alice"), body),
        ));
        assert_eq!(s, status, "{method} {path}");
        assert!(e["error"]["message"].is_string() && e["error"]["type"].is_string());
    }
}

#[test]
fn oversized_bodies_get_413() {
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        Some("sk-alice"),
        &[b' '; 5000],
    );
    h.req.push(("content-length".into(), "5000".into()));
    let (s, _) = error_of(&send(&mut flow(), h));
    assert_eq!(s, 413);
    // Without a declared length, the buffered size decides.
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        Some("sk-alice"),
        &[b' '; 5000],
    );
    assert_eq!(f.on_request_headers(&mut h, false), Action::Pause);
    assert_eq!(f.on_request_body(&mut h, 3000, false), Action::Pause);
    f.on_request_body(&mut h, 5000, false);
    assert_eq!(error_of(&h).0, 413);
}

#[test]
fn a_client_key_over_its_requests_per_minute_gets_429() {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\nrequests_per_minute = 2",
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut shared = HashMap::new();
    for i in 0..3 {
        let mut h = request("GET", "/v1/models", Some("sk-alice"), b"");
        h.shared = shared;
        h.now = 1_000_000;
        let h = send(&mut HttpFlow::new(Rc::clone(&plan)), h);
        let (status, headers, _) = h.sent.clone().unwrap();
        assert_eq!(status, if i < 2 { 200 } else { 429 }, "request {i}");
        if i == 2 {
            assert!(headers
                .iter()
                .any(|(k, v)| k == "retry-after" && v.parse::<u64>().unwrap() > 0));
        }
        shared = h.shared;
    }
}

#[test]
fn a_clients_internal_headers_are_removed_from_every_request() {
    let forged = [
        ("x-airouter-backend", "hosted"),
        ("x-airouter-client-model", "gpt-4o"),
        ("x-airouter-client-path", "/v1/embeddings"),
        ("x-airouter-attempt", "7"),
        ("x-airouter-rl-key", "someone-else"),
        ("x-airouter-anything-new", "x"),
        ("x-airouter-triton-model", "evil"),
    ];
    // Routed, refused, answered locally, and left waiting for a body: none keeps them.
    let cases: [(&str, &str, Option<&str>, &[u8]); 4] = [
        (
            "POST",
            "/v1/chat/completions",
            Some("sk-alice"),
            br#"{"model":"chat-small"}"#,
        ),
        (
            "POST",
            "/v1/chat/completions",
            Some("sk-wrong"),
            br#"{"model":"chat-small"}"#,
        ),
        ("GET", "/health", None, b""),
        ("POST", "/v1/chat/completions", Some("sk-alice"), b"{"),
    ];
    for (method, path, key, body) in cases {
        let mut h = request(method, path, key, body);
        for (k, v) in forged {
            h.req.push((k.into(), v.into()));
        }
        let mut f = flow();
        f.on_request_headers(&mut h, body.is_empty());
        let left: Vec<_> = h
            .req
            .iter()
            .filter(|(k, _)| k.starts_with("x-airouter-"))
            .collect();
        assert!(left.is_empty(), "{method} {path}: {left:?}");
        assert_eq!(h.route(), None);
    }
}

#[test]
fn a_model_in_the_query_string_is_refused() {
    for query in [
        "model=gpt-4o",
        "x=1&Model=a",
        "mod%65l=a",
        "model[]=a",
        "a=1;model",
        "MODEL",
    ] {
        let path = format!("/v1/chat/completions?{query}");
        let h = send(
            &mut flow(),
            request(
                "POST",
                &path,
                Some("sk-alice"),
                br#"{"model":"chat-small"}"#,
            ),
        );
        let (status, e) = error_of(&h);
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (400, Some("ambiguous_model")),
            "{query}"
        );
    }
    for query in ["models=1", "x=model", "api-version=2024-10-21"] {
        let path = format!("/v1/chat/completions?{query}");
        let h = send(
            &mut flow(),
            request(
                "POST",
                &path,
                Some("sk-alice"),
                br#"{"model":"chat-small"}"#,
            ),
        );
        assert!(h.sent.is_none(), "{query}");
    }
}
