//! The chat → Messages request translation: a whole request, each parameter's rule, and any
//! input (random, truncated) answered with a request or a 400, never a panic.

use serde_json::{json, Value};

use super::*;
use crate::test_json::Rng;

const OPTS: RequestOptions<'static> = RequestOptions {
    model: "claude-sonnet-4-5-20250929",
    default_max_tokens: 4096,
    drop_unsupported: false,
};

fn translate(chat: Value, opts: &RequestOptions) -> Result<Value, ApiError> {
    messages_request(chat.to_string().as_bytes(), opts).map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn a_whole_request_is_translated() {
    let out = translate(
        json!({
            "model": "my-claude",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "toolu_9", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_9", "content": "a cat"},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "max_completion_tokens": 300,
            "max_tokens": 100,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "user-42",
            "n": 1,
            "presence_penalty": 0,
        }),
        &OPTS,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 300,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "cat"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "a cat"}]},
            ],
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_p": 0.9,
            "stream": true,
            "metadata": {"user_id": "user-42"},
            "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        })
    );
}

#[test]
fn max_tokens_defaults_and_the_newer_name_wins() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let out = translate(json!({"messages": messages}), &OPTS).unwrap();
    assert_eq!(out["max_tokens"], 4096);
    assert_eq!(out.get("stream"), None);
    let out = translate(json!({"messages": messages, "max_tokens": 7}), &OPTS).unwrap();
    assert_eq!(out["max_tokens"], 7);
    for bad in [json!(0), json!(-1), json!(1.5), json!("10")] {
        let err = translate(json!({"messages": messages, "max_tokens": bad}), &OPTS).unwrap_err();
        assert_eq!(err.param, Some("max_tokens"), "{bad}");
    }
}

#[test]
fn temperature_over_one_is_refused_or_clamped_when_dropping() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let hot = json!({"messages": messages, "temperature": 1.5});
    let err = translate(hot.clone(), &OPTS).unwrap_err();
    assert_eq!(
        (err.status, err.param, err.code),
        (400, Some("temperature"), Some("unsupported_value"))
    );
    let dropping = RequestOptions {
        drop_unsupported: true,
        ..OPTS
    };
    assert_eq!(translate(hot, &dropping).unwrap()["temperature"], 1);
    for (t, out) in [
        (json!(0), json!(0)),
        (json!(1), json!(1)),
        (json!(0.25), json!(0.25)),
    ] {
        let v = translate(json!({"messages": messages, "temperature": t}), &OPTS).unwrap();
        assert_eq!(v["temperature"], out);
    }
    for bad in [json!(2.5), json!(-0.1), json!("1")] {
        let err =
            translate(json!({"messages": messages, "temperature": bad}), &dropping).unwrap_err();
        assert_eq!(err.param, Some("temperature"), "{bad}");
    }
    let err = translate(json!({"messages": messages, "top_p": 1.5}), &OPTS).unwrap_err();
    assert_eq!(err.param, Some("top_p"));
}

#[test]
fn stop_lists_and_the_end_user_are_carried() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let out = translate(
        json!({"messages": messages, "stop": ["a", "", "b"], "user": "u", "safety_identifier": "s"}),
        &OPTS,
    )
    .unwrap();
    assert_eq!(out["stop_sequences"], json!(["a", "b"]));
    assert_eq!(out["metadata"], json!({"user_id": "s"}));
    let out = translate(
        json!({"messages": messages, "stop": [""], "stream": false}),
        &OPTS,
    )
    .unwrap();
    assert_eq!(out.get("stop_sequences"), None);
    assert_eq!(out["stream"], false);
    assert!(translate(json!({"messages": messages, "stop": [1]}), &OPTS).is_err());
}

#[test]
fn parameters_without_counterpart_are_refused_naming_them_or_dropped() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let dropping = RequestOptions {
        drop_unsupported: true,
        ..OPTS
    };
    for (key, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("presence_penalty", json!(1)),
        ("frequency_penalty", json!(-1)),
        ("logit_bias", json!({"50256": -100})),
        ("seed", json!(42)),
        (
            "response_format",
            json!({"type": "json_schema", "json_schema": {}}),
        ),
        ("audio", json!({"voice": "alloy"})),
        ("modalities", json!(["audio"])),
        ("prediction", json!({"type": "content", "content": "x"})),
        ("reasoning_effort", json!("high")),
        ("top_k", json!(5)),
        ("something_new", json!(true)),
    ] {
        let chat = json!({"messages": messages, key: value});
        let err = translate(chat.clone(), &OPTS).unwrap_err();
        assert_eq!(err.status, 400, "{key}");
        assert!(
            err.message.contains(&format!("'{key}'")),
            "{key}: {}",
            err.message
        );
        let known = !matches!(key, "top_k" | "something_new");
        assert_eq!(err.param.is_some(), known, "{key}");
        let out = translate(chat, &dropping).unwrap();
        assert_eq!(out.get(key), None, "{key}");
        assert_eq!(out["messages"][0]["content"][0]["text"], "hi");
    }
}

#[test]
fn bodies_that_are_not_requests_are_400s() {
    assert_eq!(
        messages_request(b"{\"messages\": [", &OPTS).unwrap_err(),
        ApiError::bad_json()
    );
    assert_eq!(
        messages_request(b"[1]", &OPTS).unwrap_err(),
        ApiError::not_an_object()
    );
    let err = messages_request(b"{\"model\":\"m\"}", &OPTS).unwrap_err();
    assert_eq!((err.status, err.param), (400, Some("messages")));
    let err = messages_request(b"{\"messages\":{}}", &OPTS).unwrap_err();
    assert_eq!((err.status, err.param), (400, Some("messages")));
}

/// Values a fuzzed request is made of: the fields the translation reads, with values of every
/// JSON type, right and wrong.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    const KEYS: [&str; 14] = [
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "id",
        "parameters",
        "file_data",
    ];
    const STRINGS: [&str; 12] = [
        "user",
        "assistant",
        "tool",
        "system",
        "text",
        "image_url",
        "function",
        "{\"a\":1}",
        "data:image/png;base64,AA==",
        "https://x/y",
        "",
        "{",
    ];
    match rng.next(if depth > 3 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.next(3) == 0),
        2 => json!(rng.next(5) as f64 - 1.5),
        3 => json!(rng.next(4000)),
        4 => json!(STRINGS[rng.next(STRINGS.len() as u64) as usize]),
        5 => Value::Array(
            (0..rng.next(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.next(5))
                .map(|_| {
                    let key = KEYS[rng.next(KEYS.len() as u64) as usize].to_string();
                    (key, random_value(rng, depth + 1))
                })
                .collect(),
        ),
    }
}

/// Random requests, and a valid one cut at every byte and with bytes changed: each gets a
/// request (valid JSON) or a 400, never a panic.
#[test]
fn any_input_gets_a_request_or_a_400() {
    const TOP: [&str; 12] = [
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "temperature",
        "stop",
        "stream",
        "user",
        "top_p",
        "n",
        "response_format",
    ];
    let mut rng = Rng::new(0xa17);
    let check = |body: &[u8], opts: &RequestOptions| match messages_request(body, opts) {
        Ok(out) => {
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert!(v["max_tokens"].as_u64().unwrap() > 0);
        }
        Err(e) => assert_eq!(e.status, 400, "{}", e.message),
    };
    for round in 0..3000 {
        let mut body = serde_json::Map::new();
        for _ in 0..rng.next(6) {
            let key = TOP[rng.next(TOP.len() as u64) as usize];
            body.insert(key.into(), random_value(&mut rng, 0));
        }
        if round % 2 == 0 {
            let messages = (0..rng.next(5))
                .map(|_| random_value(&mut rng, 1))
                .collect();
            body.insert("messages".into(), Value::Array(messages));
        }
        let opts = RequestOptions {
            drop_unsupported: round % 3 == 0,
            ..OPTS
        };
        check(Value::Object(body).to_string().as_bytes(), &opts);
    }
    let valid = br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"h\u00e9"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"stop":["x"],"temperature":0.3}"#;
    check(valid, &OPTS);
    assert!(messages_request(valid, &OPTS).is_ok());
    for cut in 0..valid.len() {
        check(&valid[..cut], &OPTS);
    }
    for _ in 0..3000 {
        let mut body = valid.to_vec();
        for _ in 0..1 + rng.next(3) {
            let at = rng.next(body.len() as u64) as usize;
            const BYTES: &[u8] = b"{}[]\",:\\ax0\xff";
            body[at] = BYTES[rng.next(BYTES.len() as u64) as usize];
        }
        check(&body, &OPTS);
    }
}

#[test]
fn no_turn_or_too_many_stop_sequences_are_refused() {
    let opts = RequestOptions {
        model: "m",
        default_max_tokens: 16,
        drop_unsupported: false,
    };
    for body in [
        br#"{"model":"x","messages":[]}"#.as_slice(),
        br#"{"model":"x","messages":[{"role":"system","content":"only a system prompt"}]}"#,
        br#"{"model":"x","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}"#,
    ] {
        let err = messages_request(body, &opts).unwrap_err();
        assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
    }
    let four =
        br#"{"model":"x","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d"]}"#;
    assert!(messages_request(four, &opts).is_ok());
}
