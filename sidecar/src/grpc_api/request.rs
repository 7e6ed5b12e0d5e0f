//! A call's [`GenerationRequest`] as the OpenAI request the sidecar sends for it: a chat completion
//! for `messages`, a legacy completion for `prompt`, with `model` (prefixed by `provider/` when a
//! provider is given), `max_tokens`, the typed parameters and the `extra` ones; streamed calls
//! ask for `stream` and for usage at the end (`stream_options.include_usage`). What cannot make
//! a valid request is refused here as `INVALID_ARGUMENT`, naming the field: among them a
//! provider or model with control or invisible formatting characters, or a name longer than the
//! router takes (the filter's own checks, made here so the field is named and nothing of the
//! name is echoed). A request whose OpenAI body would be over the listener's limit is
//! `RESOURCE_EXHAUSTED`.

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};
use tonic::Status;

use super::proto::{GenerationRequest, Parameters};
use airouter_core::flow::target_request::{is_format_char, MAX_MODEL_NAME_BYTES};

use super::status::{invalid_argument, request_too_large};

/// Which OpenAI API a call becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiApi {
    /// `POST /v1/chat/completions`, for a conversation.
    Chat,
    /// `POST /v1/completions`, for a prompt.
    Completions,
}

impl OpenAiApi {
    /// The path on Envoy's OpenAI listener.
    pub fn path(self) -> &'static str {
        match self {
            OpenAiApi::Chat => "/v1/chat/completions",
            OpenAiApi::Completions => "/v1/completions",
        }
    }
}

/// The OpenAI request for one call: its API and JSON body.
#[derive(Debug)]
pub struct OpenAiRequest {
    pub api: OpenAiApi,
    pub body: Vec<u8>,
}

impl OpenAiRequest {
    /// The request if its body is at most `max_bytes` (the OpenAI listener's body limit, which
    /// would answer a larger one 413), else `RESOURCE_EXHAUSTED`.
    pub fn within(self, max_bytes: usize) -> Result<Self, Status> {
        if self.body.len() > max_bytes {
            return Err(request_too_large(
                "the OpenAI request this call becomes",
                max_bytes,
            ));
        }
        Ok(self)
    }
}

/// Request fields this API sets itself, which `parameters.extra` may not.
const OWN_FIELDS: [&str; 14] = [
    "model",
    "messages",
    "prompt",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "n",
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
];

/// The OpenAI request for `req`, streamed or not; `INVALID_ARGUMENT` for what cannot be one.
pub fn build(req: &GenerationRequest, stream: bool) -> Result<OpenAiRequest, Status> {
    if req.model.is_empty() {
        return Err(invalid_argument("model", "model is required"));
    }
    for (field, value) in [("provider", &req.provider), ("model", &req.model)] {
        if value.chars().any(|c| c.is_control() || is_format_char(c)) {
            return Err(invalid_argument(
                field,
                "must not contain control or invisible formatting characters",
            ));
        }
    }
    let model = if req.provider.is_empty() {
        req.model.clone()
    } else {
        format!("{}/{}", req.provider, req.model)
    };
    if model.len() > MAX_MODEL_NAME_BYTES {
        return Err(invalid_argument(
            "model",
            &format!(
                "the model name (with its provider) is longer than {MAX_MODEL_NAME_BYTES} bytes"
            ),
        ));
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::String(model));
    let api = match (req.messages.is_empty(), req.prompt.is_empty()) {
        (false, false) => {
            return Err(invalid_argument(
                "messages",
                "set messages or prompt, not both",
            ))
        }
        (true, true) => {
            return Err(invalid_argument(
                "messages",
                "messages or prompt is required",
            ))
        }
        (false, true) => {
            let mut messages = Vec::with_capacity(req.messages.len());
            for (i, m) in req.messages.iter().enumerate() {
                if m.role.is_empty() {
                    return Err(invalid_argument(
                        &format!("messages[{i}].role"),
                        "every message needs a role",
                    ));
                }
                messages.push(serde_json::json!({ "role": m.role, "content": m.content }));
            }
            body.insert("messages".into(), Value::Array(messages));
            OpenAiApi::Chat
        }
        (true, false) => {
            body.insert("prompt".into(), Value::String(req.prompt.clone()));
            OpenAiApi::Completions
        }
    };
    match req.max_tokens {
        Some(0) => {
            return Err(invalid_argument(
                "max_tokens",
                "max_tokens must be at least 1 (leave it unset for the model's own limit)",
            ))
        }
        Some(n) => {
            body.insert("max_tokens".into(), Value::from(n));
        }
        None => {}
    }
    if let Some(p) = &req.parameters {
        parameters(p, &mut body)?;
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
        body.insert(
            "stream_options".into(),
            serde_json::json!({ "include_usage": true }),
        );
    }
    let body = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| Status::internal(format!("the request could not be encoded: {e}")))?;
    Ok(OpenAiRequest { api, body })
}

/// Adds the set parameters to `body`, then the extra ones.
fn parameters(p: &Parameters, body: &mut Map<String, Value>) -> Result<(), Status> {
    let numbers = [
        ("temperature", p.temperature),
        ("top_p", p.top_p),
        ("presence_penalty", p.presence_penalty),
        ("frequency_penalty", p.frequency_penalty),
    ];
    for (name, value) in numbers {
        if let Some(v) = value {
            let n = Number::from_f64(v).ok_or_else(|| {
                invalid_argument(&format!("parameters.{name}"), "must be a finite number")
            })?;
            body.insert(name.into(), Value::Number(n));
        }
    }
    if !p.stop.is_empty() {
        body.insert("stop".into(), Value::from(p.stop.clone()));
    }
    if let Some(seed) = p.seed {
        body.insert("seed".into(), Value::from(seed));
    }
    if !p.user.is_empty() {
        body.insert("user".into(), Value::String(p.user.clone()));
    }
    for (name, value) in p.extra.iter().flat_map(|s| &s.fields) {
        let field = format!("parameters.extra.{name}");
        if OWN_FIELDS.contains(&name.as_str()) || name == "user" {
            return Err(invalid_argument(
                &field,
                "this API sets it itself: use its own field",
            ));
        }
        body.insert(name.clone(), json(value, &field)?);
    }
    Ok(())
}

/// A `google.protobuf.Value` as JSON. Numbers are doubles there; whole ones within 2^53 are
/// written as integers, as OpenAI's integer parameters (`top_logprobs`, token ids) want them.
fn json(value: &prost_types::Value, field: &str) -> Result<Value, Status> {
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => {
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            if n.fract() == 0.0 && n.abs() < EXACT {
                Value::from(*n as i64)
            } else {
                Value::Number(
                    Number::from_f64(*n)
                        .ok_or_else(|| invalid_argument(field, "must be a finite number"))?,
                )
            }
        }
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .iter()
                .map(|v| json(v, field))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), json(v, field)?)))
                .collect::<Result<_, Status>>()?,
        ),
    })
}

#[cfg(test)]
mod tests;
