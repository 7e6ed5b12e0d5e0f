//! Model discovery on a fake clock and in-memory shared data: the configuration, the bounded
//! parser, one fetch per Envoy however many workers tick, the request each backend kind gets,
//! and the grace period.

use std::collections::HashMap;

use super::state::{self, State};
use super::*;
use crate::config::compile;
use crate::host::{CallOut, SharedWrite};

/// A call-out as sent: cluster, headers, deadline (ms).
type Sent = (String, Vec<(String, String)>, u32);

/// The root context's host: shared data with CAS tokens, a clock, and the call-outs sent.
#[derive(Default)]
struct FakeRoot {
    now: u64,
    shared: HashMap<String, (Vec<u8>, u32)>,
    /// Call-outs sent; a call's token is its index + 1.
    calls: Vec<Sent>,
    refuse_calls: bool,
    warnings: std::cell::RefCell<Vec<String>>,
}

impl RootHost for FakeRoot {
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.get(key).cloned()
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        let current = self.shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return SharedWrite::Conflict;
        }
        self.shared
            .insert(key.to_string(), (value.to_vec(), current + 1));
        SharedWrite::Written
    }
    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        if self.refuse_calls {
            return None;
        }
        let headers = call
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.calls
            .push((call.cluster.to_string(), headers, call.timeout_ms));
        u32::try_from(self.calls.len()).ok()
    }
    fn log_warn(&self, message: &str) {
        self.warnings.borrow_mut().push(message.to_string());
    }
}

impl FakeRoot {
    fn at(now: u64) -> FakeRoot {
        FakeRoot {
            now,
            ..FakeRoot::default()
        }
    }

    fn state(&self, backend: &str) -> State {
        self.shared
            .get(&state::state_key(backend))
            .map(|(v, _)| state::decode_state(v))
            .unwrap_or_default()
    }

    fn header(&self, call: usize, name: &str) -> Option<&str> {
        self.calls[call]
            .1
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn listed(&self, plan: &Plan) -> Listed {
        Listed::load(
            &|k| self.shared.get(k).map(|(v, _)| v.clone()),
            plan,
            self.now,
        )
    }
}

const CONFIG: &str = r#"
[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "HOSTED_KEY"

[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/openai/v1"

[backends.fixed]
kind = "openai"
url = "http://127.0.0.1:8001/v1"

[backends.users]
kind = "openai"
url = "http://127.0.0.1:8002/v1"
pass_client_key = true

[[models]]
name = "hosted-*"
apis = ["chat"]
target = { backend = "hosted" }

[[models]]
name = "local-*"
apis = ["chat", "embeddings"]
target = { backend = "local" }

[[models]]
name = "fixed-*"
apis = ["chat"]
target = { backend = "fixed", model = "one-model" }

[[models]]
name = "users-*"
apis = ["chat"]
target = { backend = "users" }

[[models]]
name = "chat"
apis = ["chat"]
target = { backend = "fixed", model = "one-model" }

[discovery]
interval_ms = 10000
timeout_ms = 2000
grace_ms = 30000
max_models = 3
"#;

fn env(name: &str) -> Option<String> {
    (name == "HOSTED_KEY").then(|| "sk-hosted-secret".to_string())
}

fn plan() -> Plan {
    compile("t.toml", CONFIG, &env).unwrap()
}

fn backend_index(plan: &Plan, name: &str) -> usize {
    plan.backends.iter().position(|b| b.name == name).unwrap()
}

fn ok(body: &str) -> CallResponse {
    CallResponse {
        status: 200,
        headers: vec![(":status".into(), "200".into())],
        body: body.as_bytes().to_vec(),
        body_len: body.len(),
    }
}

fn ids(models: &[DiscoveredModel]) -> Vec<&str> {
    models.iter().map(|m| m.id.as_str()).collect()
}

// ---------------------------------------------------------------- configuration

#[test]
fn discovery_asks_only_backends_a_pattern_passes_names_through_to() {
    let plan = plan();
    let d = plan.discovery.as_ref().unwrap();
    let names: Vec<&str> = d
        .backends
        .iter()
        .map(|&i| plan.backends[i].name.as_str())
        .collect();
    // `fixed` gets a configured name only; `users` takes the client's key, which the router's
    // own call-out never sends.
    assert_eq!(names, ["hosted", "local"]);
    assert_eq!(
        (d.interval_ms, d.timeout_ms, d.grace_ms, d.max_models),
        (10_000, 2_000, 30_000, 3)
    );
    assert_eq!(tick_ms(&plan), Some(1000));
}

#[test]
fn without_the_section_nothing_is_asked() {
    let text = CONFIG.split("[discovery]").next().unwrap();
    let plan = compile("t.toml", text, &env).unwrap();
    assert!(plan.discovery.is_none());
    assert_eq!(tick_ms(&plan), None);
    let mut host = FakeRoot::at(1_000_000);
    Discoverer::default().on_tick(&mut host, &plan);
    assert!(host.calls.is_empty() && host.shared.is_empty());
}

#[test]
fn the_section_has_defaults_and_bounds() {
    let text = CONFIG.split("[discovery]").next().unwrap();
    let plan = compile("t.toml", &format!("{text}[discovery]\n"), &env).unwrap();
    let d = plan.discovery.unwrap();
    assert_eq!(
        (d.interval_ms, d.timeout_ms, d.grace_ms, d.max_models),
        (60_000, 5_000, 600_000, 1000)
    );
    for (bad, key) in [
        ("interval_ms = 999", "discovery.interval_ms"),
        (
            "interval_ms = 2000\ntimeout_ms = 2000",
            "discovery.timeout_ms",
        ),
        ("timeout_ms = 50", "discovery.timeout_ms"),
        (
            "interval_ms = 10000\ngrace_ms = 19999",
            "discovery.grace_ms",
        ),
        ("max_models = 0", "discovery.max_models"),
        ("max_models = 10001", "discovery.max_models"),
    ] {
        let errs = compile("t.toml", &format!("{text}[discovery]\n{bad}\n"), &env).unwrap_err();
        assert_eq!(errs.0[0].key, key, "{bad}");
    }
    // A default in conflict points at the value written.
    let lines = text.lines().count();
    for (interval, key) in [
        (1000, "discovery.timeout_ms"),
        (400_000, "discovery.grace_ms"),
    ] {
        let written = format!("{text}[discovery]\ninterval_ms = {interval}\n");
        let errs = compile("t.toml", &written, &env).unwrap_err();
        let at: Vec<(&str, usize)> = errs.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(at, [(key, lines + 2)]);
    }
    assert!(compile("t.toml", &format!("{text}[discovery]\nevery = 1\n"), &env).is_err());
}

// ---------------------------------------------------------------- the answer, bounded

#[test]
fn openai_and_anthropic_lists_are_read() {
    let openai = r#"{"object":"list","data":[
        {"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},
        {"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"openai","extra":{"x":[1]}}]}"#;
    let models = parse::parse(openai.as_bytes(), 10).unwrap();
    assert_eq!(
        models[0],
        DiscoveredModel {
            id: "gpt-4o".into(),
            created: Some(1_715_367_049),
            owned_by: Some("system".into())
        }
    );
    assert_eq!(ids(&models), ["gpt-4o", "gpt-4o-mini"]);
    let anthropic = r#"{"data":[{"type":"model","id":"claude-x","display_name":"Claude X",
        "created_at":"2025-02-19T00:00:00Z"}],"has_more":false,"first_id":"claude-x","last_id":"claude-x"}"#;
    let models = parse::parse(anthropic.as_bytes(), 10).unwrap();
    assert_eq!(
        models,
        [DiscoveredModel {
            id: "claude-x".into(),
            created: Some(1_739_923_200),
            owned_by: None
        }]
    );
}

#[test]
fn entries_that_do_not_hold_are_skipped_and_values_bounded() {
    let long = "x".repeat(257);
    let owner = "o".repeat(parse::MAX_OWNED_BY_BYTES + 1);
    let body = format!(
        r#"{{"data":[
        {{"id":""}}, {{"id":7}}, {{"name":"no-id"}}, "text", null, {{"id":"{long}"}},
        {{"id":"bell\u0007"}}, {{"id":"a","created":-5,"owned_by":"{owner}"}},
        {{"id":"a","created":99}}, {{"id":"b","created":1.5,"owned_by":"ctl\u0001"}},
        {{"id":"c","created":253402300800,"owned_by":"  "}},
        {{"id":"d","created_at":"1969-12-31T23:59:59Z","owned_by":" acme "}},
        {{"id":"e","created_at":"yesterday"}}]}}"#
    );
    let models = parse::parse(body.as_bytes(), 10).unwrap();
    assert_eq!(
        ids(&models),
        ["a", "b", "c", "d", "e"],
        "each id once, first kept"
    );
    assert!(models.iter().all(|m| m.created.is_none()), "{models:?}");
    let owners: Vec<Option<&str>> = models.iter().map(|m| m.owned_by.as_deref()).collect();
    assert_eq!(owners, [None, None, None, Some("acme"), None]);
}

#[test]
fn at_most_max_models_are_kept_and_the_rest_is_only_skimmed() {
    let mut body = String::from(r#"{"data":["#);
    for i in 0..50 {
        body.push_str(&format!(r#"{{"id":"m{i:02}"}},"#));
    }
    body.push_str(r#"{"id":"last","deep":[[[[{"a":1}]]]]}]}"#);
    let models = parse::parse(body.as_bytes(), 3).unwrap();
    assert_eq!(ids(&models), ["m00", "m01", "m02"]);
    // What is skipped must still be JSON: a body broken after the cap is refused whole.
    let broken = r#"{"data":[{"id":"a"},{"id":"b"},{"id":]}"#;
    assert_eq!(parse::parse(broken.as_bytes(), 1), Err(Failure::BadBody));
}

#[test]
fn what_is_not_a_model_list_is_a_bad_body() {
    for body in [
        "",
        "not json",
        "[]",
        r#"{"object":"list"}"#,
        r#"{"data":{"id":"x"}}"#,
        r#"{"data":[]} trailing"#,
        "<html>502</html>",
    ] {
        assert_eq!(
            parse::parse(body.as_bytes(), 10),
            Err(Failure::BadBody),
            "{body}"
        );
    }
    assert_eq!(parse::parse(br#"{"data":[]}"#, 10), Ok(Vec::new()));
}

#[test]
fn a_response_lists_models_only_with_200_and_a_whole_body() {
    let body = r#"{"data":[{"id":"m"}]}"#;
    assert_eq!(ids(&parse::outcome(&ok(body), 10).unwrap()), ["m"]);
    let none = CallResponse::default();
    assert_eq!(parse::outcome(&none, 10), Err(Failure::Unreachable));
    let mut failed = ok(body);
    failed.status = 503;
    assert_eq!(parse::outcome(&failed, 10), Err(Failure::Status(503)));
    let mut cut = ok(body);
    cut.body_len = crate::host::CALL_RESPONSE_MAX_BYTES + 1;
    assert_eq!(parse::outcome(&cut, 10), Err(Failure::TooLarge));
    assert_eq!(Failure::Status(503).kind(), "http_503");
}

#[test]
fn envoys_own_failure_replies_mean_unreachable() {
    let envoy = |status: u16, body: &str| CallResponse {
        status,
        headers: vec![
            (":status".into(), status.to_string()),
            ("content-type".into(), "text/plain".into()),
        ],
        body: body.as_bytes().to_vec(),
        body_len: body.len(),
    };
    for (status, body) in [
        (503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused"),
        (503, "no healthy upstream"),
        (504, "upstream request timeout"),
    ] {
        assert_eq!(parse::outcome(&envoy(status, body), 10), Err(Failure::Unreachable), "{body}");
    }
    // The backend's own 503, or the same words as JSON, are the backend's answer.
    assert_eq!(
        parse::outcome(&envoy(503, "overloaded"), 10),
        Err(Failure::Status(503))
    );
    let mut json = envoy(503, "no healthy upstream");
    json.headers[1].1 = "application/json".into();
    assert_eq!(parse::outcome(&json, 10), Err(Failure::Status(503)));
    assert_eq!(
        parse::outcome(&envoy(502, "no healthy upstream"), 10),
        Err(Failure::Status(502))
    );
}

// ---------------------------------------------------------------- the fetch

#[test]
fn each_backend_is_asked_with_its_prefix_authority_and_own_key() {
    let plan = plan();
    let mut host = FakeRoot::at(1_000_000);
    Discoverer::default().on_tick(&mut host, &plan);
    assert_eq!(host.calls.len(), 2);
    let hosted = host
        .calls
        .iter()
        .position(|c| c.0 == "airouter_backend_hosted")
        .unwrap();
    assert_eq!(host.header(hosted, ":method"), Some("GET"));
    assert_eq!(host.header(hosted, ":path"), Some("/v1/models"));
    assert_eq!(host.header(hosted, ":authority"), Some("api.example.com"));
    assert_eq!(
        host.header(hosted, "authorization"),
        Some("Bearer sk-hosted-secret")
    );
    assert_eq!(host.calls[hosted].2, 2000, "the configured deadline");
    let local = 1 - hosted;
    assert_eq!(host.calls[local].0, "airouter_backend_local");
    assert_eq!(host.header(local, ":path"), Some("/openai/v1/models"));
    assert_eq!(host.header(local, ":authority"), Some("127.0.0.1:8000"));
    assert_eq!(
        host.header(local, "authorization"),
        None,
        "a keyless backend"
    );
}

#[test]
fn one_worker_fetches_however_many_tick() {
    let plan = plan();
    let mut host = FakeRoot::at(1_000_000);
    let mut workers = [
        Discoverer::default(),
        Discoverer::default(),
        Discoverer::default(),
    ];
    for w in &mut workers {
        w.on_tick(&mut host, &plan);
    }
    assert_eq!(host.calls.len(), 2, "one call per backend, not per worker");
    // The first worker sent both; another worker's answer callback does not know the tokens.
    let hosted = u32::try_from(
        host.calls
            .iter()
            .position(|c| c.0 == "airouter_backend_hosted")
            .unwrap()
            + 1,
    )
    .unwrap();
    let body = ok(r#"{"data":[{"id":"hosted-a"}]}"#);
    assert!(!workers[1].on_response(&mut host, &plan, hosted, &body));
    host.now += 300;
    assert!(workers[0].on_response(&mut host, &plan, hosted, &body));
    let local = 3 - hosted;
    assert!(workers[0].on_response(&mut host, &plan, local, &body));
    let s = host.state("hosted");
    assert_eq!(
        (s.last_success, s.models, s.lease_until),
        (Some(1_000_300), 1, 0)
    );
    assert!((9_000..=11_000).contains(&(s.next_at - 1_000_300)), "{s:?}");
    // Nobody fetches again before the next fetch is due.
    for now in [1_001_000, 1_000_300 + 8_999] {
        host.now = now;
        for w in &mut workers {
            w.on_tick(&mut host, &plan);
        }
    }
    assert_eq!(host.calls.len(), 2);
    host.now = s.next_at;
    for w in &mut workers {
        w.on_tick(&mut host, &plan);
    }
    let again: Vec<&str> = host.calls[2..].iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        again
            .iter()
            .filter(|c| **c == "airouter_backend_hosted")
            .count(),
        1,
        "{again:?}"
    );
}

#[test]
fn a_lease_whose_holder_never_answers_runs_out() {
    let plan = plan();
    let mut host = FakeRoot::at(1_000_000);
    let mut gone = Discoverer::default();
    gone.on_tick(&mut host, &plan);
    assert_eq!(host.calls.len(), 2);
    let mut other = Discoverer::default();
    // The lease holds for the deadline (2000 ms) and the slack.
    host.now += 2000 + state::LEASE_SLACK_MS - 1;
    other.on_tick(&mut host, &plan);
    assert_eq!(host.calls.len(), 2);
    host.now += 1;
    other.on_tick(&mut host, &plan);
    assert_eq!(host.calls.len(), 4);
}

#[test]
fn a_refused_call_is_a_failure_at_once() {
    let plan = plan();
    let mut host = FakeRoot::at(1_000_000);
    host.refuse_calls = true;
    Discoverer::default().on_tick(&mut host, &plan);
    let s = host.state("hosted");
    assert!(s.failing());
    assert_eq!(s.last_failure.map(|f| f.failure), Some(Failure::Refused));
    assert_eq!(s.lease_until, 0);
    assert!(s.next_at > host.now);
    assert!(host
        .warnings
        .borrow()
        .iter()
        .any(|w| w.contains("`hosted` failed: refused")));
}

#[test]
fn jitter_stays_within_a_tenth_and_moves() {
    let waits: Vec<u64> = (0..200)
        .map(|i| state::jittered(60_000, 1_700_000_000_000 + i * 7, "hosted"))
        .collect();
    assert!(waits.iter().all(|w| (54_000..=66_000).contains(w)));
    let distinct: std::collections::HashSet<_> = waits.iter().collect();
    assert!(distinct.len() > 100, "{}", distinct.len());
}

// ---------------------------------------------------------------- the grace period

/// Runs a fetch of every due backend at `now`, answered with `answer` for `hosted`.
fn fetch_hosted(host: &mut FakeRoot, plan: &Plan, now: u64, answer: &CallResponse) {
    host.now = now;
    let mut worker = Discoverer::default();
    let before = host.calls.len();
    worker.on_tick(host, plan);
    let token = host.calls[before..]
        .iter()
        .position(|c| c.0 == "airouter_backend_hosted")
        .map(|i| u32::try_from(before + i + 1).unwrap())
        .expect("a fetch of hosted was due");
    assert!(worker.on_response(host, plan, token, answer));
}

#[test]
fn models_outlive_failures_for_the_grace_period_then_return_with_a_success() {
    let plan = plan();
    let hosted = backend_index(&plan, "hosted");
    let mut host = FakeRoot::at(0);
    let t0 = 1_000_000;
    let list = ok(r#"{"data":[{"id":"hosted-a"},{"id":"hosted-b"}]}"#);
    fetch_hosted(&mut host, &plan, t0, &list);
    assert_eq!(
        ids(host.listed(&plan).models_of(hosted)),
        ["hosted-a", "hosted-b"]
    );
    let down = CallResponse::default();
    let mut failures = 0;
    while host.state("hosted").next_at <= t0 + 30_000 {
        let next = host.state("hosted").next_at;
        fetch_hosted(&mut host, &plan, next, &down);
        failures += 1;
    }
    assert!(failures >= 2);
    // Every failure is noted, the models stay listed up to the grace period after the success.
    let s = host.state("hosted");
    assert!(s.failing() && s.last_success == Some(t0));
    host.now = t0 + 30_000;
    assert_eq!(host.listed(&plan).models_of(hosted).len(), 2);
    host.now = t0 + 30_001;
    assert!(host.listed(&plan).models_of(hosted).is_empty());
    // The failure after the grace period drops what was kept.
    assert_eq!(host.state("hosted").models, 2);
    let next = host.state("hosted").next_at;
    fetch_hosted(&mut host, &plan, next, &down);
    assert_eq!(host.state("hosted").models, 0);
    let kept = &host.shared[&state::models_key("hosted")].0;
    assert_eq!(kept.as_slice(), b"[]");
    // Warned once, when the backend started failing.
    let warned = host
        .warnings
        .borrow()
        .iter()
        .filter(|w| w.contains("`hosted`"))
        .count();
    assert_eq!(warned, 1);
    // A success brings them back.
    let next = host.state("hosted").next_at;
    fetch_hosted(
        &mut host,
        &plan,
        next,
        &ok(r#"{"data":[{"id":"hosted-c"}]}"#),
    );
    assert_eq!(ids(host.listed(&plan).models_of(hosted)), ["hosted-c"]);
    assert!(!host.state("hosted").failing());
}

#[test]
fn the_models_a_pattern_serves_are_those_that_resolve_to_it() {
    let text = CONFIG.replace(
        "[discovery]",
        r#"[[models]]
name = "hosted-special*"
apis = ["chat"]
target = { backend = "fixed", model = "one-model" }

[[models]]
name = "hosted-exact"
apis = ["chat"]
target = { backend = "fixed", model = "one-model" }

[discovery]"#,
    );
    let plan = compile("t.toml", &text, &env).unwrap();
    let mut host = FakeRoot::at(0);
    let list = ok(
        r#"{"data":[{"id":"hosted-a"},{"id":"gpt-4o"},{"id":"hosted-special-1"},{"id":"hosted-exact"}]}"#,
    );
    fetch_hosted(&mut host, &plan, 1_000_000, &list);
    let listed = host.listed(&plan);
    let served: Vec<(&str, &str)> = listed
        .served(&plan)
        .into_iter()
        .map(|(d, m)| (d.id.as_str(), m.name.as_str()))
        .collect();
    // `gpt-4o` is not the pattern's; `hosted-special-1` and `hosted-exact` reach other models.
    assert_eq!(served, [("hosted-a", "hosted-*")]);
}
