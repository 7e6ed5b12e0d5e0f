//! Models discovered from a backend, as clients and operators see them: `/v1/models` and
//! `/v1/models/{id}` list what the pattern serves under the caller's allow-list, with the
//! backend's `created` and `owned_by`; `/router/health` shows each fetch's outcome, no URL or
//! key; the models go after the grace period. The root context's side runs on the same test
//! host, so the shared data the timer writes is what the requests read.

use std::collections::HashMap;
use std::rc::Rc;

use super::host::*;
use crate::config::{compile, Plan};
use crate::discovery::Discoverer;
use crate::host::{CallOut, CallResponse, Host, RootHost, SharedWrite};

impl RootHost for FakeHost {
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        Host::shared_get(self, key)
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        Host::shared_set(self, key, value, cas)
    }
    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        Host::http_call(self, call)
    }
    fn log_warn(&self, message: &str) {
        Host::log_warn(self, message);
    }
}

const T0: u64 = 1_700_000_000_000;

fn plan() -> Rc<Plan> {
    let config = format!(
        "{CONFIG}
[[keys]]
name = \"carol\"
key = \"sk-carol\"
models = [\"chat-small\", \"gpt-4o-mini\"]
[[admin_keys]]
name = \"ops\"
key = \"sk-ops\"
[discovery]
interval_ms = 10000
grace_ms = 30000
"
    );
    Rc::new(compile("t.toml", &config, &|_| None).unwrap())
}

/// Runs one timer tick at `now` on `shared`, answering the fetch of `hosted` with `answer`;
/// returns the shared data after it.
fn fetch(
    plan: &Plan,
    shared: &HashMap<String, (Vec<u8>, u32)>,
    now: u64,
    answer: &CallResponse,
) -> HashMap<String, (Vec<u8>, u32)> {
    let mut root = FakeHost {
        shared: shared.clone(),
        now,
        ..FakeHost::default()
    };
    let mut discoverer = Discoverer::default();
    discoverer.on_tick(&mut root, plan);
    assert_eq!(root.calls.len(), 1, "one backend to ask");
    let call = &root.calls[0];
    assert_eq!(call.cluster, "airouter_backend_hosted");
    let header = |n: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":path"), Some("/openai/v1/models"));
    assert_eq!(header("authorization"), Some("Bearer sk-backend"));
    assert!(discoverer.on_response(&mut root, plan, 1, answer));
    root.shared
}

fn answer(status: u16, body: &str) -> CallResponse {
    CallResponse {
        status,
        headers: vec![(":status".into(), status.to_string())],
        body: body.as_bytes().to_vec(),
        body_len: body.len(),
    }
}

const LIST: &str = r#"{"object":"list","data":[
    {"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"openai"},
    {"id":"gpt-4o","object":"model","created":1715367049},
    {"id":"gpt-3.5-turbo","object":"model","created":1677610602,"owned_by":"openai"},
    {"id":"chat-small","object":"model","created":1,"owned_by":"someone"}]}"#;

fn get(
    plan: &Rc<Plan>,
    shared: &HashMap<String, (Vec<u8>, u32)>,
    now: u64,
    path: &str,
    key: &str,
) -> (u16, serde_json::Value, String) {
    let h = send_at(plan, shared, now, request("GET", path, Some(key), b""));
    let (status, _, body) = h.sent.expect("a local reply");
    let text = String::from_utf8(body).unwrap();
    (status, serde_json::from_str(&text).unwrap(), text)
}

fn listed(v: &serde_json::Value) -> Vec<(String, u64, String)> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["created"].as_u64().unwrap(),
                m["owned_by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    listed(v).into_iter().map(|(id, _, _)| id).collect()
}

#[test]
fn the_models_list_adds_what_the_pattern_serves_under_the_allow_list() {
    let plan = plan();
    let before = get(&plan, &HashMap::new(), T0, "/v1/models", "sk-alice").1;
    assert_eq!(
        ids(&before),
        ["chat-small", "whisper"],
        "nothing fetched yet"
    );
    let shared = fetch(&plan, &HashMap::new(), T0, &answer(200, LIST));
    let (_, v, _) = get(&plan, &shared, T0 + 1, "/v1/models", "sk-alice");
    // Configured first, then the discovered ones sorted; `gpt-3.5-turbo` and `chat-small` are
    // not names the pattern serves.
    assert_eq!(
        listed(&v),
        [
            ("chat-small".into(), 0, "airouter".into()),
            ("whisper".into(), 0, "airouter".into()),
            ("gpt-4o".into(), 1_715_367_049, "airouter".into()),
            ("gpt-4o-mini".into(), 1_721_172_741, "openai".into()),
        ]
    );
    let (_, v, _) = get(&plan, &shared, T0 + 1, "/v1/models", "sk-bob");
    assert_eq!(ids(&v), ["gpt-4o", "gpt-4o-mini"]);
    let (_, v, _) = get(&plan, &shared, T0 + 1, "/v1/models", "sk-carol");
    assert_eq!(ids(&v), ["chat-small", "gpt-4o-mini"]);
}

#[test]
fn one_discovered_model_has_its_backends_created_and_owner() {
    let plan = plan();
    let shared = fetch(&plan, &HashMap::new(), T0, &answer(200, LIST));
    let (status, v, _) = get(&plan, &shared, T0 + 1, "/v1/models/gpt-4o-mini", "sk-bob");
    assert_eq!(status, 200);
    assert_eq!(
        (
            v["id"].as_str(),
            v["created"].as_u64(),
            v["owned_by"].as_str()
        ),
        (Some("gpt-4o-mini"), Some(1_721_172_741), Some("openai"))
    );
    // A name the pattern serves that the backend did not list answers as before.
    let (status, v, _) = get(&plan, &shared, T0 + 1, "/v1/models/gpt-4-turbo", "sk-bob");
    assert_eq!(status, 200);
    assert_eq!(
        (v["created"].as_u64(), v["owned_by"].as_str()),
        (Some(0), Some("airouter"))
    );
    let (status, _, _) = get(&plan, &shared, T0 + 1, "/v1/models/gpt-4o", "sk-carol");
    assert_eq!(status, 404, "not on carol's allow-list");
}

#[test]
fn health_shows_each_fetch_and_the_models_go_after_the_grace_period() {
    let plan = plan();
    let shared = fetch(&plan, &HashMap::new(), T0, &answer(200, LIST));
    let (status, v, text) = get(&plan, &shared, T0 + 5, "/router/health", "sk-ops");
    assert_eq!(status, 200);
    assert_eq!(v["backends"]["hosted"]["status"], "healthy");
    let d = &v["discovery"]["hosted"];
    assert_eq!(
        (
            d["state"].as_str(),
            d["last_success_ms"].as_u64(),
            d["models"].as_u64()
        ),
        (Some("ok"), Some(T0), Some(4))
    );
    assert!(d["last_error"].is_null());
    assert!(
        !text.contains("example.com") && !text.contains("sk-backend"),
        "{text}"
    );

    // The backend answers 503: degraded, the models still listed.
    let shared = fetch(
        &plan,
        &shared,
        T0 + 11_000,
        &answer(503, "upstream at 10.1.2.3 down"),
    );
    let (_, v, text) = get(&plan, &shared, T0 + 11_005, "/router/health", "sk-ops");
    assert_eq!(v["backends"]["hosted"]["status"], "degraded");
    let reason = v["backends"]["hosted"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("model discovery failed (http_503)"),
        "{reason}"
    );
    let d = &v["discovery"]["hosted"];
    assert_eq!(
        (
            d["state"].as_str(),
            d["last_error"].as_str(),
            d["last_failure_ms"].as_u64()
        ),
        (Some("failing"), Some("http_503"), Some(T0 + 11_000))
    );
    assert!(!text.contains("10.1.2.3"));
    let (_, v, _) = get(&plan, &shared, T0 + 11_005, "/v1/models", "sk-bob");
    assert_eq!(ids(&v), ["gpt-4o", "gpt-4o-mini"]);

    // Unreachable: unhealthy; past the grace period the models are gone.
    let shared = fetch(&plan, &shared, T0 + 22_000, &CallResponse::default());
    let (_, v, _) = get(&plan, &shared, T0 + 22_005, "/router/health", "sk-ops");
    assert_eq!(v["backends"]["hosted"]["status"], "unhealthy");
    assert_eq!(v["discovery"]["hosted"]["last_error"], "unreachable");
    let (_, v, _) = get(&plan, &shared, T0 + 30_000, "/v1/models", "sk-bob");
    assert_eq!(ids(&v), ["gpt-4o", "gpt-4o-mini"]);
    let (_, v, _) = get(&plan, &shared, T0 + 30_001, "/v1/models", "sk-bob");
    assert!(ids(&v).is_empty());
    let (_, v, _) = get(&plan, &shared, T0 + 30_001, "/router/health", "sk-ops");
    assert_eq!(v["discovery"]["hosted"]["models"], 0);

    // Back: listed again, healthy.
    let shared = fetch(&plan, &shared, T0 + 33_000, &answer(200, LIST));
    let (_, v, _) = get(&plan, &shared, T0 + 33_001, "/v1/models", "sk-bob");
    assert_eq!(ids(&v), ["gpt-4o", "gpt-4o-mini"]);
    let (_, v, _) = get(&plan, &shared, T0 + 33_001, "/router/health", "sk-ops");
    assert_eq!(v["backends"]["hosted"]["status"], "healthy");
    assert_eq!(v["discovery"]["hosted"]["state"], "ok");
}

#[test]
fn without_discovery_health_has_no_discovery_section() {
    let config = format!("{CONFIG}\n[[admin_keys]]\nname = \"ops\"\nkey = \"sk-ops\"\n");
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let (_, v, _) = get(&plan, &HashMap::new(), T0, "/router/health", "sk-ops");
    assert!(v.get("discovery").is_none(), "{v}");
}
