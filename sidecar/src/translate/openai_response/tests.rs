//! Golden tests of the sidecar's OpenAI output, through the pure path: scripted Triton
//! `ModelStreamInfer` messages → [`StreamDecoder`] → [`StreamEncoder`] (streamed) or
//! [`Aggregate`] (gathered), compared byte for byte with `golden/responses/*`
//! (`AIROUTER_BLESS=1` rewrites them). Ids and times are fixed, so the output is deterministic.

use std::collections::HashMap;

use airouter_core::config::{StreamText, TemplateSource, TritonFamily, TritonModel};
use serde_json::json;

use super::*;
use crate::kserve::pb::model_infer_response::InferOutputTensor;
use crate::kserve::pb::{ModelInferResponse, ModelStreamInferResponse};
use crate::kserve::tensors;
use crate::translate::chat_request::{self, ChatRequest};
use crate::translate::kserve_request::Extras;
use crate::translate::kserve_response::StreamDecoder;

/// One scripted stream message: a response to request `id` with the given outputs.
struct Reply {
    id: &'static str,
    outputs: Vec<(&'static str, &'static str, Vec<u8>)>,
    last: bool,
}

fn reply(id: &'static str) -> Reply {
    Reply {
        id,
        outputs: Vec::new(),
        last: false,
    }
}

impl Reply {
    fn bytes(mut self, name: &'static str, value: &[u8]) -> Self {
        let mut raw = (value.len() as u32).to_le_bytes().to_vec();
        raw.extend_from_slice(value);
        self.outputs.push((name, "BYTES", raw));
        self
    }
    fn text(self, text: &str) -> Self {
        self.bytes("text_output", text.as_bytes())
    }
    fn count(mut self, name: &'static str, n: u32) -> Self {
        self.outputs
            .push((name, "UINT32", n.to_le_bytes().to_vec()));
        self
    }
    fn last(mut self) -> Self {
        self.last = true;
        self
    }
    fn message(self) -> ModelStreamInferResponse {
        let (outputs, raw) = self
            .outputs
            .into_iter()
            .map(|(name, datatype, raw)| {
                let meta = InferOutputTensor {
                    name: name.into(),
                    datatype: datatype.into(),
                    shape: vec![1],
                    ..Default::default()
                };
                (meta, raw)
            })
            .unzip();
        let parameters = HashMap::from([(
            "triton_final_response".to_string(),
            tensors::bool_param(self.last),
        )]);
        ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(ModelInferResponse {
                model_name: "triton-model".into(),
                id: self.id.into(),
                outputs,
                raw_output_contents: raw,
                parameters,
                ..Default::default()
            }),
        }
    }
}

fn stream_error(message: &str) -> ModelStreamInferResponse {
    ModelStreamInferResponse {
        error_message: message.into(),
        infer_response: None,
    }
}

fn triton(stop_strings: &[&str]) -> TritonModel {
    TritonModel {
        family: TritonFamily::Vllm,
        template: TemplateSource::Builtin("llama3".into()),
        bos_token: String::new(),
        eos_token: String::new(),
        max_tokens: 16,
        stream_text: StreamText::Auto,
        stop_strings: stop_strings.iter().map(|s| s.to_string()).collect(),
        eos_stops: false,
    }
}

const VLLM: Extras = Extras {
    finish_reason: true,
    num_input_tokens: true,
    num_output_tokens: true,
    echoes_prompt: false,
};

/// The events the driver would send for `script`: what the decoder gives, a failure as the
/// last event, and the usage once every choice is complete.
fn events(mut decoder: StreamDecoder, script: Vec<Reply>) -> Vec<Event> {
    events_of(&mut decoder, script.into_iter().map(Reply::message))
}

fn events_of(
    decoder: &mut StreamDecoder,
    script: impl IntoIterator<Item = ModelStreamInferResponse>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for msg in script {
        match decoder.accept(&msg) {
            Ok(e) => events.extend(e),
            Err(e) => {
                events.push(Event::Failed(e));
                return events;
            }
        }
    }
    if decoder.is_complete() {
        let (prompt, completion) = decoder.usage();
        events.push(Event::Usage { prompt, completion });
    }
    events
}

fn completion(req: &ChatRequest, chat: bool, choices: usize, prompts: &[String]) -> Completion {
    Completion {
        chat,
        id: if chat { "chatcmpl-abc" } else { "cmpl-abc" }.into(),
        created: 1_700_000_000,
        model: "my-model".into(),
        choices,
        echo: req.echo.then(|| prompts.to_vec()),
    }
}

/// What a streaming client reads.
fn streamed(out: Completion, include_usage: bool, events: Vec<Event>) -> String {
    let mut encoder = StreamEncoder::new(out, include_usage);
    let mut bytes = Vec::new();
    for event in events {
        bytes.extend(encoder.encode(event));
        if encoder.is_ended() {
            break;
        }
    }
    bytes.extend(encoder.close());
    String::from_utf8(bytes.concat()).unwrap()
}

/// What a client that does not stream reads: the status and the body.
fn aggregated(out: Completion, events: Vec<Event>) -> String {
    let mut answer = Aggregate::new(out);
    let mut result = None;
    for event in events {
        match answer.push(event) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                result = Some(Err(e));
                break;
            }
        }
    }
    let (status, body) = match result.unwrap_or_else(|| answer.finish()) {
        Ok(v) => (200, json_body(&v)),
        Err(e) => (e.status, error_body(&e)),
    };
    format!("{status} {}\n", String::from_utf8(body.to_vec()).unwrap())
}

fn golden(name: &str, text: &str) {
    crate::golden::check(&format!("responses/{name}"), text);
}

/// A vLLM model asked for one streamed chat choice.
fn one_chat_choice(model: &TritonModel) -> (StreamDecoder, Completion) {
    let req = chat_request::chat(
        &json!({"messages":[{"role":"user","content":"Hi"}],"stream":true}),
        16,
    )
    .unwrap();
    let prompts = vec!["<prompt>".to_string()];
    let decoder = StreamDecoder::new("abc", "my-model", model, &req, VLLM, true, prompts);
    let out = completion(&req, true, decoder.choices(), &[]);
    (decoder, out)
}

/// A vLLM model streaming two choices, interleaved, with its own finish reasons and counts.
fn two_chat_choices() -> (ChatRequest, StreamDecoder, Vec<Reply>) {
    let req = chat_request::chat(
        &json!({"messages":[{"role":"user","content":"Hi"}],"n":2,"stream":true,"stream_options":{"include_usage":true}}),
        16,
    )
    .unwrap();
    let prompts = vec!["<prompt>".to_string(); 2];
    let decoder = StreamDecoder::new("abc", "my-model", &triton(&[]), &req, VLLM, true, prompts);
    let script = vec![
        reply("abc-0").text("Hel").count("num_output_tokens", 1),
        reply("abc-1").text("Hi").count("num_output_tokens", 1),
        reply("abc-0").text("lo").count("num_output_tokens", 1),
        reply("abc-0")
            .bytes("finish_reason", b"stop")
            .count("num_input_tokens", 5)
            .last(),
        reply("abc-1")
            .bytes("finish_reason", b"length")
            .count("num_input_tokens", 5)
            .last(),
    ];
    (req, decoder, script)
}

#[test]
fn chat_streamed_and_gathered() {
    let (req, decoder, script) = two_chat_choices();
    let out = completion(&req, true, decoder.choices(), &[]);
    let events = events(decoder, script);
    golden(
        "chat_stream.sse",
        &streamed(out.clone(), true, events.clone()),
    );
    golden("chat.json", &aggregated(out, events));
}

#[test]
fn a_failure_mid_stream_is_an_error_event_then_done() {
    let (mut decoder, out) = one_chat_choice(&triton(&[]));
    let script = [
        reply("abc-0").text("Hel").message(),
        stream_error("engine died mid-stream"),
    ];
    let events = events_of(&mut decoder, script);
    golden(
        "chat_stream_error.sse",
        &streamed(out.clone(), false, events.clone()),
    );
    golden("chat_error.json", &aggregated(out, events));
}

#[test]
fn a_stream_that_stops_early_ends_with_an_error_event() {
    let (decoder, out) = one_chat_choice(&triton(&[]));
    let script = vec![reply("abc-0").text("Hel")];
    golden(
        "chat_stream_cut.sse",
        &streamed(out, false, events(decoder, script)),
    );
}

#[test]
fn text_fixups_reach_the_client_as_clean_deltas() {
    // A character split across pieces, and an end-of-turn marker split across two more.
    let (decoder, out) = one_chat_choice(&triton(&["<|eot_id|>"]));
    let script = vec![
        reply("abc-0").text("Caf"),
        reply("abc-0").bytes("text_output", &[0xC3]),
        reply("abc-0").bytes("text_output", &[0xA9, b'!']),
        reply("abc-0").text("<|eot"),
        reply("abc-0").text("_id|>").last(),
    ];
    let events = events(decoder, script);
    golden(
        "chat_stream_fixups.sse",
        &streamed(out.clone(), false, events.clone()),
    );
    golden("chat_fixups.json", &aggregated(out, events));
}

#[test]
fn legacy_completion_streamed_with_echo() {
    // A TensorRT-LLM model that repeats the prompt and sends the whole text so far each time.
    let req = chat_request::completion(
        &json!({"prompt":"Say","echo":true,"stream":true,"stream_options":{"include_usage":true}}),
        16,
    )
    .unwrap();
    let prompts = vec!["Say".to_string()];
    let extras = Extras {
        echoes_prompt: true,
        ..Extras::default()
    };
    let decoder = StreamDecoder::new(
        "abc",
        "my-model",
        &triton(&[]),
        &req,
        extras,
        true,
        prompts.clone(),
    );
    let out = completion(&req, false, decoder.choices(), &prompts);
    let script = vec![
        reply("abc-0").text("Say hi"),
        reply("abc-0").text("Say hi there"),
        reply("abc-0").last(),
    ];
    golden(
        "completions_stream_echo.sse",
        &streamed(out, true, events(decoder, script)),
    );
}

#[test]
fn legacy_completion_gathered_for_two_prompts() {
    // A model that is not decoupled: one response per prompt, lengths estimated from the text.
    let req = chat_request::completion(&json!({"prompt":["a","b"],"max_tokens":2}), 16).unwrap();
    let decoder = StreamDecoder::new(
        "abc",
        "my-model",
        &triton(&[]),
        &req,
        Extras::default(),
        false,
        req.prompts.clone(),
    );
    let out = completion(&req, false, decoder.choices(), &req.prompts);
    let script = vec![
        reply("abc-0").text("four words of text"),
        reply("abc-1").text("z"),
    ];
    golden(
        "completions.json",
        &aggregated(out, events(decoder, script)),
    );
}

#[test]
fn embeddings_as_floats_and_base64() {
    let vectors = [vec![0.5, -1.0], vec![0.25, 2.0]];
    for (name, base64) in [("float", false), ("base64", true)] {
        let body = json_body(&embeddings("my-embedder", &vectors, base64, 3));
        let got = format!("200 {}\n", String::from_utf8(body.to_vec()).unwrap());
        golden(&format!("embeddings_{name}.json"), &got);
    }
}

#[test]
fn errors_are_openai_envelopes_in_bodies_and_events() {
    let e = ApiError::model_not_found("my-model");
    assert_eq!(error_body(&e), Bytes::from(e.body()));
    let mut event = b"data: ".to_vec();
    event.extend(e.body());
    event.extend(b"\n\n");
    assert_eq!(sse_error(&e), Bytes::from(event));
    assert_eq!(sse_done(), Bytes::from_static(b"data: [DONE]\n\n"));
}
