//! The request building: each API, parameters typed and extra, and every mistake refused naming
//! its field.

use std::collections::BTreeMap;

use prost_types::{ListValue, Struct};
use tonic::Code;
use tonic_types::StatusExt;

use super::super::proto::Message;
use super::*;

fn chat(model: &str, text: &str) -> GenerationRequest {
    GenerationRequest {
        model: model.into(),
        messages: vec![Message {
            role: "user".into(),
            content: text.into(),
        }],
        ..Default::default()
    }
}

fn body(r: &OpenAiRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn num(n: f64) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

#[test]
fn a_conversation_is_a_chat_completion_with_only_what_is_set() {
    let r = build(&chat("demo-chat", "hi"), false).unwrap();
    assert_eq!(r.api, OpenAiApi::Chat);
    assert_eq!(r.api.path(), "/v1/chat/completions");
    assert_eq!(
        body(&r),
        serde_json::json!({"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn a_prompt_is_a_completion_and_a_stream_asks_for_usage() {
    let req = GenerationRequest {
        provider: "acme".into(),
        model: "writer".into(),
        prompt: "Once".into(),
        max_tokens: Some(16),
        ..Default::default()
    };
    let r = build(&req, true).unwrap();
    assert_eq!(r.api, OpenAiApi::Completions);
    assert_eq!(r.api.path(), "/v1/completions");
    assert_eq!(
        body(&r),
        serde_json::json!({"model": "acme/writer", "prompt": "Once", "max_tokens": 16,
            "stream": true, "stream_options": {"include_usage": true}})
    );
}

#[test]
fn parameters_typed_and_extra() {
    let mut req = chat("m", "hi");
    let extra = Struct {
        fields: BTreeMap::from([
            ("top_logprobs".to_string(), num(5.0)),
            (
                "logprobs".to_string(),
                prost_types::Value {
                    kind: Some(Kind::BoolValue(true)),
                },
            ),
            (
                "logit_bias".to_string(),
                prost_types::Value {
                    kind: Some(Kind::StructValue(Struct {
                        fields: BTreeMap::from([("50256".to_string(), num(-100.0))]),
                    })),
                },
            ),
            (
                "weights".to_string(),
                prost_types::Value {
                    kind: Some(Kind::ListValue(ListValue {
                        values: vec![num(0.5), prost_types::Value { kind: None }],
                    })),
                },
            ),
        ]),
    };
    req.parameters = Some(Parameters {
        temperature: Some(0.7),
        top_p: Some(1.0),
        stop: vec!["\n\n".into()],
        seed: Some(42),
        user: "u-1".into(),
        extra: Some(extra),
        ..Default::default()
    });
    let b = body(&build(&req, false).unwrap());
    assert_eq!(b["temperature"], 0.7);
    assert_eq!(b["top_p"], 1.0);
    assert_eq!(b["stop"], serde_json::json!(["\n\n"]));
    assert_eq!(b["seed"], 42);
    assert_eq!(b["user"], "u-1");
    assert_eq!(b["top_logprobs"], serde_json::json!(5));
    assert!(b["top_logprobs"].is_i64(), "whole numbers as integers");
    assert_eq!(b["logprobs"], true);
    assert_eq!(b["logit_bias"], serde_json::json!({"50256": -100}));
    assert_eq!(b["weights"], serde_json::json!([0.5, null]));
    assert!(b.get("presence_penalty").is_none(), "unset is not sent");
}

#[test]
fn mistakes_are_invalid_argument_naming_the_field() {
    let field = |s: Status| {
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        s.get_details_bad_request().unwrap().field_violations[0]
            .field
            .clone()
    };
    assert_eq!(field(build(&chat("", "hi"), false).unwrap_err()), "model");
    let mut both = chat("m", "hi");
    both.prompt = "p".into();
    assert_eq!(field(build(&both, false).unwrap_err()), "messages");
    let none = GenerationRequest {
        model: "m".into(),
        ..Default::default()
    };
    assert_eq!(field(build(&none, false).unwrap_err()), "messages");
    let mut roleless = chat("m", "hi");
    roleless.messages[0].role.clear();
    assert_eq!(
        field(build(&roleless, false).unwrap_err()),
        "messages[0].role"
    );
    let mut zero = chat("m", "hi");
    zero.max_tokens = Some(0);
    assert_eq!(field(build(&zero, true).unwrap_err()), "max_tokens");
    let mut nan = chat("m", "hi");
    nan.parameters = Some(Parameters {
        temperature: Some(f64::NAN),
        ..Default::default()
    });
    assert_eq!(
        field(build(&nan, false).unwrap_err()),
        "parameters.temperature"
    );
    for own in ["stream", "model", "n", "temperature", "user"] {
        let mut sneaky = chat("m", "hi");
        sneaky.parameters = Some(Parameters {
            extra: Some(Struct {
                fields: BTreeMap::from([(own.to_string(), num(1.0))]),
            }),
            ..Default::default()
        });
        assert_eq!(
            field(build(&sneaky, false).unwrap_err()),
            format!("parameters.extra.{own}")
        );
    }
    let mut inf = chat("m", "hi");
    inf.parameters = Some(Parameters {
        extra: Some(Struct {
            fields: BTreeMap::from([("x".to_string(), num(f64::INFINITY))]),
        }),
        ..Default::default()
    });
    assert_eq!(field(build(&inf, false).unwrap_err()), "parameters.extra.x");
}
