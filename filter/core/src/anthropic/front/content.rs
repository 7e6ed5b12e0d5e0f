//! A Messages request's `system` and `messages` made into chat messages: content blocks to
//! text and `image_url` parts, `tool_use` to `tool_calls`, `tool_result` to `tool` messages,
//! thinking dropped, the rest refused (see the `front` module doc for each decision).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::FrontError;

/// A chat message, as OpenAI's chat completions API reads it.
#[derive(Serialize, Debug)]
#[serde(tag = "role", rename_all = "lowercase")]
pub(super) enum ChatMessage<'a> {
    System {
        content: Content<'a>,
    },
    User {
        content: Content<'a>,
    },
    Assistant {
        /// `null` for a turn of tool calls only.
        content: Option<Content<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: Cow<'a, str>,
    },
}

/// A message's content: text, or parts when it has images.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

/// A content part.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

/// An image by URL (a `data:` URL for base64 data).
#[derive(Serialize, Debug)]
pub(super) struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

/// An assistant's tool call.
#[derive(Serialize, Debug)]
pub(super) struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

/// A tool call's function: its name and its input as JSON text.
#[derive(Serialize, Debug)]
pub(super) struct FunctionCall<'a> {
    name: &'a str,
    arguments: String,
}

/// `system` (a string or text blocks) as the first chat message, unless it is empty.
pub(super) fn system(value: Option<&Value>) -> Result<Option<ChatMessage<'_>>, FrontError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::Array(blocks)) => {
            let texts = blocks
                .iter()
                .enumerate()
                .map(|(j, b)| match block_type(b, "system", j)? {
                    "text" => text_of(b, "system", j),
                    other => Err(unsupported("system", j, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            joined(&texts)
        }
        Some(_) => {
            return Err(FrontError::invalid(
                "system: must be a string or a list of text blocks",
            ))
        }
    };
    Ok((!text.is_empty()).then_some(ChatMessage::System {
        content: Content::Text(text),
    }))
}

/// `messages`, each made into chat messages (a user message with tool results into several).
pub(super) fn messages<'a>(
    value: Option<&'a Value>,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), FrontError> {
    let list = match value {
        Some(Value::Array(list)) if !list.is_empty() => list,
        None | Some(Value::Null) => return Err(FrontError::invalid("messages: Field required")),
        Some(Value::Array(_)) => {
            return Err(FrontError::invalid(
                "messages: at least one message is required",
            ))
        }
        Some(_) => return Err(FrontError::invalid("messages: must be a list of messages")),
    };
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            Some("user") => user(i, content, out)?,
            Some("assistant") if i + 1 == list.len() => {
                return Err(FrontError::invalid(format!(
                    "messages.{i}: a final assistant message (a prefill to continue) is not supported: the backend would answer after it rather than continue it"
                )))
            }
            Some("assistant") => out.push(assistant(i, content)?),
            _ => {
                return Err(FrontError::invalid(format!(
                    "messages.{i}.role: must be `user` or `assistant`"
                )))
            }
        }
    }
    Ok(())
}

/// The content blocks of message `i`, or an error when it has none.
fn blocks(i: usize, content: &Value) -> Result<&Vec<Value>, FrontError> {
    match content {
        Value::Array(b) if !b.is_empty() => Ok(b),
        Value::Array(_) => Err(FrontError::invalid(format!(
            "messages.{i}.content: must not be empty"
        ))),
        _ => Err(FrontError::invalid(format!(
            "messages.{i}.content: must be a string or a list of content blocks"
        ))),
    }
}

/// A user message: its `tool_result` blocks as `tool` messages first, then its text and images.
fn user<'a>(
    i: usize,
    content: &'a Value,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), FrontError> {
    if let Value::String(s) = content {
        out.push(ChatMessage::User {
            content: Content::Text(Cow::Borrowed(s)),
        });
        return Ok(());
    }
    let path = format!("messages.{i}.content");
    let mut parts = Vec::new();
    for (j, b) in blocks(i, content)?.iter().enumerate() {
        match block_type(b, &path, j)? {
            "text" => parts.push(Part::Text {
                text: text_of(b, &path, j)?,
            }),
            "image" => parts.push(Part::ImageUrl {
                image_url: image(b, &path, j)?,
            }),
            "tool_result" => out.push(tool_result(b, &path, j)?),
            other => return Err(unsupported(&path, j, other)),
        }
    }
    if !parts.is_empty() {
        out.push(ChatMessage::User {
            content: from_parts(parts),
        });
    }
    Ok(())
}

/// An assistant message: text blocks joined, `tool_use` blocks as tool calls, thinking dropped.
fn assistant(i: usize, content: &Value) -> Result<ChatMessage<'_>, FrontError> {
    if let Value::String(s) = content {
        return Ok(ChatMessage::Assistant {
            content: Some(Content::Text(Cow::Borrowed(s))),
            tool_calls: Vec::new(),
        });
    }
    let path = format!("messages.{i}.content");
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for (j, b) in blocks(i, content)?.iter().enumerate() {
        match block_type(b, &path, j)? {
            "text" => texts.push(text_of(b, &path, j)?),
            "tool_use" => tool_calls.push(tool_call(b, &path, j)?),
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported(&path, j, other)),
        }
    }
    let content = match (texts.is_empty(), tool_calls.is_empty()) {
        (true, false) => None,
        _ => Some(Content::Text(joined(&texts))),
    };
    Ok(ChatMessage::Assistant {
        content,
        tool_calls,
    })
}

/// Text parts joined with a line feed (as vLLM joins text parts); with an image, the parts.
fn from_parts(parts: Vec<Part<'_>>) -> Content<'_> {
    let texts: Option<Vec<&str>> = parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => Some(*text),
            Part::ImageUrl { .. } => None,
        })
        .collect();
    match texts {
        Some(texts) => Content::Text(joined(&texts)),
        None => Content::Parts(parts),
    }
}

fn joined<'a>(texts: &[&'a str]) -> Cow<'a, str> {
    match texts {
        [one] => Cow::Borrowed(one),
        _ => Cow::Owned(texts.join("\n")),
    }
}

/// A block's `type`.
fn block_type<'a>(block: &'a Value, path: &str, j: usize) -> Result<&'a str, FrontError> {
    block
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| FrontError::invalid(format!("{path}.{j}.type: Field required")))
}

/// A text block's text.
fn text_of<'a>(block: &'a Value, path: &str, j: usize) -> Result<&'a str, FrontError> {
    block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| FrontError::invalid(format!("{path}.{j}.text: must be a string")))
}

fn unsupported(path: &str, j: usize, kind: &str) -> FrontError {
    FrontError::invalid(format!(
        "{path}.{j}: content blocks of type `{kind}` are not supported here (this router serves the Messages API through chat backends)"
    ))
}

/// An image block's source as a URL: `base64` data as a `data:` URL, a `url` as itself.
fn image<'a>(block: &'a Value, path: &str, j: usize) -> Result<ImageUrl<'a>, FrontError> {
    let source = block.get("source");
    let field = |k: &str| source.and_then(|s| s.get(k)).and_then(Value::as_str);
    let url = match field("type") {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media), Some(data)) => {
                Cow::Owned(crate::text::concat(&["data:", media, ";base64,", data]))
            }
            _ => {
                return Err(FrontError::invalid(format!(
                    "{path}.{j}.source: a base64 source needs `media_type` and `data`"
                )))
            }
        },
        Some("url") => match field("url") {
            Some(url) => Cow::Borrowed(url),
            None => {
                return Err(FrontError::invalid(format!("{path}.{j}.source.url: Field required")))
            }
        },
        Some(other) => {
            return Err(FrontError::invalid(format!(
                "{path}.{j}.source: image sources of type `{other}` are not supported here (base64 and url are)"
            )))
        }
        None => return Err(FrontError::invalid(format!("{path}.{j}.source.type: Field required"))),
    };
    Ok(ImageUrl { url })
}

/// A `tool_use` block as a tool call, its input serialized as the arguments.
fn tool_call<'a>(block: &'a Value, path: &str, j: usize) -> Result<ToolCall<'a>, FrontError> {
    let field = |k: &str| block.get(k).and_then(Value::as_str);
    let (Some(id), Some(name)) = (field("id"), field("name")) else {
        return Err(FrontError::invalid(format!(
            "{path}.{j}: a tool_use block needs `id` and `name`"
        )));
    };
    let input = match block.get("input") {
        Some(input @ Value::Object(_)) => input,
        _ => {
            return Err(FrontError::invalid(format!(
                "{path}.{j}.input: must be an object"
            )))
        }
    };
    Ok(ToolCall {
        id,
        kind: "function",
        function: FunctionCall {
            name,
            arguments: input.to_string(),
        },
    })
}

/// A `tool_result` block as a `tool` message: its text (blocks joined with a line feed),
/// after `Error: ` when `is_error` (just `Error` when it has no text).
fn tool_result<'a>(block: &'a Value, path: &str, j: usize) -> Result<ChatMessage<'a>, FrontError> {
    let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
        return Err(FrontError::invalid(format!(
            "{path}.{j}.tool_use_id: Field required"
        )));
    };
    let inner = format!("{path}.{j}.content");
    let text = match block.get("content") {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::Array(blocks)) => {
            let texts = blocks
                .iter()
                .enumerate()
                .map(|(k, b)| match block_type(b, &inner, k)? {
                    "text" => text_of(b, &inner, k),
                    other => Err(FrontError::invalid(format!(
                        "{inner}.{k}: tool results with `{other}` blocks are not supported here (chat tool messages carry text)"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            joined(&texts)
        }
        Some(_) => {
            return Err(FrontError::invalid(format!(
                "{inner}: must be a string or a list of content blocks"
            )))
        }
    };
    let content = match block.get("is_error") {
        Some(Value::Bool(true)) if text.is_empty() => Cow::Borrowed("Error"),
        Some(Value::Bool(true)) => Cow::Owned(crate::text::concat(&["Error: ", &text])),
        None | Some(Value::Null | Value::Bool(false)) => text,
        Some(_) => {
            return Err(FrontError::invalid(format!(
                "{path}.{j}.is_error: must be a boolean"
            )))
        }
    };
    Ok(ChatMessage::Tool {
        tool_call_id: id,
        content,
    })
}

#[cfg(test)]
mod tests;
