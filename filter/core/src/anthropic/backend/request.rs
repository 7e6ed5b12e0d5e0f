//! A chat completions request as a Messages request (Anthropic API version `2023-06-01`).
//!
//! Top-level parameters:
//! - `model` → the backend's model name (from [`RequestOptions`]);
//! - `messages` → `system` and `messages` (see `turns.rs`);
//! - `max_completion_tokens`, else `max_tokens` → `max_tokens` (Anthropic requires it: the
//!   backend's default when the client gave neither);
//! - `temperature` → `temperature`. OpenAI's range is 0 to 2, Anthropic's 0 to 1, and no
//!   scaling maps one onto the other: a value over 1 is refused (400 `unsupported_value`), or,
//!   when the backend drops what it cannot carry, sent as 1 (Anthropic's default);
//! - `top_p` → `top_p`; `stream` → `stream`; `stop` (a string or a list) → `stop_sequences`;
//! - `safety_identifier`, else `user` → `metadata.user_id`;
//! - `tools`, `tool_choice`, `parallel_tool_calls` → `tools` and `tool_choice` (`tools.rs`);
//! - `stream_options` is consumed: an Anthropic stream always reports usage, and the chunk
//!   stream always carries it (the flow removes it when the client did not ask);
//! - anything else: see `params.rs` (refused with a 400 naming it, or dropped).
//!
//! A body that is not a JSON object is a 400, like a value of the wrong type or range.

use serde::Serialize;
use serde_json::{Number, Value};

use super::params::{coded, invalid_type, invalid_value, without_counterpart};
use super::tools::{tool_choice, tools, Tool, ToolChoice};
use super::turns::{conversation, Turn};
use crate::errors::ApiError;

/// How a chat request is made into a Messages request for one backend.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The backend's model name, written into `model`.
    pub model: &'a str,
    /// Anthropic requires `max_tokens`: used when the client gave none.
    pub default_max_tokens: u32,
    /// Parameters Anthropic lacks: `false` = a 400 naming the parameter, `true` = dropped.
    pub drop_unsupported: bool,
}

/// The Messages request, in the order Anthropic's reference lists its fields.
#[derive(Debug, Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Tool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice>,
}

#[derive(Debug, Serialize)]
struct Metadata {
    user_id: String,
}

/// The parameters read along the way, before the request is assembled.
#[derive(Default)]
struct Params {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    user: Option<String>,
    safety_identifier: Option<String>,
}

/// The Messages request for a chat completions request `chat`: its JSON body, or the 400 the
/// client gets (see the module's documentation).
pub fn messages_request(chat: &[u8], opts: &RequestOptions) -> Result<Vec<u8>, ApiError> {
    let body = match serde_json::from_slice::<Value>(chat) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return Err(ApiError::not_an_object()),
        Err(_) => return Err(ApiError::bad_json()),
    };
    let messages = body
        .get("messages")
        .filter(|m| !m.is_null())
        .ok_or_else(|| {
            coded(
                Some("messages"),
                "Missing required parameter: 'messages'.".into(),
                "missing_required_parameter",
            )
        })?;
    let conversation = conversation(messages, opts.drop_unsupported)?;
    let tools = match body.get("tools") {
        None | Some(Value::Null) => None,
        Some(list) => Some(tools(list, opts.drop_unsupported)?).filter(|t| !t.is_empty()),
    };
    let tool_choice = tool_choice(
        body.get("tool_choice"),
        body.get("parallel_tool_calls"),
        tools.is_some(),
    )?;
    if conversation.turns.is_empty() {
        // Anthropic refuses a request without a turn; OpenAI's own answer is a 400 too.
        return Err(invalid_value(
            "messages",
            "expected at least one user or assistant message with content",
        ));
    }
    let mut out = MessagesRequest {
        model: opts.model,
        max_tokens: 0,
        system: conversation.system,
        messages: conversation.turns,
        stop_sequences: None,
        temperature: None,
        top_p: None,
        stream: None,
        metadata: None,
        tools,
        tool_choice,
    };
    let mut params = Params::default();
    for (key, value) in &body {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model"
            | "messages"
            | "tools"
            | "tool_choice"
            | "parallel_tool_calls"
            | "stream_options" => {}
            "max_tokens" => params.max_tokens = Some(token_limit("max_tokens", value)?),
            "max_completion_tokens" => {
                params.max_completion_tokens = Some(token_limit("max_completion_tokens", value)?)
            }
            "temperature" => out.temperature = temperature(value, opts.drop_unsupported)?,
            "top_p" => out.top_p = Some(fraction("top_p", value, 1.0)?),
            "stream" => {
                out.stream = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| invalid_type("stream", "a boolean"))?,
                )
            }
            "stop" => out.stop_sequences = stop(value)?,
            "user" => params.user = Some(string("user", value)?),
            "safety_identifier" => {
                params.safety_identifier = Some(string("safety_identifier", value)?)
            }
            _ => without_counterpart(key, value, opts.drop_unsupported)?,
        }
    }
    out.max_tokens = params
        .max_completion_tokens
        .or(params.max_tokens)
        .unwrap_or(u64::from(opts.default_max_tokens));
    out.metadata = params
        .safety_identifier
        .or(params.user)
        .map(|user_id| Metadata { user_id });
    serde_json::to_vec(&out)
        .map_err(|_| ApiError::internal("the Messages request could not be written"))
}

/// A positive whole number of tokens.
fn token_limit(param: &'static str, value: &Value) -> Result<u64, ApiError> {
    value
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid_value(param, "expected a positive integer"))
}

/// A number from 0 to `max`, passed on as the client gave it.
fn fraction(param: &'static str, value: &Value, max: f64) -> Result<Number, ApiError> {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| (0.0..=max).contains(&f)) => Ok(n.clone()),
        Value::Number(_) => Err(invalid_value(
            param,
            &format!("expected a number from 0 to {max}"),
        )),
        _ => Err(invalid_type(param, "a number")),
    }
}

/// OpenAI's temperature (0 to 2) as Anthropic's (0 to 1): see the module's documentation.
fn temperature(value: &Value, drop: bool) -> Result<Option<Number>, ApiError> {
    let t = fraction("temperature", value, 2.0)?;
    if t.as_f64().is_some_and(|f| f <= 1.0) {
        return Ok(Some(t));
    }
    if drop {
        return Ok(Some(Number::from(1)));
    }
    Err(coded(
        Some("temperature"),
        "Unsupported value: 'temperature' must be from 0 to 1 with this model.".into(),
        "unsupported_value",
    ))
}

/// The most stop sequences OpenAI's chat API takes.
const MAX_STOP: usize = 4;

/// `stop`: a string or a list of at most [`MAX_STOP`] strings; empty ones are left out.
fn stop(value: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let list: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid_type("stop", "a string or an array of strings"))?,
        _ => return Err(invalid_type("stop", "a string or an array of strings")),
    };
    if list.len() > MAX_STOP {
        // OpenAI's limit, which its own API enforces.
        return Err(invalid_value("stop", "expected at most 4 sequences"));
    }
    let list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
    Ok((!list.is_empty()).then_some(list))
}

fn string(param: &'static str, value: &Value) -> Result<String, ApiError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| invalid_type(param, "a string"))
}

#[cfg(test)]
mod tests;
