//! A request to a router through the flow: held while the classifier's call-out is out, then
//! sent on to the labelled route's model under the router's name; META rules, failures of the
//! call-out, fallbacks, enrichment, and the answer renamed.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::HttpFlow;
use crate::host::{Action, CallResponse};

const ROUTER: &str = r####"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"

[backends.cloud]
kind = "openai"
url = "https://cloud.example/v1"
api_key = "sk-cloud-secret"

[[models]]
name = "local-chat"
apis = ["chat", "completions"]
target = { backend = "local", model = "qwen3-8b" }

[[models]]
name = "classifier"
apis = ["chat"]
target = { backend = "local", model = "qwen3-0.6b" }

[[models]]
name = "cloud-chat"
apis = ["chat"]
target = { backend = "cloud", model = "grok-4" }

[[models]]
name = "cloud-search"
apis = ["responses"]
target = { backend = "cloud", model = "grok-4-fast" }

[[routers]]
name = "ai-router"
apis = ["chat", "completions"]
default_route = "SIMPLE"

[routers.classifier]
model = "classifier"
prompt = "Answer one of {{labels}}."
timeout_ms = 3000

[[routers.routes]]
label = "SIMPLE"
model = "local-chat"

[[routers.routes]]
label = "COMPLEX"
model = "cloud-chat"
max_tokens_floor = 4096

[[routers.routes]]
label = "ENRICH"
model = "local-chat"
enrich = { model = "cloud-search", tools = ["web_search"], template = "Search says: {{answer}}" }

[[routers.meta]]
route = "SIMPLE"
contains_any = ["### Task:"]

[[keys]]
name = "alice"
key = "sk-alice"

[[keys]]
name = "bob"
key = "sk-bob"
models = ["local-chat"]
"####;

fn router_flow() -> HttpFlow {
    HttpFlow::new(Rc::new(compile("t.toml", ROUTER, &|_| None).unwrap()))
}

fn ask(f: &mut HttpFlow, text: &str) -> FakeHost {
    let body = format!(
        r#"{{"model":"ai-router","messages":[{{"role":"user","content":"{text}"}}],"max_tokens":16}}"#
    );
    let mut h = chat("sk-alice", body.as_bytes());
    assert_eq!(f.on_request_headers(&mut h, false), Action::Pause);
    let len = h.req_body.len();
    let action = f.on_request_body(&mut h, len, true);
    if !h.calls.is_empty() {
        assert_eq!(action, Action::Pause, "held while the classifier is asked");
    }
    h
}

fn reply(status: u16, body: &str) -> CallResponse {
    CallResponse {
        status,
        headers: vec![(":status".into(), status.to_string())],
        body: body.as_bytes().to_vec(),
        body_len: body.len(),
    }
}

fn completion(answer: &str) -> String {
    serde_json::json!({
        "choices": [{"message": {"role": "assistant", "content": answer}}],
        "usage": {"total_tokens": 12}
    })
    .to_string()
}

fn body_json(h: &FakeHost) -> serde_json::Value {
    serde_json::from_slice(&h.req_body).unwrap()
}

#[test]
fn the_classifier_is_asked_on_its_backend_and_its_label_picks_the_route() {
    let mut f = router_flow();
    let mut h = ask(&mut f, "design a distributed cache");
    assert!(h.sent.is_none());
    let call = h.calls[0].clone();
    assert_eq!(call.cluster, crate::contract::backend_cluster("local"));
    let get = |k: &str| {
        call.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(":path").as_deref(), Some("/v1/chat/completions"));
    assert_eq!(get(":authority").as_deref(), Some("127.0.0.1:8000"));
    assert_eq!(
        get("authorization"),
        None,
        "the client's key never rides a call-out"
    );
    assert_eq!(call.timeout_ms, 3000);
    let sent: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["model"], "qwen3-0.6b");
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("SIMPLE, COMPLEX, ENRICH"));
    assert!(sent["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("design a distributed cache"));
    assert_eq!(h.resumed, 0);

    f.on_http_call_response(
        &mut h,
        1,
        reply(200, &completion("<think>hard</think>COMPLEX")),
    );
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(h.resumed, 1);
    assert_eq!(h.route(), Some("cloud"));
    let body = body_json(&h);
    assert_eq!(body["model"], "grok-4");
    assert_eq!(body["max_tokens"], 4096, "the route's floor");
    assert_eq!(
        header_of(&h, "authorization").as_deref(),
        Some("Bearer sk-cloud-secret")
    );
    assert_eq!(
        header_of(&h, "content-length"),
        Some(h.req_body.len().to_string())
    );

    // The answer carries the router's name, never the route's model or its backend's.
    let out = respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"id":"x","object":"chat.completion","model":"grok-4","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#],
    );
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["model"], "ai-router");
}

#[test]
fn a_meta_rule_skips_the_classifier() {
    let mut f = router_flow();
    let h = ask(&mut f, "### Task: write a title for this chat");
    assert!(h.calls.is_empty());
    assert!(h.sent.is_none());
    assert_eq!(h.route(), Some("local"));
    assert_eq!(body_json(&h)["model"], "qwen3-8b");
}

#[test]
fn a_meta_rule_sends_the_request_to_the_route_it_names_not_the_route_at_its_index() {
    // Two rules: the first (index 0) holds for titles and names COMPLEX (route 1), the second
    // holds for tags and names ENRICH (route 2). Found by tests/e2e/test_router.py: the rule's
    // index was taken for its route, so every META request went to the first route.
    let rules = r####"[[routers.meta]]
route = "COMPLEX"
contains_any = ["### Task:"]

[[routers.meta]]
route = "ENRICH"
contains_any = ["### Tags:"]
"####;
    let config = ROUTER.replace(
        "[[routers.meta]]\nroute = \"SIMPLE\"\ncontains_any = [\"### Task:\"]\n",
        rules,
    );
    assert_ne!(config, ROUTER);
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let h = ask(&mut f, "### Task: write a title for this chat");
    assert!(h.calls.is_empty(), "no classifier call");
    assert_eq!(h.route(), Some("cloud"));
    assert_eq!(body_json(&h)["model"], "grok-4");
    assert_eq!(body_json(&h)["max_tokens"], 4096, "COMPLEX's transforms");

    let mut f = HttpFlow::new(plan);
    let h = ask(&mut f, "### Tags: tag this chat");
    assert_eq!(
        h.calls.len(),
        1,
        "ENRICH's enrichment is asked, not the classifier"
    );
    let sent: serde_json::Value = serde_json::from_slice(&h.calls[0].body).unwrap();
    assert_eq!(sent["model"], "grok-4-fast");
}

#[test]
fn no_label_a_failed_or_timed_out_classifier_takes_the_default_route() {
    for answer in [
        reply(200, &completion("I think it is SIMPLE or COMPLEX")),
        reply(200, &completion("BANANA")),
        reply(200, "not json"),
        reply(503, "overloaded"),
        reply(0, ""),
        CallResponse {
            status: 200,
            headers: vec![],
            body: vec![b' '; 10],
            body_len: 10 << 20,
        },
    ] {
        let mut f = router_flow();
        let mut h = ask(&mut f, "design a thing");
        f.on_http_call_response(&mut h, 1, answer.clone());
        assert_eq!(h.route(), Some("local"), "{answer:?}");
        let failures = h
            .counters
            .get("airouter_router_classifier_failures.router.ai-router");
        assert_eq!(failures, Some(&1), "{answer:?}");
        assert_eq!(body_json(&h)["model"], "qwen3-8b");
        assert_eq!(h.resumed, 1);
    }
}

#[test]
fn an_answer_for_another_call_is_ignored() {
    let mut f = router_flow();
    let mut h = ask(&mut f, "hello");
    f.on_http_call_response(&mut h, 99, reply(200, &completion("COMPLEX")));
    assert_eq!(h.resumed, 0);
    assert_eq!(h.route(), None);
}

#[test]
fn a_classifier_the_host_refuses_to_call_takes_the_default_route_at_once() {
    let mut f = router_flow();
    let body = br#"{"model":"ai-router","messages":[{"role":"user","content":"hi"}]}"#;
    let mut h = chat("sk-alice", body);
    h.refuse_calls = true;
    f.on_request_headers(&mut h, false);
    let len = h.req_body.len();
    assert_eq!(f.on_request_body(&mut h, len, true), Action::Continue);
    assert_eq!(h.route(), Some("local"));
    assert_eq!(h.resumed, 0, "never held, so never resumed");
}

#[test]
fn enrichment_is_asked_through_the_responses_api_and_its_answer_injected() {
    let mut f = router_flow();
    let mut h = ask(&mut f, "latest news on rust");
    f.on_http_call_response(&mut h, 1, reply(200, &completion("ENRICH")));
    assert_eq!(h.resumed, 0, "still held for the enrichment");
    let call = h.calls[1].clone();
    assert_eq!(call.cluster, crate::contract::backend_cluster("cloud"));
    let path = call
        .headers
        .iter()
        .find(|(k, _)| k == ":path")
        .map(|(_, v)| v.clone());
    assert_eq!(path.as_deref(), Some("/v1/responses"));
    let auth = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(
        auth.as_deref(),
        Some("Bearer sk-cloud-secret"),
        "the backend's own key"
    );
    let sent: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["model"], "grok-4-fast");
    assert_eq!(sent["tools"][0]["type"], "web_search");
    let answer = serde_json::json!({
        "object": "response", "status": "completed",
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Rust 2.0 shipped."}]}]
    });
    f.on_http_call_response(&mut h, 2, reply(200, &answer.to_string()));
    assert_eq!(h.resumed, 1);
    assert_eq!(h.route(), Some("local"));
    let body = body_json(&h);
    let text = body.to_string();
    assert!(text.contains("Search says: Rust 2.0 shipped."), "{text}");
    assert_eq!(
        body["messages"].as_array().unwrap().last().unwrap()["content"],
        "latest news on rust"
    );
}

#[test]
fn a_failed_enrichment_serves_the_route_unenriched() {
    let mut f = router_flow();
    let mut h = ask(&mut f, "latest news");
    f.on_http_call_response(&mut h, 1, reply(200, &completion("ENRICH")));
    f.on_http_call_response(&mut h, 2, reply(0, ""));
    assert_eq!(h.resumed, 1);
    assert_eq!(h.route(), Some("local"));
    assert!(!body_json(&h).to_string().contains("Search says"));
}

#[test]
fn a_key_must_allow_the_router_by_name() {
    let mut f = router_flow();
    let body = br#"{"model":"ai-router","messages":[{"role":"user","content":"hi"}]}"#;
    let h = send(&mut f, chat("sk-bob", body));
    let (status, err) = error_of(&h);
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "model_not_found");
    assert!(h.calls.is_empty());
}

#[test]
fn a_conversation_that_cannot_be_read_is_a_400() {
    let mut f = router_flow();
    let h = send(
        &mut f,
        chat("sk-alice", br#"{"model":"ai-router","messages":"hi"}"#),
    );
    assert_eq!(error_of(&h).0, 400);
}

#[test]
fn a_route_whose_backend_has_no_key_is_passed_over_and_its_model_answers_503() {
    let config = ROUTER.replace(
        "api_key = \"sk-cloud-secret\"",
        "api_key_env = \"CLOUD_KEY\"\napi_key_optional = true",
    );
    let plan = Rc::new(compile("t.toml", &config, &|_| None).unwrap());
    assert!(
        plan.missing_env.is_empty(),
        "optional: Envoy may start without it"
    );
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = ask(&mut f, "design a thing");
    f.on_http_call_response(&mut h, 1, reply(200, &completion("COMPLEX")));
    assert_eq!(
        h.route(),
        Some("local"),
        "COMPLEX's backend has no key: the default serves"
    );
    assert_eq!(
        h.counters.get("airouter_router_fallbacks.router.ai-router"),
        Some(&1)
    );

    let direct = br#"{"model":"cloud-chat","messages":[{"role":"user","content":"hi"}]}"#;
    let h = send(&mut HttpFlow::new(plan), chat("sk-alice", direct));
    let (status, err) = error_of(&h);
    assert_eq!(status, 503);
    assert_eq!(err["error"]["code"], "backend_unavailable");
}

fn probe_flow() -> HttpFlow {
    let config = format!("{ROUTER}\n[[admin_keys]]\nname = \"ops\"\nkey = \"sk-admin\"\n");
    HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()))
}

fn probe(f: &mut HttpFlow, key: &str, body: &str) -> (FakeHost, Action) {
    let mut h = request("POST", "/api/route", Some(key), body.as_bytes());
    let a = f.on_request_headers(&mut h, body.is_empty());
    if a != Action::Pause || h.sent.is_some() {
        return (h, a);
    }
    let len = h.req_body.len();
    let a = f.on_request_body(&mut h, len, true);
    (h, a)
}

#[test]
fn a_route_probe_classifies_and_answers_the_decision_without_generating() {
    let mut f = probe_flow();
    let body = r#"{"model":"ai-router","messages":[{"role":"user","content":"latest news"}]}"#;
    let (mut h, a) = probe(&mut f, "sk-admin", body);
    assert_eq!(a, Action::Pause);
    assert_eq!(h.calls.len(), 1);
    h.now += 7;
    f.on_http_call_response(&mut h, 1, reply(200, &completion("ENRICH")));
    assert_eq!(h.calls.len(), 1, "no enrichment, nothing generated");
    assert_eq!(h.route(), None);
    let (status, _, out) = h.sent.clone().expect("the decision");
    assert_eq!(status, 200);
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["virtual_model"], "ai-router");
    assert_eq!(out["label"], "ENRICH");
    assert_eq!(out["route"], "ENRICH");
    assert_eq!(out["chosen_by"], "classifier");
    assert_eq!(out["classifier"]["latency_ms"], 7);
    assert_eq!(out["total_ms"], 7);
}

#[test]
fn a_route_probe_takes_admin_keys_a_post_and_a_router() {
    let body = r#"{"model":"ai-router","messages":[{"role":"user","content":"hi"}]}"#;
    let (h, _) = probe(&mut probe_flow(), "sk-alice", body);
    assert_eq!(error_of(&h).0, 401, "a client key is not an admin key");
    let (h, _) = probe(&mut router_flow(), "sk-admin", body);
    assert_eq!(error_of(&h).0, 403, "no admin keys configured");
    let mut h = request("GET", "/api/route", Some("sk-admin"), b"");
    probe_flow().on_request_headers(&mut h, true);
    assert_eq!(error_of(&h).0, 405);
    let model = r#"{"model":"local-chat","messages":[{"role":"user","content":"hi"}]}"#;
    let (h, _) = probe(&mut probe_flow(), "sk-admin", model);
    assert_eq!(error_of(&h).0, 404, "a probe names a router, never a model");
    assert_eq!(h.route(), None);
}

#[test]
fn a_routers_session_record_says_how_it_was_routed() {
    let config = format!("{ROUTER}\n[session_log]\ncapture = \"full\"\n");
    let mut f = HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()));
    let mut h = ask(&mut f, "design a thing");
    f.on_http_call_response(
        &mut h,
        1,
        reply(200, &completion("<think>x</think>COMPLEX")),
    );
    respond(
        &mut f,
        &mut h,
        "200",
        "application/json",
        &[br#"{"model":"grok-4","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#],
    );
    f.on_log(&mut h);
    let record = h
        .state
        .values()
        .find(|v| v.contains("\"routing\""))
        .expect("a session record with the routing decision");
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(record["model"], "ai-router");
    assert_eq!(record["routing"]["route"], "COMPLEX");
    assert_eq!(record["routing"]["chosen_by"], "classifier");
    assert_eq!(
        record["routing"]["classifier"]["reply"],
        "<think>x</think>COMPLEX"
    );
}

#[test]
fn the_models_list_shows_the_router_to_keys_allowed_it() {
    // Open WebUI offers the models `/v1/models` lists; a router missing from it could not be
    // picked (found by tests/e2e/test_router.py).
    let mut f = router_flow();
    let get = |f: &mut HttpFlow, path: &str, key: &str| {
        let h = send(f, request("GET", path, Some(key), b""));
        let (status, _, body) = h.sent.unwrap();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, list) = get(&mut f, "/v1/models", "sk-alice");
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"ai-router"), "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == "ai-router").count(), 1);
    let (status, one) = get(&mut f, "/v1/models/ai-router", "sk-alice");
    assert_eq!((status, one["id"].as_str()), (200, Some("ai-router")));
    // bob may use local-chat only: the router is not his to see.
    let (_, list) = get(&mut f, "/v1/models", "sk-bob");
    assert!(!list.to_string().contains("ai-router"), "{list}");
    assert_eq!(get(&mut f, "/v1/models/ai-router", "sk-bob").0, 404);
}

#[test]
fn a_classifier_that_does_not_answer_is_skipped_until_it_recovers() {
    let plan = Rc::new(compile("t.toml", ROUTER, &|_| None).unwrap());
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = ask(&mut f, "design a thing");
    h.now = 10_000;
    f.on_http_call_response(&mut h, 1, reply(0, ""));
    assert_eq!(h.route(), Some("local"));
    // The next request does not wait for it: its backend is unhealthy for a while.
    let mut next = chat(
        "sk-alice",
        br#"{"model":"ai-router","messages":[{"role":"user","content":"design"}]}"#,
    );
    next.shared = h.shared.clone();
    next.now = 11_000;
    let mut f = HttpFlow::new(Rc::clone(&plan));
    f.on_request_headers(&mut next, false);
    let len = next.req_body.len();
    assert_eq!(f.on_request_body(&mut next, len, true), Action::Continue);
    assert!(next.calls.is_empty(), "not asked while unhealthy");
    // A call-out that was answered, even with an error status, marks nothing.
    let mut f = HttpFlow::new(Rc::clone(&plan));
    let mut h = ask(&mut f, "design a thing");
    f.on_http_call_response(&mut h, 1, reply(503, "busy"));
    assert!(h.shared.is_empty());
}

#[test]
fn a_record_names_the_router_when_the_client_left_while_the_classifier_was_out() {
    let config = format!("{ROUTER}\n[session_log]\ncapture = \"none\"\n");
    let mut f = HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()));
    let mut h = ask(&mut f, "design a thing");
    f.on_log(&mut h);
    let record = h
        .state
        .values()
        .find(|v| v.contains("\"schema\""))
        .expect("a record");
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(record["model"], "ai-router");
    assert_eq!(record["routing"]["virtual_model"], "ai-router");
}

#[test]
fn without_full_capture_a_record_keeps_no_classifier_reply() {
    let config = format!("{ROUTER}\n[session_log]\ncapture = \"metadata\"\n");
    let mut f = HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()));
    let mut h = ask(&mut f, "design a thing");
    let answer = "<think>The user says: PATIENT-HAS-CONDITION-X</think>COMPLEX";
    f.on_http_call_response(&mut h, 1, reply(200, &completion(answer)));
    f.on_log(&mut h);
    let record = h
        .state
        .values()
        .find(|v| v.contains("\"schema\""))
        .expect("a record");
    assert!(!record.contains("PATIENT"), "{record}");
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(record["routing"]["route"], "COMPLEX");
}
