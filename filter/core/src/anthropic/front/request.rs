//! A Messages request (`POST /v1/messages`) and a token counting request
//! (`POST /v1/messages/count_tokens`) read at the top level and written as a chat request:
//! required fields, sampling parameters, `metadata`, `stream`, and every field the router does
//! not know refused by name. Messages are `content`'s job, tools `tools`'.

use std::fmt;

use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::content::{self, ChatMessage};
use super::tools::{self, ChatTool, ToolChoice};
use super::{ChatRequest, FrontError};

/// Top-level fields of a Messages request the router reads.
const MESSAGES_FIELDS: [&str; 15] = [
    "model",
    "max_tokens",
    "messages",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "cache_control",
];

/// Top-level fields of a token counting request the router reads.
const COUNT_TOKENS_FIELDS: [&str; 6] = [
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
];

/// The chat request written for the backend.
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<ChatTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// A Messages request as a chat request (see the `front` module doc for what maps to what).
/// Errors are 400 `invalid_request_error`s naming the field.
pub fn chat_request(messages: &[u8]) -> Result<ChatRequest, FrontError> {
    let top = top_level(messages, &MESSAGES_FIELDS)?;
    let max_tokens = match top.get("max_tokens") {
        None | Some(Value::Null) => return Err(FrontError::invalid("max_tokens: Field required")),
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| FrontError::invalid("max_tokens: must be an integer of at least 1"))?,
    };
    let stream = match top.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FrontError::invalid("stream: must be a boolean")),
    };
    let mut chat = chat_body(&top)?;
    chat.max_tokens = Some(max_tokens);
    chat.stream = stream;
    chat.stream_options = stream.then_some(StreamOptions {
        include_usage: true,
    });
    chat.temperature = number(&top, "temperature")?;
    chat.top_p = number(&top, "top_p")?;
    chat.top_k = match top.get("top_k") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| FrontError::invalid("top_k: must be a non-negative integer"))?,
        ),
    };
    chat.stop = stop_sequences(top.get("stop_sequences"))?;
    chat.user = user(top.get("metadata"))?;
    if top
        .get("service_tier")
        .is_some_and(|v| !v.is_null() && !v.is_string())
    {
        return Err(FrontError::invalid("service_tier: must be a string"));
    }
    finish(chat, stream)
}

/// A token counting request, checked as a Messages request is (its own fields: no
/// `max_tokens`, no sampling), and the chat request it makes (no `max_tokens`, no stream),
/// whose prompt the router can count or estimate: the model asked for, and that body.
pub fn count_tokens_request(body: &[u8]) -> Result<(String, Vec<u8>), FrontError> {
    let top = top_level(body, &COUNT_TOKENS_FIELDS)?;
    let chat = chat_body(&top)?;
    let request = finish(chat, false)?;
    Ok((request.model, request.body))
}

/// The fields both requests share: model, system and messages, tools, thinking.
fn chat_body(top: &Map<String, Value>) -> Result<ChatBody<'_>, FrontError> {
    let model = match top.get("model") {
        Some(Value::String(m)) => m.as_str(),
        None | Some(Value::Null) => return Err(FrontError::invalid("model: Field required")),
        Some(_) => return Err(FrontError::invalid("model: must be a string")),
    };
    let mut messages: Vec<ChatMessage> = content::system(top.get("system"))?.into_iter().collect();
    content::messages(top.get("messages"), &mut messages)?;
    let (tool_choice, parallel_tool_calls) = tools::tool_choice(top.get("tool_choice"))?;
    thinking(top.get("thinking"))?;
    Ok(ChatBody {
        model,
        messages,
        max_tokens: None,
        stream: false,
        stream_options: None,
        temperature: None,
        top_p: None,
        top_k: None,
        stop: None,
        user: None,
        tools: tools::tools(top.get("tools"))?,
        tool_choice,
        parallel_tool_calls,
    })
}

fn finish(chat: ChatBody<'_>, stream: bool) -> Result<ChatRequest, FrontError> {
    let body = serde_json::to_vec(&chat)
        .map_err(|e| FrontError::invalid(format!("the request could not be translated: {e}")))?;
    Ok(ChatRequest {
        body,
        model: chat.model.to_string(),
        stream,
    })
}

/// The body's top-level object, each key once, every key one of `known`.
fn top_level(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, FrontError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(FrontError::invalid(
            "The request body must be a JSON object.",
        ));
    }
    let Object(top) = serde_json::from_slice(body)
        .map_err(|e| FrontError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let unknown: Vec<&str> = top
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if !unknown.is_empty() {
        let names = unknown
            .iter()
            .map(|k| crate::text::concat(&["`", k, "`"]))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(FrontError::invalid(format!(
            "{names}: not a field this router accepts on the Messages API (unknown, or a feature it does not serve)"
        )));
    }
    Ok(top)
}

/// A JSON object whose keys are each there once.
struct Object(Map<String, Value>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if out.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "the key `{key}` is there twice"
                )));
            }
            out.insert(key, value);
        }
        Ok(Object(out))
    }
}

/// An optional number (`temperature`, `top_p`), passed on as written.
fn number<'a>(top: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Value>, FrontError> {
    match top.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(_)) => Ok(Some(v)),
        Some(_) => Err(FrontError::invalid(format!("{name}: must be a number"))),
    }
}

/// `stop_sequences` as chat's `stop` (none when empty).
fn stop_sequences(value: Option<&Value>) -> Result<Option<Vec<&str>>, FrontError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(FrontError::invalid(
                "stop_sequences: must be a list of strings",
            ))
        }
    };
    let stops = list
        .iter()
        .map(Value::as_str)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| FrontError::invalid("stop_sequences: must be a list of strings"))?;
    Ok((!stops.is_empty()).then_some(stops))
}

/// `metadata.user_id` as chat's `user`; `metadata` has no other field.
fn user(value: Option<&Value>) -> Result<Option<&str>, FrontError> {
    let metadata = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(FrontError::invalid("metadata: must be an object")),
    };
    if let Some(k) = metadata.keys().find(|k| *k != "user_id") {
        return Err(FrontError::invalid(format!(
            "metadata.{k}: Extra inputs are not permitted"
        )));
    }
    match metadata.get("user_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(u)) => Ok(Some(u)),
        Some(_) => Err(FrontError::invalid("metadata.user_id: must be a string")),
    }
}

/// `thinking` is checked and not passed on (see the `front` module doc).
fn thinking(value: Option<&Value>) -> Result<(), FrontError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(t) => match t.get("type").and_then(Value::as_str) {
            Some("enabled" | "disabled" | "adaptive") => Ok(()),
            Some(other) => Err(FrontError::invalid(format!(
                "thinking.type: `{other}` is not one of `enabled`, `disabled`, `adaptive`"
            ))),
            None => Err(FrontError::invalid("thinking.type: Field required")),
        },
    }
}

#[cfg(test)]
mod tests;
