//! The test host every flow test runs on: an in-memory [`Host`] holding what Envoy would (headers,
//! bodies, filter state, shared data, counters, the clock), the test configuration, and helpers
//! that drive a request and its response through [`HttpFlow`]'s callbacks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use crate::config::{compile, Plan};
use crate::contract::ROUTE_PROPERTY;
use crate::flow::HttpFlow;
use crate::host::{Action, Headers, Host};
use crate::telemetry::histograms::Series;

/// A local reply: status, headers, body.
pub(super) type Sent = (u16, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
pub(super) struct FakeHost {
    pub(super) req: Vec<(String, String)>,
    pub(super) resp: Vec<(String, String)>,
    pub(super) req_body: Vec<u8>,
    pub(super) resp_body: Vec<u8>,
    pub(super) sent: Option<Sent>,
    pub(super) props: HashMap<String, String>,
    pub(super) shared: HashMap<String, (Vec<u8>, u32)>,
    /// Writes another worker makes to shared data, one just before each of the flow's own
    /// (first one first): key and value.
    pub(super) races: std::collections::VecDeque<(String, Vec<u8>)>,
    pub(super) now: u64,
    pub(super) counters: HashMap<String, u64>,
    /// Histogram values recorded, in order: name and value.
    pub(super) histograms: Vec<(String, u64)>,
    /// Filter state set by the flow.
    pub(super) state: HashMap<String, String>,
    /// Times the flow asked Envoy to pick the route again.
    pub(super) route_cache_cleared: u32,
    /// Call-outs sent: cluster, headers, body, timeout (ms); a call's token is its index + 1.
    pub(super) calls: Vec<Call>,
    /// Refuse every call-out (as Envoy does for an unknown cluster).
    pub(super) refuse_calls: bool,
    /// Times the flow let a held request go on.
    pub(super) resumed: u32,
}

/// A call-out the flow sent, as the fake host recorded it.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) cluster: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) timeout_ms: u32,
}

impl Host for FakeHost {
    fn header(&self, map: Headers, name: &str) -> Option<Cow<'_, str>> {
        let m = if map == Headers::Request {
            &self.req
        } else {
            &self.resp
        };
        let found = m
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_str()));
        // Envoy's log phase shows a local reply's status in the response headers.
        let replied = || {
            let sent = self.sent.as_ref().filter(|_| map == Headers::Response)?;
            (name == ":status").then(|| Cow::Owned(sent.0.to_string()))
        };
        found.or_else(replied)
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
    fn record(&mut self, series: &Series, value: u64) {
        self.histograms.push((series.stat_name(), value));
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
    fn http_call(&mut self, call: &crate::host::CallOut<'_>) -> Option<u32> {
        if self.refuse_calls {
            return None;
        }
        self.calls.push(Call {
            cluster: call.cluster.to_string(),
            headers: call
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: call.body.to_vec(),
            timeout_ms: call.timeout_ms,
        });
        u32::try_from(self.calls.len()).ok()
    }
    fn resume_request(&mut self) -> bool {
        self.resumed += 1;
        true
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> crate::host::SharedWrite {
        if let Some((k, v)) = self.races.pop_front() {
            let cas = self.shared.get(&k).map_or(0, |(_, c)| *c);
            self.shared.insert(k, (v, cas + 1));
        }
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
    pub(super) fn route(&self) -> Option<&str> {
        (self.route_cache_cleared > 0)
            .then(|| self.state.get(ROUTE_PROPERTY).map(String::as_str))
            .flatten()
    }
}

pub(super) const CONFIG: &str = r#"
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

pub(super) fn flow() -> HttpFlow {
    HttpFlow::new(Rc::new(compile("t.toml", CONFIG, &|_| None).unwrap()))
}

pub(super) fn request(method: &str, path: &str, key: Option<&str>, body: &[u8]) -> FakeHost {
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
pub(super) fn send(f: &mut HttpFlow, mut h: FakeHost) -> FakeHost {
    let eos = h.req_body.is_empty();
    if f.on_request_headers(&mut h, eos) == Action::Pause && h.sent.is_none() {
        let len = h.req_body.len();
        f.on_request_body(&mut h, len, true);
    }
    h
}

pub(super) fn error_of(h: &FakeHost) -> (u16, serde_json::Value) {
    let (status, _, body) = h.sent.as_ref().expect("a local reply");
    (*status, serde_json::from_slice(body).unwrap())
}

pub(super) fn routed() -> (HttpFlow, FakeHost) {
    let mut f = flow();
    let body = br#"{"model":"chat-small","messages":[]}"#;
    let h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h.sent.is_none());
    (f, h)
}

/// A streaming chat request routed to its backend, waiting for the response.
pub(super) fn routed_streaming() -> (HttpFlow, FakeHost) {
    let mut f = flow();
    let body = br#"{"model":"chat-small","messages":[],"stream":true}"#;
    let h = send(
        &mut f,
        request("POST", "/v1/chat/completions", Some("sk-alice"), body),
    );
    assert!(h.sent.is_none());
    (f, h)
}

pub(super) fn respond(
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

pub(super) fn header_of(h: &FakeHost, name: &str) -> Option<String> {
    h.header(Headers::Request, name).map(Cow::into_owned)
}

pub(super) fn header_of_resp(h: &FakeHost, name: &str) -> Option<String> {
    h.header(Headers::Response, name).map(Cow::into_owned)
}

/// Sends a request with the shared data and clock of an earlier one.
pub(super) fn send_at(
    plan: &Rc<Plan>,
    shared: &HashMap<String, (Vec<u8>, u32)>,
    now: u64,
    mut h: FakeHost,
) -> FakeHost {
    h.shared = shared.clone();
    h.now = now;
    send(&mut HttpFlow::new(Rc::clone(plan)), h)
}

pub(super) fn chat(key: &str, body: &[u8]) -> FakeHost {
    request("POST", "/v1/chat/completions", Some(key), body)
}

pub(super) fn global_flow() -> HttpFlow {
    let config = CONFIG.replace(
        "name = \"alice\"\nkey = \"sk-alice\"",
        "name = \"alice\"\nkey = \"sk-alice\"\nrequests_per_minute = 1\ntokens_per_minute = 1000",
    )
        + "[global_limits]\nredis = \"redis://127.0.0.1:6379\"\ndefault_max_tokens = 64\n";
    HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()))
}
