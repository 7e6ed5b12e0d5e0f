//! OpenAI `POST /v1/chat/completions` and legacy `POST /v1/completions` request bodies → a
//! checked [`ChatRequest`], refusing what cannot be served with OpenAI-style 400s that name the
//! parameter. [`super::kserve_request`] turns it into Triton requests.

use airouter_core::errors::ApiError;
use serde_json::Value;

use crate::templates::Message;

/// Most choices one request may ask for.
pub const MAX_N: u64 = 8;

/// Sampling settings from the client, already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
}

/// A chat or legacy completion request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Chat: the conversation. Completions: empty.
    pub messages: Vec<Message>,
    /// Completions: one prompt per entry. Chat: empty (the template makes the prompt).
    pub prompts: Vec<String>,
    pub n: u32,
    pub stream: bool,
    pub include_usage: bool,
    /// Legacy completions' `echo`: the prompt starts the returned text.
    pub echo: bool,
    pub sampling: Sampling,
}

fn number(body: &Value, key: &'static str, min: f64, max: f64) -> Result<Option<f32>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x as f32)),
            _ => Err(ApiError::invalid_param(
                key,
                format!("'{key}' must be a number between {min} and {max}."),
            )),
        },
    }
}

fn integer(body: &Value, key: &'static str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
            _ => Err(ApiError::invalid_param(
                key,
                format!("'{key}' must be an integer between {min} and {max}."),
            )),
        },
    }
}

fn boolean(body: &Value, key: &'static str) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid_param(
            key,
            format!("'{key}' must be a boolean."),
        )),
    }
}

/// Most stop strings one request may give (OpenAI's limit).
pub const MAX_STOP_STRINGS: usize = 4;

/// Longest stop string, in UTF-8 bytes. OpenAI sets none; a model looks for every stop string in
/// the text it generates, while every other request waits, so a long one is refused up front.
pub const MAX_STOP_BYTES: usize = 1024;

/// `stop`: a string or a list of up to [`MAX_STOP_STRINGS`] strings, each at most
/// [`MAX_STOP_BYTES`] long.
fn stop(body: &Value) -> Result<Vec<String>, ApiError> {
    let stops: Vec<String> = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= MAX_STOP_STRINGS => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid_param("stop", "'stop' entries must be strings.")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "stop",
                format!("'stop' must be a string or a list of at most {MAX_STOP_STRINGS} strings."),
            ))
        }
    };
    if stops.iter().any(|s| s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::invalid_param(
            "stop",
            format!("'stop' strings must be at most {MAX_STOP_BYTES} bytes long."),
        ));
    }
    Ok(stops)
}

fn common(body: &Value, default_max_tokens: u32) -> Result<(Sampling, u32, bool, bool), ApiError> {
    if !body.is_object() {
        return Err(ApiError::not_an_object());
    }
    let max_tokens = integer(body, "max_completion_tokens", 1, u32::MAX as i64)?
        .or(integer(body, "max_tokens", 1, u32::MAX as i64)?)
        .map_or(default_max_tokens, |v| v as u32);
    let n = integer(body, "n", 1, MAX_N as i64)?.unwrap_or(1) as u32;
    let stream = boolean(body, "stream")?;
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => matches!(o.get("include_usage"), Some(Value::Bool(true))),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "stream_options",
                "'stream_options' must be an object.",
            ))
        }
    };
    if include_usage && !stream {
        return Err(ApiError::invalid_param(
            "stream_options",
            "'stream_options' is only allowed when 'stream' is true.",
        ));
    }
    let sampling = Sampling {
        max_tokens,
        temperature: number(body, "temperature", 0.0, 2.0)?,
        top_p: number(body, "top_p", 0.0, 1.0)?,
        top_k: integer(body, "top_k", -1, i32::MAX as i64)?.map(|v| v as i32),
        presence_penalty: number(body, "presence_penalty", -2.0, 2.0)?,
        frequency_penalty: number(body, "frequency_penalty", -2.0, 2.0)?,
        seed: integer(body, "seed", i64::MIN, i64::MAX)?.map(|v| v as u64),
        stop: stop(body)?,
    };
    for key in ["tools", "functions"] {
        if body
            .get(key)
            .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Err(ApiError::invalid_param(
                key,
                format!("'{key}' is not supported by this model."),
            ));
        }
    }
    Ok((sampling, n, stream, include_usage))
}

/// A parameter that is a string or a non-empty list of strings (`prompt`, `input`). Token
/// arrays are refused: the models behind the sidecar take text.
pub fn text_list(body: &Value, param: &'static str) -> Result<Vec<String>, ApiError> {
    match body.get(param) {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect())
        }
        Some(Value::Array(items)) if items.iter().any(|i| i.is_number() || i.is_array()) => {
            Err(ApiError::invalid_param(
                param,
                "Token arrays are not supported by this model; send text.",
            ))
        }
        _ => Err(ApiError::invalid_param(
            param,
            format!("'{param}' must be a string or a non-empty list of strings."),
        )),
    }
}

/// Text of a message's `content`: a string, or the text parts of a list.
fn content_text(content: &Value, i: usize) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (Some(other), _) => {
                        return Err(ApiError::invalid_param("messages", format!("messages[{i}]: content parts of type '{other}' are not supported by this model; it takes text only.")))
                    }
                    _ => return Err(ApiError::invalid_param("messages", format!("messages[{i}]: a content part needs a 'type'."))),
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid_param(
            "messages",
            format!("messages[{i}].content must be a string or a list of parts."),
        )),
    }
}

/// A chat completion request body; `default_max_tokens` applies when the client sets none.
pub fn chat(body: &Value, default_max_tokens: u32) -> Result<ChatRequest, ApiError> {
    let (sampling, n, stream, include_usage) = common(body, default_max_tokens)?;
    let Some(Value::Array(raw)) = body.get("messages") else {
        return Err(ApiError::invalid_param(
            "messages",
            "'messages' must be a non-empty list of messages.",
        ));
    };
    if raw.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "'messages' must be a non-empty list of messages.",
        ));
    }
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid_param("messages", format!("messages[{i}] needs a 'role'."))
        })?;
        let role = if role == "developer" { "system" } else { role };
        let content = content_text(m.get("content").unwrap_or(&Value::Null), i)?;
        messages.push(Message {
            role: role.to_string(),
            content,
        });
    }
    Ok(ChatRequest {
        messages,
        prompts: Vec::new(),
        n,
        stream,
        include_usage,
        echo: false,
        sampling,
    })
}

/// A legacy completion request body; `default_max_tokens` applies when the client sets none.
pub fn completion(body: &Value, default_max_tokens: u32) -> Result<ChatRequest, ApiError> {
    let (sampling, n, stream, include_usage) = common(body, default_max_tokens)?;
    let prompts = text_list(body, "prompt")?;
    if prompts.len() * n as usize > MAX_N as usize * 4 {
        return Err(ApiError::invalid_param(
            "prompt",
            "Too many prompts times 'n' in one request.",
        ));
    }
    Ok(ChatRequest {
        messages: Vec::new(),
        prompts,
        n,
        stream,
        include_usage,
        echo: boolean(body, "echo")?,
        sampling,
    })
}

#[cfg(test)]
mod tests;
