//! Routing once the body is in: the model read (JSON, multipart) and checked, resolved within the
//! key's allow-list, the request rewritten for its target; trailers ending a body.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::contract::{CLIENT_MODEL_HEADER, TRITON_BACKEND_HEADER, TRITON_MODEL_HEADER};
use crate::flow::{target_request, HttpFlow};
use crate::host::{Action, Headers, Host};

#[test]
fn chat_is_rewritten_for_its_backend() {
    let body = br#"{"model":"chat-small","messages":[],"extra_unknown":{"a":[1,2]}}"#;
    let h = send(
        &mut flow(),
        request("POST", "/v1/chat/completions?x=1", Some("sk-alice"), body),
    );
    assert!(h.sent.is_none());
    assert_eq!(
        h.req_body,
        br#"{"model":"qwen2-0.5b","messages":[],"extra_unknown":{"a":[1,2]}}"#.to_vec()
    );
    let get = |k: &str| h.header(Headers::Request, k);
    assert_eq!(get(":path").as_deref(), Some("/v1/chat/completions?x=1"));
    assert_eq!(get(":authority").as_deref(), Some("127.0.0.1:8000"));
    assert_eq!(h.route(), Some("local"));
    assert_eq!(
        get("content-length"),
        Some(h.req_body.len().to_string().into())
    );
    assert_eq!(
        get("authorization"),
        None,
        "the client's key must not reach a keyless backend"
    );
    assert_eq!(get("accept-encoding"), None);
}

#[test]
fn hosted_backend_gets_its_own_key_and_prefix() {
    let body = br#"{"model":"gpt-4o","messages":[]}"#;
    let h = send(
        &mut flow(),
        request("POST", "/v1/chat/completions", Some("sk-bob"), body),
    );
    let get = |k: &str| h.header(Headers::Request, k);
    assert_eq!(get(":path").as_deref(), Some("/openai/v1/chat/completions"));
    assert_eq!(get(":authority").as_deref(), Some("api.example.com"));
    assert_eq!(get("authorization").as_deref(), Some("Bearer sk-backend"));
}

#[test]
fn allow_list_hides_models_as_not_found() {
    let body = br#"{"model":"chat-small"}"#;
    let (s, e) = error_of(&send(
        &mut flow(),
        request("POST", "/v1/chat/completions", Some("sk-bob"), body),
    ));
    assert_eq!(s, 404);
    assert_eq!(
        e["error"]["message"],
        "The model `chat-small` does not exist."
    );
}

#[test]
fn multipart_model_part_is_rewritten_and_client_key_passed_through() {
    let body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\x00\xff\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B--\r\n";
    let mut h = request("POST", "/v1/audio/transcriptions", Some("sk-alice"), body);
    h.set_header(
        Headers::Request,
        "content-type",
        Some("multipart/form-data; boundary=B"),
    );
    let h = send(&mut flow(), h);
    assert!(h.sent.is_none());
    let expected = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\x00\xff\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-large-v3\r\n--B--\r\n";
    assert_eq!(h.req_body, expected.to_vec());
    assert_eq!(
        h.header(Headers::Request, "authorization").as_deref(),
        Some("Bearer sk-alice")
    );
}

const TRITON_CONFIG: &str = r#"
[sidecar]
port = 8090
[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:8001"
[[models]]
name = "llama"
apis = ["chat"]
target = { backend = "triton", model = "vllm_llama" }
triton = { family = "vllm", template = "llama3" }
"#;

#[test]
fn triton_models_go_to_the_sidecar_with_instructions_only_the_filter_sets() {
    let mut f = HttpFlow::new(Rc::new(
        compile("t.toml", TRITON_CONFIG, &|_| None).unwrap(),
    ));
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        Some("sk-whatever"),
        br#"{"model":"llama"}"#,
    );
    // A client trying to steer the sidecar itself.
    h.req.push((TRITON_MODEL_HEADER.into(), "evil".into()));
    h.req
        .push(("x-airouter-sidecar-secret".into(), "guess".into()));
    let h = send(&mut f, h);
    assert!(h.sent.is_none());
    let get = |k: &str| h.header(Headers::Request, k);
    assert_eq!(get(":path").as_deref(), Some("/v1/chat/completions"));
    assert_eq!(h.route(), Some("triton"));
    assert_eq!(get(TRITON_BACKEND_HEADER).as_deref(), Some("triton"));
    assert_eq!(get(TRITON_MODEL_HEADER).as_deref(), Some("vllm_llama"));
    assert_eq!(get(CLIENT_MODEL_HEADER).as_deref(), Some("llama"));
    assert_eq!(get("x-airouter-sidecar-secret"), None);
    assert_eq!(get("authorization"), None);
}

/// Sends the body in two callbacks, the last not ending the stream, then trailers: how HTTP/2
/// and chunked HTTP/1.1 end a request that carries trailers.
fn send_with_trailers(f: &mut HttpFlow, mut h: FakeHost) -> FakeHost {
    if f.on_request_headers(&mut h, false) == Action::Pause && h.sent.is_none() {
        let half = h.req_body.len() / 2;
        assert_eq!(f.on_request_body(&mut h, half, false), Action::Pause);
        let len = h.req_body.len();
        assert_eq!(f.on_request_body(&mut h, len, false), Action::Pause);
        f.on_request_trailers(&mut h);
    }
    h
}

#[test]
fn trailers_end_the_body_and_the_request_is_routed_and_checked() {
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let h = send_with_trailers(
        &mut flow(),
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h.sent.is_none());
    assert_eq!(
        h.req_body,
        br#"{"model":"qwen2-0.5b","messages":[]}"#.to_vec()
    );
    assert_eq!(h.route(), Some("local"));
    // The allow-list holds on this path too: bob may use gpt-4* only.
    let body = br#"{"model":"chat-small"}"#;
    let h = send_with_trailers(
        &mut flow(),
        request("POST", "/v1/chat/completions", Some("sk-bob"), body),
    );
    assert_eq!(error_of(&h).0, 404);
    assert_eq!(h.route(), None);
}

#[test]
fn trailers_without_a_body_get_the_missing_model_error() {
    let mut f = flow();
    let mut h = request("POST", "/v1/chat/completions", Some("sk-alice"), b"");
    assert_eq!(f.on_request_headers(&mut h, false), Action::Pause);
    f.on_request_trailers(&mut h);
    assert_eq!(error_of(&h).0, 400);
}

#[test]
fn trailers_of_a_request_not_waiting_for_its_body_change_nothing() {
    let mut f = flow();
    let mut h = request("GET", "/health", None, b"");
    f.on_request_headers(&mut h, false);
    let before = h.sent.clone();
    assert_eq!(f.on_request_trailers(&mut h), Action::Continue);
    assert_eq!(h.sent, before);
}

fn multipart(key: &str, body: &[u8]) -> FakeHost {
    let mut h = request("POST", "/v1/audio/transcriptions", Some(key), body);
    h.set_header(
        Headers::Request,
        "content-type",
        Some("multipart/form-data; boundary=B"),
    );
    h
}

// Issue 14, the request side: a backend reads the model the router checked; client text never
// grows state; values from backends are bounded.

/// Refused locally, with nothing routed and the body as the client sent it.
fn assert_refused(h: &FakeHost, sent_body: &[u8], status: u16, code: Option<&str>) {
    let (s, e) = error_of(h);
    assert_eq!((s, e["error"]["code"].as_str()), (status, code), "{e}");
    assert_eq!(h.route(), None);
    assert_eq!(h.req_body, sent_body.to_vec());
}

#[test]
fn bodies_a_backend_could_read_as_another_model_are_refused() {
    // bob may use gpt-* only; each body names gpt-4o where the router looks and chat-small where
    // some backend's parser would.
    let json: [&[u8]; 5] = [
        br#"{"model":"gpt-4o","model":"chat-small"}"#,
        br#"{"model":"gpt-4o","MODEL":"chat-small"}"#,
        br#"{"model":"gpt-4o","Model":"chat-small"}"#,
        br#"{"model":"gpt-4o","mod\u0065l":"chat-small"}"#,
        br#"{"model":"gpt-4o","model\u0000":"chat-small"}"#,
    ];
    for body in json {
        let h = send(&mut flow(), chat("sk-bob", body));
        assert_refused(&h, body, 400, Some("ambiguous_model"));
    }
    let two_parts = b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o\r\n--B--\r\n";
    let h = send(&mut flow(), multipart("sk-alice", two_parts));
    assert_refused(&h, two_parts, 400, Some("ambiguous_model"));
    let two_dispositions = b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B--\r\n";
    let h = send(&mut flow(), multipart("sk-alice", two_dispositions));
    assert_refused(&h, two_dispositions, 400, None);
    let padded = b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--B \r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o\r\n--B--\r\n";
    let h = send(&mut flow(), multipart("sk-alice", padded));
    assert_refused(&h, padded, 400, None);
}

#[test]
fn model_names_are_bounded_and_free_of_control_characters() {
    let longest = format!(
        "gpt-4{}",
        "o".repeat(target_request::MAX_MODEL_NAME_BYTES - 5)
    );
    let body = format!(r#"{{"model":"{longest}"}}"#);
    let h = send(&mut flow(), chat("sk-bob", body.as_bytes()));
    assert!(h.sent.is_none(), "{:?}", h.sent);
    let too_long = format!(r#"{{"model":"{longest}o"}}"#);
    let h = send(&mut flow(), chat("sk-bob", too_long.as_bytes()));
    assert_refused(&h, too_long.as_bytes(), 400, Some("invalid_value"));
    // Escapes count once decoded; a 1 MiB name is refused all the same.
    let huge = format!(r#"{{"model":"gpt-4{}"}}"#, "\\u0041".repeat(60));
    let h = send(&mut flow(), chat("sk-bob", huge.as_bytes()));
    assert!(h.sent.is_none());
    let mut f = HttpFlow::new(Rc::new(
        compile("t.toml", &CONFIG.replace("4096", "2000000"), &|_| None).unwrap(),
    ));
    let mib = format!(r#"{{"model":"gpt-4{}"}}"#, "o".repeat(1 << 20));
    let h = send(&mut f, chat("sk-bob", mib.as_bytes()));
    assert_refused(&h, mib.as_bytes(), 400, Some("invalid_value"));
    for name in [
        "gpt-4\\u0000",
        "gpt-4\\n",
        "gpt-4\\r\\nx-evil: 1",
        "gpt-4\\u007f",
        "gpt-4\\u0085",
    ] {
        let body = format!(r#"{{"model":"{name}"}}"#);
        let h = send(&mut flow(), chat("sk-bob", body.as_bytes()));
        assert_refused(&h, body.as_bytes(), 400, Some("invalid_value"));
    }
    let form =
        b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\nx\r\n--B--\r\n";
    let h = send(&mut flow(), multipart("sk-alice", form));
    assert_refused(&h, form, 400, Some("invalid_value"));
    let long_id = format!("/v1/models/gpt-4{}", "o".repeat(300));
    for path in [
        long_id.as_str(),
        "/v1/models/gpt-4%0A",
        "/v1/models/gpt-4%00",
    ] {
        let (s, e) = error_of(&send(
            &mut flow(),
            request("GET", path, Some("sk-bob"), b""),
        ));
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("invalid_value")),
            "{path}"
        );
    }
}
