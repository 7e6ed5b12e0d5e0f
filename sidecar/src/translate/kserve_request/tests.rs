//! Golden tests: OpenAI parameters → the KServe v2 request each family gets, as readable JSON.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;
use crate::kserve::pb::infer_parameter::ParameterChoice;

fn info(decoupled: bool, batch: i32, inputs: &[(&str, DataType)], outputs: &[&str]) -> ModelInfo {
    ModelInfo {
        decoupled,
        max_batch_size: batch,
        inputs: inputs
            .iter()
            .map(|(n, t)| (n.to_string(), (*t, true)))
            .collect::<HashMap<_, _>>(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
    }
}

fn vllm() -> ModelInfo {
    use DataType::*;
    info(
        true,
        0,
        &[
            ("text_input", TypeString),
            ("stream", TypeBool),
            ("sampling_parameters", TypeString),
            ("exclude_input_in_output", TypeBool),
            ("return_finish_reason", TypeBool),
            ("return_num_input_tokens", TypeBool),
            ("return_num_output_tokens", TypeBool),
        ],
        &[
            "text_output",
            "finish_reason",
            "num_input_tokens",
            "num_output_tokens",
        ],
    )
}

fn trtllm(decoupled: bool) -> ModelInfo {
    use DataType::*;
    info(
        decoupled,
        8,
        &[
            ("text_input", TypeString),
            ("max_tokens", TypeInt32),
            ("stream", TypeBool),
            ("exclude_input_in_output", TypeBool),
            ("temperature", TypeFp32),
            ("top_p", TypeFp32),
            ("top_k", TypeInt32),
            ("random_seed", TypeUint64),
            ("stop_words", TypeString),
        ],
        &["text_output", "cum_log_probs"],
    )
}

fn sampling() -> Sampling {
    Sampling {
        max_tokens: 32,
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        presence_penalty: None,
        frequency_penalty: Some(0.25),
        seed: Some(7),
        stop: vec!["a".into(), "b".into()],
    }
}

/// A readable rendering of a request: inputs in order with decoded contents.
fn describe(req: &ModelInferRequest, extras: Extras) -> Value {
    let inputs: Vec<Value> = req
        .inputs
        .iter()
        .map(|i| {
            let c = i.contents.clone().unwrap_or_default();
            let contents: Value = if !c.bytes_contents.is_empty() {
                json!(c.bytes_contents.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>())
            } else if !c.bool_contents.is_empty() {
                json!(c.bool_contents)
            } else if !c.int_contents.is_empty() {
                json!(c.int_contents)
            } else if !c.fp32_contents.is_empty() {
                json!(c.fp32_contents)
            } else {
                json!(c.uint64_contents)
            };
            json!({ "name": i.name, "datatype": i.datatype, "shape": i.shape, "contents": contents })
        })
        .collect();
    let params: Value = req
        .parameters
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(matches!(
                    v.parameter_choice,
                    Some(ParameterChoice::BoolParam(true))
                )),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    json!({
        "model_name": req.model_name,
        "id": req.id,
        "parameters": params,
        "inputs": inputs,
        "outputs": req.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
        "extras": { "finish_reason": extras.finish_reason, "num_input_tokens": extras.num_input_tokens, "num_output_tokens": extras.num_output_tokens, "echoes_prompt": extras.echoes_prompt },
    })
}

fn golden(name: &str, got: &Value) {
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    crate::golden::check(&format!("requests/{name}.json"), &text);
}

#[test]
fn vllm_request_streaming() {
    let (req, extras) = build(
        TritonFamily::Vllm,
        &vllm(),
        "vllm_chat",
        "req-1-0",
        "Hi",
        &sampling(),
        true,
    );
    golden("vllm_stream", &describe(&req, extras));
}

#[test]
fn trtllm_ensemble_request_has_batch_dims_and_stop_words_1xn() {
    let (req, extras) = build(
        TritonFamily::Trtllm,
        &trtllm(true),
        "ensemble",
        "req-2-0",
        "Hi",
        &sampling(),
        true,
    );
    golden("trtllm_stream", &describe(&req, extras));
    let stop = req.inputs.iter().find(|i| i.name == "stop_words").unwrap();
    assert_eq!(stop.shape, vec![1, 2]);
}

#[test]
fn non_decoupled_model_gets_no_stream_flag() {
    let (req, _) = build(
        TritonFamily::Trtllm,
        &trtllm(false),
        "sync",
        "r",
        "Hi",
        &Sampling {
            max_tokens: 4,
            ..Default::default()
        },
        true,
    );
    assert!(req.inputs.iter().all(|i| i.name != "stream"));
    golden("trtllm_sync_minimal", &describe(&req, Extras::default()));
}

#[test]
fn echo_is_expected_when_the_model_cannot_exclude_the_prompt() {
    let mut m = trtllm(true);
    m.inputs.remove("exclude_input_in_output");
    let (_, extras) = build(TritonFamily::Trtllm, &m, "e", "r", "Hi", &sampling(), true);
    assert!(extras.echoes_prompt);
}

#[test]
fn families_are_checked_against_the_model() {
    assert!(check(TritonFamily::Vllm, &vllm()).is_ok());
    assert!(check(TritonFamily::Trtllm, &trtllm(true)).is_ok());
    let err = check(TritonFamily::Trtllm, &vllm()).unwrap_err();
    assert!(err.0.contains("max_tokens"), "{}", err.0);
    assert!(check(TritonFamily::Vllm, &trtllm(true)).is_err());
}
