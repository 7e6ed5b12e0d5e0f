//! Targets cooled down by a 429: keyed per configured target, for as long as a strict reading of
//! the retry hints says, within the backend's cap.

use std::collections::HashMap;
use std::rc::Rc;

use super::host::*;
use crate::config::{compile, Plan};
use crate::flow::HttpFlow;

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
