//! The request flow driven through an in-memory host: what Envoy would see the filter do.

use std::collections::HashMap;

use super::*;
use crate::config::compile;
use crate::contract::{TRITON_BACKEND_HEADER, TRITON_MODEL_HEADER};

/// A local reply: status, headers, body.
type Sent = (u16, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct FakeHost {
    req: Vec<(String, String)>,
    resp: Vec<(String, String)>,
    req_body: Vec<u8>,
    resp_body: Vec<u8>,
    sent: Option<Sent>,
    props: HashMap<String, String>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    now: u64,
    counters: HashMap<String, u64>,
    /// Filter state set by the flow.
    state: HashMap<String, String>,
    /// Times the flow asked Envoy to pick the route again.
    route_cache_cleared: u32,
}

impl Host for FakeHost {
    fn header(&self, map: Headers, name: &str) -> Option<Cow<'_, str>> {
        let m = if map == Headers::Request {
            &self.req
        } else {
            &self.resp
        };
        m.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
    }
    fn header_names_with_prefix(&self, map: Headers, prefix: &str) -> Vec<String> {
        let m = if map == Headers::Request {
            &self.req
        } else {
            &self.resp
        };
        let mut names: Vec<String> = Vec::new();
        for (k, _) in m.iter().filter(|(k, _)| k.starts_with(prefix)) {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        names
    }
    fn clear_route_cache(&mut self) {
        self.route_cache_cleared += 1;
    }
    fn header_names(&self, map: Headers) -> Vec<String> {
        let m = if map == Headers::Request {
            &self.req
        } else {
            &self.resp
        };
        let mut names: Vec<String> = Vec::new();
        for (k, _) in m {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        names
    }
    fn set_header(&mut self, map: Headers, name: &str, value: Option<&str>) {
        let m = if map == Headers::Request {
            &mut self.req
        } else {
            &mut self.resp
        };
        m.retain(|(k, _)| k != name);
        if let Some(v) = value {
            m.push((name.to_string(), v.to_string()));
        }
    }
    fn body(&self, map: Headers, len: usize) -> Option<Vec<u8>> {
        let b = if map == Headers::Request {
            &self.req_body
        } else {
            &self.resp_body
        };
        Some(b[..len.min(b.len())].to_vec())
    }
    fn replace_body(&mut self, map: Headers, len: usize, data: &[u8]) -> bool {
        let b = if map == Headers::Request {
            &mut self.req_body
        } else {
            &mut self.resp_body
        };
        b.splice(..len.min(b.len()), data.iter().copied());
        true
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let h = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.sent = Some((status, h, body.to_vec()));
    }
    fn property(&self, path: &[&str]) -> Option<String> {
        // Envoy answers a one-part path from the request's filter state too (`wasm.<name>`).
        let key = path.join(".");
        self.props
            .get(&key)
            .or_else(|| self.state.get(&key))
            .cloned()
    }
    fn log_warn(&self, _message: &str) {}
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.get(key).cloned()
    }
    fn set_property(&mut self, name: &str, value: &[u8]) {
        self.state.insert(
            name.to_string(),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
    fn add(&mut self, metric: &str, n: u64) {
        *self.counters.entry(metric.to_string()).or_default() += n;
    }
    fn counter(&self, metric: &str) -> u64 {
        self.counters.get(metric).copied().unwrap_or(0)
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> crate::host::SharedWrite {
        let current = self.shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return crate::host::SharedWrite::Conflict;
        }
        self.shared
            .insert(key.to_string(), (value.to_vec(), current + 1));
        crate::host::SharedWrite::Written
    }
}

impl FakeHost {
    /// The route the flow picked for Envoy, once it asked Envoy to look again.
    fn route(&self) -> Option<&str> {
        (self.route_cache_cleared > 0)
            .then(|| self.state.get(ROUTE_PROPERTY).map(String::as_str))
            .flatten()
    }
}

const CONFIG: &str = r#"
[listener]
max_body_bytes = 4096
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.hosted]
kind = "openai"
url = "https://api.example.com/openai/v1"
api_key = "sk-backend"
[backends.mine]
kind = "openai"
url = "http://10.0.0.1:9000"
pass_client_key = true
[[models]]
name = "chat-small"
apis = ["chat", "completions"]
target = { backend = "local", model = "qwen2-0.5b" }
[[models]]
name = "gpt-4*"
apis = ["chat"]
target = { backend = "hosted" }
[[models]]
name = "whisper"
apis = ["audio.transcriptions"]
target = { backend = "mine", model = "whisper-large-v3" }
[[keys]]
name = "alice"
key = "sk-alice"
[[keys]]
name = "bob"
key = "sk-bob"
models = ["gpt-*"]
"#;

fn flow() -> HttpFlow {
    HttpFlow::new(Rc::new(compile("t.toml", CONFIG, &|_| None).unwrap()))
}

fn request(method: &str, path: &str, key: Option<&str>, body: &[u8]) -> FakeHost {
    let mut h = FakeHost::default();
    h.req.push((":method".into(), method.into()));
    h.req.push((":path".into(), path.into()));
    h.req.push((":authority".into(), "router.local".into()));
    h.req
        .push(("content-type".into(), "application/json".into()));
    h.req.push(("accept-encoding".into(), "gzip".into()));
    if let Some(k) = key {
        h.req.push(("authorization".into(), format!("Bearer {k}")));
    }
    h.req_body = body.to_vec();
    h
}

/// Runs the request callbacks; returns the host after them.
fn send(f: &mut HttpFlow, mut h: FakeHost) -> FakeHost {
    let eos = h.req_body.is_empty();
    if f.on_request_headers(&mut h, eos) == Action::Pause && h.sent.is_none() {
        let len = h.req_body.len();
        f.on_request_body(&mut h, len, true);
    }
    h
}

fn error_of(h: &FakeHost) -> (u16, serde_json::Value) {
    let (status, _, body) = h.sent.as_ref().expect("a local reply");
    (*status, serde_json::from_slice(body).unwrap())
}

#[test]
fn health_needs_no_key() {
    let h = send(&mut flow(), request("GET", "/health", None, b""));
    assert_eq!(h.sent.unwrap().0, 200);
}

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
fn models_list_applies_the_allow_list() {
    let h = send(
        &mut flow(),
        request("GET", "/v1/models", Some("sk-alice"), b""),
    );
    let v: serde_json::Value = serde_json::from_slice(&h.sent.unwrap().2).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat-small", "whisper"]);
    let h = send(
        &mut flow(),
        request("GET", "/v1/models", Some("sk-bob"), b""),
    );
    let v: serde_json::Value = serde_json::from_slice(&h.sent.unwrap().2).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    let h = send(
        &mut flow(),
        request("GET", "/v1/models/gpt-4o", Some("sk-bob"), b""),
    );
    assert_eq!(h.sent.unwrap().0, 200);
    let (s, e) = error_of(&send(
        &mut flow(),
        request("GET", "/v1/models/chat-small", Some("sk-bob"), b""),
    ));
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
}

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

fn routed() -> (HttpFlow, FakeHost) {
    let mut f = flow();
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h.sent.is_none());
    (f, h)
}

fn respond(
    f: &mut HttpFlow,
    h: &mut FakeHost,
    status: &str,
    ctype: &str,
    chunks: &[&[u8]],
) -> Vec<u8> {
    h.resp = vec![
        (":status".into(), status.into()),
        ("content-type".into(), ctype.into()),
        ("content-length".into(), "99".into()),
    ];
    f.on_response_headers(h, false);
    let mut delivered = Vec::new();
    let mut buffered = 0;
    for (i, c) in chunks.iter().enumerate() {
        h.resp_body.extend_from_slice(c);
        let eos = i + 1 == chunks.len();
        let size = h.resp_body.len();
        if f.on_response_body(h, size, eos) == Action::Continue {
            delivered.append(&mut h.resp_body);
            buffered = 0;
        } else {
            buffered = size;
        }
    }
    assert_eq!(buffered, 0, "body still held at end of stream");
    delivered
}

#[test]
fn json_responses_lose_backend_names() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[b"{\"model\":\"qwen2-", b"0.5b\",\"x\":1}"],
    );
    assert_eq!(out, b"{\"model\":\"chat-small\",\"x\":1}".to_vec());
    assert_eq!(
        h.header(Headers::Response, "content-length"),
        Some(out.len().to_string().into())
    );
}

#[test]
fn buffered_responses_hold_their_headers_for_the_exact_length() {
    for (status, ctype, held) in [
        ("200", "application/json", true),
        ("500", "text/plain", true),
        ("200", "text/event-stream", false),
        ("200", "audio/mpeg", false),
    ] {
        let (mut f, mut h) = routed();
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
fn sse_responses_are_rewritten_chunk_by_chunk() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[
            b"data: {\"model\":\"qwen2-0.5b\"}\n\ndata: {\"mod",
            b"el\":\"qwen2-0.5b\"}\n\ndata: [DONE]\n\n",
        ],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: {\"model\":\"chat-small\"}\n\ndata: {\"model\":\"chat-small\"}\n\ndata: [DONE]\n\n"
    );
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
fn binary_responses_pass_untouched() {
    let (mut f, mut h) = routed();
    let out = respond(&mut f, &mut h, "200", "audio/mpeg", &[b"ID3\x00qwen2-0.5b"]);
    assert_eq!(out, b"ID3\x00qwen2-0.5b".to_vec());
    assert_eq!(
        h.header(Headers::Response, "content-length").as_deref(),
        Some("99")
    );
}

#[test]
fn compressed_bodies_pass_untouched() {
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-encoding".into(), "gzip".into()),
    ];
    f.on_response_headers(&mut h, false);
    h.resp_body = b"\x1f\x8b\"model\":\"qwen2-0.5b\"".to_vec();
    let n = h.resp_body.len();
    assert_eq!(f.on_response_body(&mut h, n, true), Action::Continue);
    assert_eq!(h.resp_body, b"\x1f\x8b\"model\":\"qwen2-0.5b\"".to_vec());
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

#[test]
fn a_chat_stream_cut_short_ends_with_an_error_event_and_done() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {\"model\":\"qwen2-0.5b\"}\n\ndata: {\"partial"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "data: {\"model\":\"chat-small\"}\n\ndata: {\"partial\n\ndata: {\"error\""
        ),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    // A complete stream is left alone.
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {}\n\ndata: [DONE]\n\n"],
    );
    assert_eq!(out, b"data: {}\n\ndata: [DONE]\n\n".to_vec());
}

#[test]
fn admin_endpoints_take_admin_keys_only() {
    // Without [[admin_keys]] they are off.
    let (s, e) = error_of(&send(
        &mut flow(),
        request("GET", "/router/stats", Some("sk-alice"), b""),
    ));
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("admin_disabled"))
    );
    let config = format!("{CONFIG}\n[[admin_keys]]\nname = \"ops\"\nkey = \"sk-ops\"\n");
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let (s, _) = error_of(&send(
        &mut HttpFlow::new(Rc::clone(&plan)),
        request("GET", "/router/stats", Some("sk-alice"), b""),
    ));
    assert_eq!(s, 401, "a client key is not an admin key");
    let h = send(
        &mut HttpFlow::new(Rc::clone(&plan)),
        request("GET", "/auth/status", Some("sk-ops"), b""),
    );
    let (status, _, body) = h.sent.unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["client_keys"], serde_json::json!(["alice", "bob"]));
    assert!(
        !String::from_utf8_lossy(&body).contains("sk-"),
        "keys never appear"
    );
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

fn global_flow() -> HttpFlow {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\nrequests_per_minute = 1\ntokens_per_minute = 1000",
    )
        + "[global_limits]\nredis = \"redis://127.0.0.1:6379\"\ndefault_max_tokens = 64\n";
    HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()))
}

fn header_of(h: &FakeHost, name: &str) -> Option<String> {
    h.header(Headers::Request, name).map(Cow::into_owned)
}

#[test]
fn global_limits_name_key_and_reservation_and_leave_counting_to_envoy() {
    let body = br#"{"model":"chat-small","messages":[],"max_tokens":10}"#;
    // A client cannot charge someone else's key: its own copies of the headers are dropped.
    let mut h = request("POST", "/v1/chat/completions", Some("sk-alice"), body);
    h.req.push((contract::RL_KEY_HEADER.into(), "bob".into()));
    h.now = 5_000;
    let mut f = global_flow();
    let h = send(&mut f, h);
    assert!(h.sent.is_none());
    assert_eq!(
        header_of(&h, contract::RL_KEY_HEADER).as_deref(),
        Some("alice")
    );
    let reserve = header_of(&h, contract::RL_RESERVE_HEADER).unwrap();
    let (tokens, at) = global_limits::parse_reserve(&reserve).unwrap();
    // The reservation: a quarter of the body's bytes for the prompt, plus max_tokens.
    assert_eq!((tokens, at), ((body.len() as u64).div_ceil(4) + 10, 5_000));
    assert_eq!(
        h.state.get(contract::USED_PROPERTY),
        Some(&tokens.to_string())
    );
    // Local limits are not kept: a second request within the minute is Envoy's to refuse.
    let h2 = send(
        &mut global_flow(),
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h2.sent.is_none());
}

#[test]
fn global_limits_charge_the_used_tokens_when_the_response_ends() {
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let mut f = global_flow();
    let mut h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"qwen2-0.5b","usage":{"total_tokens":42}}"#],
    );
    assert_eq!(
        h.state.get(contract::USED_PROPERTY).map(String::as_str),
        Some("42")
    );
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")), 42);
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        42
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

#[test]
fn failover_attempts_after_the_first_count_against_their_backends_limits() {
    let config = r#"
[backends.a]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.b]
kind = "openai"
url = "http://127.0.0.1:8001/v1"
rate_limit = { requests = 1 }
[[models]]
name = "m"
apis = ["chat"]
targets = [{ backend = "a" }, { backend = "b" }]
"#;
    let plan = Rc::new(compile("t.toml", config, &|_| None).unwrap());
    let limit = plan.backends[1].rate_limit.unwrap();
    let attempt = |h: &mut FakeHost, backend: &str| {
        h.props.insert(
            crate::contract::BACKEND_METADATA_PATH.join("."),
            backend.into(),
        );
        let mut up = crate::upstream::UpstreamFlow::new(Rc::clone(&plan));
        up.on_request_headers(h, true);
    };
    let mut h = request("POST", "/v1/chat/completions", None, b"");
    h.req.push((CLIENT_MODEL_HEADER.into(), "m".into()));
    h.req
        .push((CLIENT_PATH_HEADER.into(), "/v1/chat/completions".into()));
    h.now = 1_000;
    // The first attempt was counted when the downstream flow chose it; a retry on `b` is counted
    // now. The attempts share the request's filter state, which is how the second knows it is
    // not the first.
    attempt(&mut h, "b");
    assert_eq!(limits::remaining(&h, "b", limit, 1_000).0, 1);
    attempt(&mut h, "b");
    assert_eq!(limits::remaining(&h, "b", limit, 1_000).0, 0);
    assert_eq!(
        h.state
            .get(crate::contract::FAILOVER_PROPERTY)
            .map(String::as_str),
        Some("2\n/v1/chat/completions\nm")
    );
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

// Issue 14, the request side: a backend reads the model the router checked; client text never
// grows state; values from backends are bounded.

/// Sends a request with the shared data and clock of an earlier one.
fn send_at(
    plan: &Rc<Plan>,
    shared: &HashMap<String, (Vec<u8>, u32)>,
    now: u64,
    mut h: FakeHost,
) -> FakeHost {
    h.shared = shared.clone();
    h.now = now;
    send(&mut HttpFlow::new(Rc::clone(plan)), h)
}

fn chat(key: &str, body: &[u8]) -> FakeHost {
    request("POST", "/v1/chat/completions", Some(key), body)
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

/// Answers a routed request's response headers with a 429 and `hints`.
fn answer_429(f: &mut HttpFlow, h: &mut FakeHost, hints: &[(&str, &str)]) {
    h.resp = vec![(":status".into(), "429".into())];
    h.resp
        .extend(hints.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    f.on_response_headers(h, true);
}

fn cool_keys(shared: &HashMap<String, (Vec<u8>, u32)>) -> Vec<&String> {
    shared
        .keys()
        .filter(|k| k.starts_with("airouter/cool/"))
        .collect()
}

/// Issue 14: a pass-through pattern's cool-down was keyed by the client's model name, so 1 MiB
/// names answered by 429 grew Envoy's memory for good.
#[test]
fn pass_through_cool_downs_are_kept_per_configured_target() {
    let plan = Rc::new(compile("t.toml", CONFIG, &|_| None).unwrap());
    let mut shared = HashMap::new();
    let mut now = 1_000_000;
    for i in 0..50 {
        let name = format!("gpt-4-{i}-{}", "x".repeat(200));
        let body = format!(r#"{{"model":"{name}"}}"#);
        let mut f = HttpFlow::new(Rc::clone(&plan));
        let mut h = chat("sk-alice", body.as_bytes());
        h.shared = shared;
        h.now = now;
        f.on_request_headers(&mut h, false);
        let len = h.req_body.len();
        f.on_request_body(&mut h, len, true);
        assert!(h.sent.is_none(), "request {i} was not routed");
        answer_429(&mut f, &mut h, &[("retry-after", "30")]);
        shared = h.shared;
        now += 31_000;
    }
    assert_eq!(cool_keys(&shared), ["airouter/cool/hosted/gpt-4*"]);
    // One name's 429 cools the pattern's target for every name.
    let h = send_at(
        &plan,
        &shared,
        now - 30_000,
        chat("sk-alice", br#"{"model":"gpt-4-other"}"#),
    );
    assert_eq!(error_of(&h).0, 429);
}

fn capped_plan(cap: &str) -> Rc<Plan> {
    let config = CONFIG.replace(
        "url = \"https://api.example.com/openai/v1\"\n",
        &format!("url = \"https://api.example.com/openai/v1\"\n{cap}"),
    );
    Rc::new(compile("t.toml", &config, &|_| None).unwrap())
}

/// Routes one gpt-4o request at `now`, answers it 429 with `hints`; the shared data after.
fn cool_with(plan: &Rc<Plan>, now: u64, hints: &[(&str, &str)]) -> HashMap<String, (Vec<u8>, u32)> {
    let mut f = HttpFlow::new(Rc::clone(plan));
    let mut h = chat("sk-alice", br#"{"model":"gpt-4o"}"#);
    h.now = now;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    f.on_request_body(&mut h, len, true);
    assert!(h.sent.is_none());
    answer_429(&mut f, &mut h, hints);
    h.shared
}

/// Issue 14: `Retry-After: inf` cooled a target down for 584 million years.
#[test]
fn retry_hints_are_read_strictly_and_capped() {
    let now = 1_577_836_800_000; // 2020-01-01
    let plan = capped_plan("max_cooldown_ms = 5000\n");
    let gpt = || chat("sk-alice", br#"{"model":"gpt-4o"}"#);
    for unreadable in ["inf", "1e300", "-5", "NaN", "soon"] {
        let shared = cool_with(&plan, now, &[("retry-after", unreadable)]);
        assert!(cool_keys(&shared).is_empty(), "{unreadable}");
    }
    for huge in [
        &[("retry-after", "99999999999999999999999")][..],
        &[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")],
        &[("x-ratelimit-reset-requests", "99999999h")],
        &[
            ("retry-after", "inf"),
            ("x-ratelimit-reset-tokens", "2562047h47m"),
        ],
    ] {
        let shared = cool_with(&plan, now, huge);
        let h = send_at(&plan, &shared, now + 4_999, gpt());
        let (status, headers, _) = h.sent.clone().unwrap();
        assert_eq!(status, 429, "{huge:?}");
        assert!(headers.contains(&("retry-after".into(), "1".into())));
        let h = send_at(&plan, &shared, now + 5_000, gpt());
        assert!(h.sent.is_none(), "{huge:?}: still cooling after the cap");
    }
    // The default cap is an hour; 0 turns cool-downs off.
    let plan = capped_plan("");
    let shared = cool_with(&plan, now, &[("retry-after", "10000000000")]);
    assert_eq!(
        error_of(&send_at(&plan, &shared, now + 3_599_999, gpt())).0,
        429
    );
    assert!(send_at(&plan, &shared, now + 3_600_000, gpt())
        .sent
        .is_none());
    let plan = capped_plan("max_cooldown_ms = 0\n");
    assert!(cool_keys(&cool_with(&plan, now, &[("retry-after", "30")])).is_empty());
    // A cool-down longer than the current cap (stored under a larger one, before a reload) is
    // ignored.
    let long = cool_with(&capped_plan(""), now, &[("retry-after", "600")]);
    let short = capped_plan("max_cooldown_ms = 5000\n");
    assert!(send_at(&short, &long, now + 1, gpt()).sent.is_none());
}

/// Issue 14: `total_tokens: 18446744073709551615` saturated the stats and would have wrapped the
/// token limiter.
#[test]
fn absurd_usage_is_capped_and_counted() {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = 1000",
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", br#"{"model":"chat-small"}"#);
    h.now = 1_000;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    f.on_request_body(&mut h, len, true);
    assert!(h.sent.is_none());
    let reply = br#"{"model":"qwen2-0.5b","usage":{"total_tokens":18446744073709551615}}"#;
    respond(&mut f, &mut h, "200", "application/json", &[reply]);
    assert_eq!(h.counter(metrics::USAGE_CAPPED), 1);
    assert_eq!(
        h.counter(&metrics::key(metrics::KEY_TOKENS, "alice")),
        limits::MAX_USAGE_TOKENS
    );
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "chat-small")),
        limits::MAX_USAGE_TOKENS
    );
    // Charged, not wrapped: the key is over its budget.
    let h = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&h).0, 429);
    assert!(metrics::all(&plan).contains(&metrics::USAGE_CAPPED.to_string()));
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

// ---- The response side: nothing of a backend reaches the client ----

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
fn names_inside_longer_strings_are_renamed_in_json_and_sse() {
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"qwen2-0.5b","choices":[{"message":{"content":"model qwen2-0.5b overloaded"}}]}"#],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"chat-small","choices":[{"message":{"content":"model chat-small overloaded"}}]}"#
    );
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[
            b"event: qwen2-0.5b\nid: qwen2-0.5b-1\n: qwen2-0.5b\ndata: {\"x\":\"by qwen2-0.5b\"}\n\n",
            b"data: qwen2-0.5b plain\n\ndata: [DONE]\n\n",
        ],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event: chat-small\nid: chat-small-1\n:\ndata: {\"x\":\"by chat-small\"}\n\ndata: chat-small plain\n\ndata: [DONE]\n\n"
    );
}

/// JSON Lines, NDJSON, JSON text sequences and vendor JSON types are renamed as JSON, every
/// line of them.
#[test]
fn json_lines_and_other_json_types_are_renamed() {
    for ctype in [
        "application/jsonl",
        "application/x-ndjson",
        "application/json-seq",
        "application/vnd.api+json",
        "text/x-json",
    ] {
        let (mut f, mut h) = routed();
        let out = respond(
            &mut f,
            &mut h,
            "200",
            ctype,
            &[b"{\"model\":\"qwen2-0.5b\"}\n{\"a\":\"by QWEN2-0.5B\"}\n"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"model\":\"chat-small\"}\n{\"a\":\"by chat-small\"}\n",
            "{ctype}"
        );
    }
}

#[test]
fn text_bodies_are_renamed_with_their_exact_length() {
    for ctype in [
        "text/plain; charset=utf-8",
        "text/vtt",
        "application/xml",
        "",
    ] {
        let (mut f, mut h) = routed();
        let out = respond(&mut f, &mut h, "200", ctype, &[b"qwen2-0.5b says ", b"hi"]);
        assert_eq!(out, b"chat-small says hi".to_vec(), "{ctype}");
        assert_eq!(
            h.header(Headers::Response, "content-length"),
            Some(out.len().to_string().into())
        );
    }
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

#[test]
fn bodies_that_cannot_be_renamed_are_counted() {
    let counted = |h: &FakeHost| h.counter(&metrics::model(metrics::MODEL_UNRENAMED, "chat-small"));
    // Compressed (the request asked for none) and unknown types pass on, counted.
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-encoding".into(), "gzip".into()),
    ];
    f.on_response_headers(&mut h, false);
    assert_eq!(counted(&h), 1);
    assert_eq!(
        h.header(Headers::Response, "content-encoding").as_deref(),
        Some("gzip")
    );
    let (mut f, mut h) = routed();
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/octet-stream",
        &[b"qwen2-0.5b"],
    );
    assert_eq!(out, b"qwen2-0.5b".to_vec());
    assert_eq!(counted(&h), 1);
    // Audio is not a leak: passed on, not counted.
    let (mut f, mut h) = routed();
    respond(&mut f, &mut h, "200", "audio/wav", &[b"RIFF"]);
    assert_eq!(counted(&h), 0);
    // A compressed error is not passed on at all: its status is.
    let (mut f, mut h) = routed();
    h.resp = vec![
        (":status".into(), "500".into()),
        ("content-type".into(), "application/json".into()),
        ("content-encoding".into(), "br".into()),
    ];
    assert_eq!(f.on_response_headers(&mut h, false), Action::Pause);
    h.resp_body = b"\x1b\x00qwen2-0.5b".to_vec();
    let n = h.resp_body.len();
    f.on_response_body(&mut h, n, true);
    let v: serde_json::Value = serde_json::from_slice(&h.resp_body).unwrap();
    assert_eq!(v["error"]["message"], "The backend answered HTTP 500.");
    assert_eq!(h.header(Headers::Response, "content-encoding"), None);
    assert_eq!(
        h.header(Headers::Response, ":status").as_deref(),
        Some("500")
    );
}

#[test]
fn an_overlong_stream_event_ends_the_stream_and_is_counted() {
    let (mut f, mut h) = routed();
    let big = vec![b'x'; sse::MAX_EVENT_BYTES + 1];
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {}\n\ndata: ", &big, b"\n\ndata: [DONE]\n\n"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("data: {}\n\ndata: {\"error\""),
        "{}",
        &text[..100]
    );
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
    assert_eq!(text.matches("[DONE]").count(), 1);
    assert_eq!(
        h.counter(&metrics::model(
            metrics::MODEL_EVENTS_TOO_LARGE,
            "chat-small"
        )),
        1
    );
}

const RESPONSES_CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[[models]]
name = "assistant"
apis = ["responses", "chat"]
target = { backend = "local", model = "acme-llama-3" }
[[keys]]
name = "small"
key = "sk-small"
tokens_per_minute = 100
"#;

/// A streamed Responses request reports its usage in `response.completed`: the key is charged
/// for it, and its next request is refused.
#[test]
fn a_streamed_responses_request_is_charged_its_usage() {
    let plan = Rc::new(compile("t.toml", RESPONSES_CONFIG, &|_| None).unwrap());
    let body = br#"{"model":"assistant","input":"hi","stream":true}"#;
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = request("POST", "/v1/responses", Some("sk-small"), body);
    h.now = 1_000_000;
    let mut h = send(&mut f, h);
    assert!(h.sent.is_none());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let stream = std::fs::read(dir.join("responses_stream.sse")).unwrap();
    let chunks: Vec<&[u8]> = stream.chunks(100).collect();
    let out = respond(&mut f, &mut h, "200", "text/event-stream", &chunks);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\"model\":\"assistant\"") && !text.contains("acme"),
        "{text}"
    );
    // A Responses stream has no [DONE], and none is added.
    assert!(!text.contains("[DONE]"));
    assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "small")), 400);
    assert_eq!(
        h.counter(&metrics::model(metrics::MODEL_TOKENS, "assistant")),
        400
    );
    let mut next = request("POST", "/v1/responses", Some("sk-small"), body);
    next.shared = h.shared.clone();
    next.now = 1_000_500;
    let (status, e) = error_of(&send(&mut HttpFlow::new(Rc::clone(&plan)), next));
    assert_eq!(status, 429, "{e}");
}

/// Non-streamed bodies of every API report usage where their API puts it.
#[test]
fn usage_is_counted_for_every_body_kind() {
    for (path, body) in [
        ("/v1/responses", &br#"{"id":"r","model":"acme-llama-3","usage":{"input_tokens":30,"output_tokens":12,"total_tokens":42}}"#[..]),
        ("/v1/chat/completions", br#"{"model":"acme-llama-3","choices":[],"usage":{"total_tokens":42}}"#),
    ] {
        let plan = Rc::new(compile("t.toml", RESPONSES_CONFIG, &|_| None).unwrap());
        let mut f = HttpFlow::new(Rc::clone(&plan));
        let req = br#"{"model":"assistant","input":"hi","messages":[]}"#;
        let mut h = send(&mut f, request("POST", path, Some("sk-small"), req));
        respond(&mut f, &mut h, "200", "application/json", &[body]);
        assert_eq!(h.counter(&metrics::key(metrics::KEY_TOKENS, "small")), 42, "{path}");
    }
}

#[test]
fn failover_attempts_send_no_internal_headers_and_each_is_rewritten() {
    let config = r#"
[backends.a]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
[backends.b]
kind = "openai"
url = "http://127.0.0.1:8001/openai/v1"
[[models]]
name = "m"
apis = ["chat"]
targets = [{ backend = "a", model = "first" }, { backend = "b", model = "second" }]
"#;
    let plan = Rc::new(compile("t.toml", config, &|_| None).unwrap());
    let mut h = request(
        "POST",
        "/v1/chat/completions?x=1",
        None,
        br#"{"model":"m"}"#,
    );
    h.req.push((CLIENT_MODEL_HEADER.into(), "m".into()));
    h.req
        .push((CLIENT_PATH_HEADER.into(), "/v1/chat/completions?x=1".into()));
    for (backend, path, model) in [
        ("a", "/v1/chat/completions?x=1", "first"),
        ("b", "/openai/v1/chat/completions?x=1", "second"),
    ] {
        h.props.insert(
            crate::contract::BACKEND_METADATA_PATH.join("."),
            backend.into(),
        );
        let mut up = crate::upstream::UpstreamFlow::new(Rc::clone(&plan));
        assert_eq!(up.on_request_headers(&mut h, false), Action::Pause);
        let len = h.req_body.len();
        assert_eq!(up.on_request_body(&mut h, len, true), Action::Continue);
        assert_eq!(header_of(&h, ":path").as_deref(), Some(path));
        let body: serde_json::Value = serde_json::from_slice(&h.req_body).unwrap();
        assert_eq!(body["model"], model);
        let internal: Vec<&String> = h
            .req
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("x-airouter-"))
            .collect();
        assert!(internal.is_empty(), "{backend} would read {internal:?}");
    }
}

/// A budgeted key's flow, routed with `body`; its host holds the stream's state.
fn budgeted(tpm: u32, body: &[u8]) -> (Rc<Plan>, HttpFlow, FakeHost) {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        &format!("name = \"alice\"\nkey = \"sk-alice\"\ntokens_per_minute = {tpm}"),
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = chat("sk-alice", body);
    h.now = 1_000;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    f.on_request_body(&mut h, len, true);
    (plan, f, h)
}

/// A budgeted key never streams for free: a stream that declines usage is still asked for it
/// (and the router's chunk taken out), and a success that reports none, or that the client
/// leaves before its end, is charged the request's admission estimate.
#[test]
fn a_budgeted_key_is_charged_whatever_the_stream_reports() {
    let declining = br#"{"model":"chat-small","stream":true,"stream_options":{"include_usage":false},"max_tokens":50}"#;
    let (_, _, h) = budgeted(100, declining);
    let sent: serde_json::Value = serde_json::from_slice(&h.req_body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let (_, _, h) = budgeted(100, br#"{"model":"chat-small","stream":"true"}"#);
    assert_eq!(error_of(&h).0, 400);

    // The backend ends the stream without usage: charged the estimate (prompt + max_tokens,
    // over the budget of 100).
    let body = br#"{"model":"chat-small","stream":true,"max_tokens":200}"#;
    let (plan, mut f, mut h) = budgeted(100, body);
    respond(
        &mut f,
        &mut h,
        "200",
        "text/event-stream",
        &[b"data: {\"choices\":[]}\n\n", b"data: [DONE]\n\n"],
    );
    f.on_done(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 1, "charged once");
    let next = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&next).0, 429);

    // The client leaves mid-stream: the access-log callback charges it.
    let (plan, mut f, mut h) = budgeted(100, body);
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    h.resp_body = b"data: {\"choices\":[]}\n\n".to_vec();
    let size = h.resp_body.len();
    f.on_response_body(&mut h, size, false);
    f.on_done(&mut h);
    let next = send_at(
        &plan,
        &h.shared,
        2_000,
        chat("sk-alice", br#"{"model":"chat-small"}"#),
    );
    assert_eq!(error_of(&next).0, 429);

    // A failed request is not charged an estimate; reported usage is charged as reported.
    let (_, mut f, mut h) = budgeted(100, body);
    respond(
        &mut f,
        &mut h,
        "500",
        "application/json",
        &[br#"{"error":"x"}"#],
    );
    f.on_done(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
    let (_, mut f, mut h) = budgeted(1000, body);
    let reply = br#"{"model":"qwen2-0.5b","usage":{"total_tokens":1e30}}"#;
    respond(&mut f, &mut h, "200", "application/json", &[reply]);
    f.on_done(&mut h);
    assert_eq!(h.counter(metrics::USAGE_ESTIMATED), 0);
    assert_eq!(
        h.counter(metrics::USAGE_CAPPED),
        1,
        "a float count is bounded, not ignored"
    );
}
