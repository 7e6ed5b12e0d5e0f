//! A checked chat/completion request ([`super::chat_request`]) → one KServe v2
//! `ModelInferRequest` per choice, per Triton model family; and the check that a model fits its
//! family.
//!
//! Only inputs the model declares are sent and only outputs the router reads are requested (some
//! backends fill unrequested outputs with dummies). Every request asks for the empty final
//! response, so the end of a stream is always marked.

use airouter_core::config::TritonFamily;
use serde_json::{json, Map, Value};

use super::chat_request::Sampling;
use crate::kserve::model_info::ModelInfo;
use crate::kserve::pb::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use crate::kserve::pb::{DataType, ModelInferRequest};
use crate::kserve::tensors;

/// Outputs beyond `text_output` that this request asked for, which
/// [`super::kserve_response`] reads back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    pub finish_reason: bool,
    pub num_input_tokens: bool,
    pub num_output_tokens: bool,
    /// The model repeats the prompt before its answer (no way to ask it not to).
    pub echoes_prompt: bool,
}

/// A model that cannot be driven as its configured family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatible(pub String);

fn need(info: &ModelInfo, name: &str, family: &str) -> Result<(), Incompatible> {
    if info.has_input(name) {
        Ok(())
    } else {
        Err(Incompatible(format!(
            "the model declares no `{name}` input, which a {family} model has"
        )))
    }
}

/// Checks that a model fits its family before any request is built.
pub fn check(family: TritonFamily, info: &ModelInfo) -> Result<(), Incompatible> {
    match family {
        TritonFamily::Vllm => {
            need(info, "text_input", "vLLM")?;
            if info.max_batch_size > 0 {
                return Err(Incompatible(
                    "a vLLM-backend model has no batch dimension (max_batch_size 0)".into(),
                ));
            }
        }
        TritonFamily::Trtllm | TritonFamily::TrtllmBls => {
            need(info, "text_input", "TensorRT-LLM")?;
            need(info, "max_tokens", "TensorRT-LLM")?;
        }
        TritonFamily::Embeddings => {
            let text = info
                .inputs
                .iter()
                .any(|(_, (t, _))| *t == DataType::TypeString);
            if !text || info.outputs.is_empty() {
                return Err(Incompatible(
                    "an embeddings model takes a BYTES input and gives an FP32 output".into(),
                ));
            }
        }
    }
    if !info.has_output("text_output") && family != TritonFamily::Embeddings {
        return Err(Incompatible(
            "the model declares no `text_output` output".into(),
        ));
    }
    Ok(())
}

/// Builds the request for one choice: `id` correlates its responses on the stream, `stream` sets
/// the model's `stream` input when it is decoupled.
pub fn build(
    family: TritonFamily,
    info: &ModelInfo,
    model: &str,
    id: &str,
    prompt: &str,
    sampling: &Sampling,
    stream: bool,
) -> (ModelInferRequest, Extras) {
    let shape = info.scalar_shape();
    let mut inputs = vec![tensors::bytes(
        "text_input",
        vec![prompt.as_bytes().to_vec()],
        shape.clone(),
    )];
    let mut extras = Extras::default();
    let flag = |inputs: &mut Vec<InferInputTensor>, name: &str, value: bool| -> bool {
        let declared = info.has_input(name);
        if declared {
            inputs.push(tensors::boolean(name, value, shape.clone()));
        }
        declared
    };
    if info.decoupled {
        flag(&mut inputs, "stream", stream);
    }
    extras.echoes_prompt = !flag(&mut inputs, "exclude_input_in_output", true);
    let mut outputs = vec!["text_output"];
    match family {
        TritonFamily::Vllm => {
            if info.has_input("sampling_parameters") {
                let params = vllm_sampling(sampling);
                inputs.push(tensors::bytes(
                    "sampling_parameters",
                    vec![params.into_bytes()],
                    shape.clone(),
                ));
            }
            for (flag_name, output, slot) in [
                (
                    "return_finish_reason",
                    "finish_reason",
                    &mut extras.finish_reason,
                ),
                (
                    "return_num_input_tokens",
                    "num_input_tokens",
                    &mut extras.num_input_tokens,
                ),
                (
                    "return_num_output_tokens",
                    "num_output_tokens",
                    &mut extras.num_output_tokens,
                ),
            ] {
                if info.has_output(output) && flag(&mut inputs, flag_name, true) {
                    *slot = true;
                    outputs.push(output);
                }
            }
        }
        TritonFamily::Trtllm | TritonFamily::TrtllmBls => {
            inputs.push(tensors::int32(
                "max_tokens",
                sampling.max_tokens.min(i32::MAX as u32) as i32,
                shape.clone(),
            ));
            trtllm_sampling(info, sampling, &shape, &mut inputs);
            for output in ["num_input_tokens", "num_output_tokens"] {
                if info.has_output(output) {
                    outputs.push(output);
                }
            }
            extras.num_input_tokens = info.has_output("num_input_tokens");
            extras.num_output_tokens = info.has_output("num_output_tokens");
        }
        TritonFamily::Embeddings => {}
    }
    let mut parameters = std::collections::HashMap::new();
    parameters.insert(
        "triton_enable_empty_final_response".to_string(),
        tensors::bool_param(true),
    );
    let request = ModelInferRequest {
        model_name: model.to_string(),
        model_version: String::new(),
        id: id.to_string(),
        parameters,
        inputs,
        outputs: outputs
            .into_iter()
            .map(|name| InferRequestedOutputTensor {
                name: name.to_string(),
                parameters: Default::default(),
            })
            .collect(),
        raw_input_contents: Vec::new(),
    };
    (request, extras)
}

/// vLLM's `sampling_parameters` JSON.
fn vllm_sampling(s: &Sampling) -> String {
    let mut m = Map::new();
    m.insert("max_tokens".into(), json!(s.max_tokens));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("temperature", s.temperature.map(|v| json!(v)));
    put("top_p", s.top_p.map(|v| json!(v)));
    put("top_k", s.top_k.map(|v| json!(v)));
    put("presence_penalty", s.presence_penalty.map(|v| json!(v)));
    put("frequency_penalty", s.frequency_penalty.map(|v| json!(v)));
    put("seed", s.seed.map(|v| json!(v)));
    if !s.stop.is_empty() {
        m.insert("stop".into(), json!(s.stop));
    }
    Value::Object(m).to_string()
}

/// TensorRT-LLM's one-tensor-per-parameter inputs, each sent only when the model declares it.
fn trtllm_sampling(
    info: &ModelInfo,
    s: &Sampling,
    shape: &[i64],
    inputs: &mut Vec<InferInputTensor>,
) {
    let shape = shape.to_vec();
    let floats = [
        ("temperature", s.temperature),
        ("top_p", s.top_p),
        ("presence_penalty", s.presence_penalty),
        ("frequency_penalty", s.frequency_penalty),
    ];
    for (name, value) in floats {
        if let (Some(v), true) = (value, info.has_input(name)) {
            inputs.push(tensors::fp32(name, v, shape.clone()));
        }
    }
    if let (Some(k), true) = (s.top_k, info.has_input("top_k")) {
        inputs.push(tensors::int32("top_k", k, shape.clone()));
    }
    if let Some(seed) = s.seed {
        // Newer TensorRT-LLM calls it `seed`, older `random_seed`.
        if let Some(name) = ["seed", "random_seed"]
            .into_iter()
            .find(|n| info.has_input(n))
        {
            inputs.push(tensors::uint64(name, seed, shape.clone()));
        }
    }
    if !s.stop.is_empty() && info.has_input("stop_words") {
        let n = s.stop.len() as i64;
        let stop_shape = if info.max_batch_size > 0 {
            vec![1, n]
        } else {
            vec![n]
        };
        inputs.push(tensors::bytes(
            "stop_words",
            s.stop.iter().map(|w| w.as_bytes().to_vec()).collect(),
            stop_shape,
        ));
    }
}

#[cfg(test)]
mod tests;
