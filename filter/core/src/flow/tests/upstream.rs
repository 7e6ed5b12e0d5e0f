//! The per-attempt upstream filter of a failover model: each attempt rewritten for its target and
//! counted against its backend's limit.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::contract::{CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER};
use crate::flow::UpstreamFlow;
use crate::host::Action;
use crate::limits;

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
        let mut up = UpstreamFlow::new(Rc::clone(&plan));
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
        let mut up = UpstreamFlow::new(Rc::clone(&plan));
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
