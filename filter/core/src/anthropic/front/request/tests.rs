//! Messages and token counting requests made into chat requests; every field the router does
//! not serve refused by name; no input makes it panic.

use super::*;
use serde_json::json;

fn translate(v: Value) -> Result<(Value, ChatRequest), FrontError> {
    let r = chat_request(v.to_string().as_bytes())?;
    Ok((serde_json::from_slice(&r.body).unwrap(), r))
}

fn refused(v: Value) -> FrontError {
    translate(v).unwrap_err()
}

#[test]
fn a_full_request() {
    let (body, r) = translate(json!({
        "model":"claude-x","max_tokens":256,"system":"Be brief.",
        "messages":[{"role":"user","content":"Weather?"}],
        "stop_sequences":["\n\nHuman:"],"temperature":0.5,"top_p":0.9,"top_k":40,
        "metadata":{"user_id":"u-1"},"stream":true,
        "tools":[{"name":"get_weather","input_schema":{"type":"object"}}],
        "tool_choice":{"type":"any","disable_parallel_tool_use":true},
        "thinking":{"type":"enabled","budget_tokens":1024},
        "service_tier":"auto","cache_control":{"type":"ephemeral"}
    }))
    .unwrap();
    assert_eq!((r.model.as_str(), r.stream), ("claude-x", true));
    assert_eq!(
        body,
        json!({
            "model":"claude-x",
            "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather?"}],
            "max_tokens":256,"stream":true,"stream_options":{"include_usage":true},
            "temperature":0.5,"top_p":0.9,"top_k":40,"stop":["\n\nHuman:"],"user":"u-1",
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
            "tool_choice":"required","parallel_tool_calls":false
        })
    );
    // The model comes first, as written.
    assert!(r.body.starts_with(b"{\"model\":\"claude-x\",\"messages\":"));
}

#[test]
fn a_minimal_request_sets_only_what_was_asked() {
    let (body, r) = translate(
        json!({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}],
        "stream":false,"stop_sequences":[],"metadata":{},"temperature":null}),
    )
    .unwrap();
    assert!(!r.stream);
    assert_eq!(
        body,
        json!({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1})
    );
}

#[test]
fn required_fields_and_types() {
    let ok = json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]});
    let with = |k: &str, v: Value| {
        let mut o = ok.clone();
        o[k] = v;
        o
    };
    let without = |k: &str| {
        let mut o = ok.clone();
        o.as_object_mut().unwrap().remove(k);
        o
    };
    let cases = [
        (without("max_tokens"), "max_tokens: Field required"),
        (
            with("max_tokens", json!(0)),
            "max_tokens: must be an integer of at least 1",
        ),
        (
            with("max_tokens", json!(1.5)),
            "max_tokens: must be an integer of at least 1",
        ),
        (
            with("max_tokens", json!("5")),
            "max_tokens: must be an integer of at least 1",
        ),
        (without("model"), "model: Field required"),
        (with("model", json!(5)), "model: must be a string"),
        (without("messages"), "messages: Field required"),
        (with("stream", json!("yes")), "stream: must be a boolean"),
        (
            with("temperature", json!("hot")),
            "temperature: must be a number",
        ),
        (
            with("top_k", json!(-1)),
            "top_k: must be a non-negative integer",
        ),
        (
            with("stop_sequences", json!([1])),
            "stop_sequences: must be a list of strings",
        ),
        (
            with("metadata", json!({"user_id":"u","tags":[]})),
            "metadata.tags: Extra inputs are not permitted",
        ),
        (
            with("metadata", json!({"user_id":5})),
            "metadata.user_id: must be a string",
        ),
        (
            with("thinking", json!({"type":"maybe"})),
            "thinking.type: `maybe`",
        ),
        (with("thinking", json!({})), "thinking.type: Field required"),
        (
            with("service_tier", json!(1)),
            "service_tier: must be a string",
        ),
        (
            with(
                "tools",
                json!([{"type":"web_search_20250305","name":"web_search","max_uses":5}]),
            ),
            "tools.0: the server tool `web_search_20250305`",
        ),
    ];
    for (body, want) in cases {
        let e = refused(body.clone());
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        assert!(e.message.starts_with(want), "{body}: {}", e.message);
    }
}

#[test]
fn unknown_and_unserved_fields_are_named() {
    let e = refused(
        json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],
        "mcp_servers":[],"temprature":1}),
    );
    assert!(
        e.message
            .starts_with("`mcp_servers`, `temprature`: not a field"),
        "{}",
        e.message
    );
}

#[test]
fn malformed_bodies() {
    for (body, want) in [
        (&b"[1]"[..], "The request body must be a JSON object."),
        (b"", "The request body must be a JSON object."),
        (b"{\"model\":", "The request body is not valid JSON"),
        (
            b"{\"model\":\"a\",\"model\":\"b\"}",
            "The request body is not valid JSON: the key `model` is there twice",
        ),
        (b"{\"model\":\"m\"} x", "The request body is not valid JSON"),
        (b"\xff{", "The request body must be a JSON object."),
    ] {
        let e = chat_request(body).unwrap_err();
        assert!(
            e.message.starts_with(want),
            "{:?}: {}",
            String::from_utf8_lossy(body),
            e.message
        );
        assert_eq!(e.status, 400);
    }
}

#[test]
fn count_tokens_requests() {
    let body = json!({"model":"m","system":"s","messages":[{"role":"user","content":"hi"}],
        "tools":[{"name":"f","input_schema":{"type":"object"}}],"thinking":{"type":"disabled"}});
    let (model, chat) = count_tokens_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(model, "m");
    assert_eq!(
        serde_json::from_slice::<Value>(&chat).unwrap(),
        json!({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]})
    );
    let e = count_tokens_request(
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap_err();
    assert!(
        e.message.starts_with("`max_tokens`: not a field"),
        "{}",
        e.message
    );
    let e = count_tokens_request(br#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap_err();
    assert_eq!(e.message, "model: Field required");
}

/// Random bytes, random JSON and every truncation of a real request: an answer, never a panic.
#[test]
fn no_input_panics() {
    let real = json!({
        "model":"m","max_tokens":9,"system":[{"type":"text","text":"s"}],"stream":true,
        "messages":[{"role":"user","content":[{"type":"text","text":"a\"b"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
            {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"x":[1,{"y":null}]}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"ok"}]}]}],
        "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}
    })
    .to_string();
    assert!(chat_request(real.as_bytes()).is_ok());
    for cut in 0..real.len() {
        assert!(
            chat_request(&real.as_bytes()[..cut]).is_err(),
            "cut at {cut}"
        );
        let _ = count_tokens_request(&real.as_bytes()[..cut]);
    }
    let mut rng = crate::test_json::Rng::new(17);
    let pieces = [
        "\"model\"",
        "\"messages\"",
        "\"role\"",
        "\"user\"",
        "\"assistant\"",
        "\"content\"",
        "\"type\"",
        "\"text\"",
        "\"tool_use\"",
        "\"tool_result\"",
        "\"image\"",
        "\"source\"",
        "\"max_tokens\"",
        "\"tools\"",
        "\"tool_choice\"",
        "\"input\"",
        "\"name\"",
        "\\u0000",
    ];
    for _ in 0..3000 {
        let doc = rng.value(&pieces, 0);
        let _ = chat_request(doc.as_bytes());
        let _ = count_tokens_request(doc.as_bytes());
        let mut bytes = real.clone().into_bytes();
        for _ in 0..4 {
            let at = rng.next(bytes.len() as u64) as usize;
            bytes[at] = rng.next(256) as u8;
        }
        let _ = chat_request(&bytes);
    }
}
