//! What the filter answers itself: health, the models list, the admin endpoints.

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::flow::HttpFlow;

#[test]
fn health_needs_no_key() {
    let h = send(&mut flow(), request("GET", "/health", None, b""));
    assert_eq!(h.sent.unwrap().0, 200);
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
fn a_405_allows_the_method_its_endpoint_takes() {
    let allow = |method: &str, path: &str| {
        let h = send(&mut flow(), request(method, path, Some("sk-alice"), b""));
        let (status, headers, _) = h.sent.unwrap();
        assert_eq!(status, 405, "{method} {path}");
        headers
            .into_iter()
            .find(|(k, _)| k == "allow")
            .map(|(_, v)| v)
    };
    assert_eq!(allow("POST", "/v1/models").as_deref(), Some("GET"));
    assert_eq!(
        allow("DELETE", "/v1/models/chat-small").as_deref(),
        Some("GET")
    );
    assert_eq!(allow("POST", "/router/health").as_deref(), Some("GET"));
    assert_eq!(
        allow("GET", "/v1/chat/completions").as_deref(),
        Some("POST")
    );
}
