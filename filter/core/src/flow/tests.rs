//! The request flow driven through an in-memory host: what Envoy would see the filter do.

use std::collections::HashMap;

use super::*;
use crate::config::compile;

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
    assert_eq!(get(BACKEND_HEADER).as_deref(), Some("local"));
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
        // Headers that end the stream have no body to wait for.
        let (mut f, mut h) = routed();
        h.resp = vec![
            (":status".into(), status.into()),
            ("content-type".into(), ctype.into()),
        ];
        assert_eq!(f.on_response_headers(&mut h, true), Action::Continue);
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
    assert_eq!(v["error"]["message"], "chat-small exploded");
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
    assert_eq!(get(BACKEND_HEADER).as_deref(), Some("triton"));
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
    h.req.push((global_limits::KEY_HEADER.into(), "bob".into()));
    h.now = 5_000;
    let mut f = global_flow();
    let h = send(&mut f, h);
    assert!(h.sent.is_none());
    assert_eq!(
        header_of(&h, global_limits::KEY_HEADER).as_deref(),
        Some("alice")
    );
    let reserve = header_of(&h, global_limits::RESERVE_HEADER).unwrap();
    let (tokens, at) = global_limits::parse_reserve(&reserve).unwrap();
    // The reservation: a quarter of the body's bytes for the prompt, plus max_tokens.
    assert_eq!((tokens, at), ((body.len() as u64).div_ceil(4) + 10, 5_000));
    assert_eq!(
        h.state.get(global_limits::USED_PROPERTY),
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
        h.state
            .get(global_limits::USED_PROPERTY)
            .map(String::as_str),
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
            crate::upstream::BACKEND_METADATA_PATH.join("."),
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
            .get(crate::upstream::FAILOVER_PROPERTY)
            .map(String::as_str),
        Some("2\n/v1/chat/completions\nm")
    );
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
            crate::upstream::BACKEND_METADATA_PATH.join("."),
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
