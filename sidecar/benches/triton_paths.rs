//! Criterion benchmarks of the sidecar's per-request work: the OpenAI chat body to a KServe v2
//! request (parse, chat template, tensors, protobuf encoding), one streamed Triton response back
//! to text (protobuf decoding, BYTES tensor), the stream fix-ups per piece, and template rendering
//! alone. `make bench` runs them; no test asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use airouter_core::config::{compile, StreamText, TritonFamily};
use airouter_sidecar::kserve::model_info::ModelInfo;
use airouter_sidecar::kserve::pb::infer_parameter::ParameterChoice;
use airouter_sidecar::kserve::pb::model_infer_response::InferOutputTensor;
use airouter_sidecar::kserve::pb::{DataType, InferParameter, ModelInferResponse};
use airouter_sidecar::templates::{ChatTemplate, Message};
use airouter_sidecar::translate::kserve_request::{self, Extras};
use airouter_sidecar::translate::text_stream::TextAssembler;
use airouter_sidecar::translate::{chat_request, kserve_response};
use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message as _;

const CONFIG: &str = r#"
[backends.t]
kind = "triton"
url = "grpc://127.0.0.1:8001"
[[models]]
name = "chat"
apis = ["chat"]
target = { backend = "t", model = "vllm_model" }
triton = { family = "vllm", template = "llama3" }
"#;

fn template() -> ChatTemplate {
    let plan = compile("bench.toml", CONFIG, &|_| None).unwrap();
    let t = plan.models[0].triton.as_ref().unwrap();
    ChatTemplate::load(t, Path::new(".")).unwrap().unwrap()
}

fn vllm_info() -> ModelInfo {
    let inputs = [
        ("text_input", DataType::TypeString),
        ("stream", DataType::TypeBool),
        ("sampling_parameters", DataType::TypeString),
        ("exclude_input_in_output", DataType::TypeBool),
        ("return_finish_reason", DataType::TypeBool),
        ("return_num_input_tokens", DataType::TypeBool),
        ("return_num_output_tokens", DataType::TypeBool),
    ];
    ModelInfo {
        decoupled: true,
        max_batch_size: 0,
        inputs: inputs
            .iter()
            .map(|(n, t)| (n.to_string(), (*t, true)))
            .collect::<HashMap<_, _>>(),
        outputs: [
            "text_output",
            "finish_reason",
            "num_input_tokens",
            "num_output_tokens",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }
}

fn chat_body() -> serde_json::Value {
    serde_json::json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "lorem ipsum dolor sit amet ".repeat(32)}
        ],
        "max_tokens": 64, "temperature": 0.3, "stream": true
    })
}

fn encode(c: &mut Criterion) {
    let tmpl = template();
    let info = vllm_info();
    let body = chat_body();
    c.bench_function("triton_encode_chat_request_1kb", |b| {
        b.iter(|| {
            let req = chat_request::chat(black_box(&body), 256).unwrap();
            let prompt = tmpl.render(&req.messages).unwrap();
            let (grpc, _) = kserve_request::build(
                TritonFamily::Vllm,
                &info,
                "vllm_model",
                "req-1",
                &prompt,
                &req.sampling,
                true,
            );
            grpc.encode_to_vec()
        })
    });
    let messages: Vec<Message> = chat_request::chat(&body, 256).unwrap().messages;
    c.bench_function("template_render_llama3", |b| {
        b.iter(|| tmpl.render(black_box(&messages)).unwrap())
    });
}

fn one_piece_response() -> Vec<u8> {
    let text = b" token";
    let mut raw = (text.len() as u32).to_le_bytes().to_vec();
    raw.extend_from_slice(text);
    let mut parameters = HashMap::new();
    parameters.insert(
        "triton_final_response".to_string(),
        InferParameter {
            parameter_choice: Some(ParameterChoice::BoolParam(false)),
        },
    );
    ModelInferResponse {
        model_name: "vllm_model".into(),
        id: "req-1".into(),
        outputs: vec![InferOutputTensor {
            name: "text_output".into(),
            datatype: "BYTES".into(),
            shape: vec![1],
            ..Default::default()
        }],
        raw_output_contents: vec![raw],
        parameters,
        ..Default::default()
    }
    .encode_to_vec()
}

fn decode(c: &mut Criterion) {
    let wire = one_piece_response();
    let extras = Extras::default();
    c.bench_function("triton_decode_stream_response", |b| {
        b.iter(|| {
            let resp = ModelInferResponse::decode(black_box(wire.as_slice())).unwrap();
            kserve_response::decode(&resp, extras, true).unwrap()
        })
    });
    c.bench_function("stream_fixups_per_piece_delta_with_stop_string", |b| {
        let mut asm = TextAssembler::new(StreamText::Delta, None, vec!["<|eot_id|>".into()]);
        b.iter(|| asm.push(black_box(b" token")))
    });
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
