//! An Anthropic message (a Messages API answer) as a chat completion.
//!
//! - `id` → `chatcmpl-` and Anthropic's id; `model` as the backend named it (the flow renames
//!   it); `object: "chat.completion"`; `created` as given.
//! - `content`: the `text` blocks, joined as they are (no separator: Anthropic splits one text
//!   into blocks, around citations for example), → `message.content` (`null` when there is no
//!   text and there are tool calls); `tool_use` blocks → `message.tool_calls` (`input` as the
//!   `arguments` JSON text, as written); `thinking` blocks → `message.reasoning_content`, the
//!   field vLLM and DeepSeek use for reasoning text (their signatures, and `redacted_thinking`,
//!   are left out); other blocks (server tools' results) are left out.
//! - `stop_reason` → `finish_reason` (see `reasons.rs`).
//! - `usage` → OpenAI's `usage` (see `usage.rs`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::usage::{AnthropicUsage, Counts, OpenAiUsage};
use crate::anthropic::reasons::finish_reason;

/// An Anthropic message, as far as a chat completion needs it.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    /// Each block read on its own: one of an unknown shape is left out, not the answer.
    #[serde(borrow, default)]
    content: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// One content block of an answer (or of a stream's `content_block_start`): the fields of
/// every type the translation reads.
#[derive(Debug, Deserialize)]
pub(super) struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

/// A chat tool call.
#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// OpenAI's completion id for Anthropic's message id.
pub(super) fn completion_id(id: &str) -> String {
    format!("chatcmpl-{id}")
}

/// An Anthropic message (`type: "message"`) as a chat completion created at `created` (Unix
/// seconds); `None` when `message` is not one.
pub fn chat_completion(message: &[u8], created: u64) -> Option<Vec<u8>> {
    let message: Message<'_> = serde_json::from_slice(message).ok()?;
    if message.kind != "message" {
        return None;
    }
    let blocks: Vec<ContentBlock<'_>> = message
        .content
        .iter()
        .filter_map(|raw| serde_json::from_str(raw.get()).ok())
        .collect();
    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in &blocks {
        match (block.kind.as_ref(), block) {
            ("text", ContentBlock { text: Some(t), .. }) => text.push_str(t),
            (
                "thinking",
                ContentBlock {
                    thinking: Some(t), ..
                },
            ) => reasoning.get_or_insert_with(String::new).push_str(t),
            (
                "tool_use",
                ContentBlock {
                    id, name, input, ..
                },
            ) => tool_calls.push(ToolCall {
                id: id.as_deref().unwrap_or(""),
                kind: "function",
                function: Function {
                    name: name.as_deref().unwrap_or(""),
                    arguments: input.map_or("{}", |raw| raw.get()),
                },
            }),
            _ => {}
        }
    }
    let has_text = blocks.iter().any(|b| b.kind == "text");
    let usage = message.usage.as_ref().map(|u| {
        let mut counts = Counts::default();
        counts.update(u);
        counts.usage().openai()
    });
    let completion = Completion {
        id: completion_id(&message.id),
        object: "chat.completion",
        created,
        model: &message.model,
        choices: [Choice {
            index: 0,
            message: ChatMessage {
                role: "assistant",
                content: (has_text || tool_calls.is_empty()).then_some(text),
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish_reason(message.stop_reason.as_deref().unwrap_or("end_turn")),
        }],
        usage,
    };
    serde_json::to_vec(&completion).ok()
}

/// Whether `body` is an answer the Messages API sends with a success: a message
/// (`"type": "message"` with a `content` array), or for token counting (`count_tokens`) a
/// count (`input_tokens`, a whole number, and no `type`). A request sent as its Anthropic
/// client wrote it gets its answer as it is, once checked so.
pub fn is_answer(body: &[u8], count_tokens: bool) -> bool {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, rename = "type")]
        kind: Option<std::borrow::Cow<'a, str>>,
        content: Option<Vec<serde::de::IgnoredAny>>,
        input_tokens: Option<u64>,
    }
    match serde_json::from_slice::<Answer<'_>>(body) {
        Ok(a) if count_tokens => a.kind.is_none() && a.input_tokens.is_some(),
        Ok(a) => a.kind.as_deref() == Some("message") && a.content.is_some(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn complete(message: Value) -> Value {
        let out = chat_completion(message.to_string().as_bytes(), 1_700_000_000).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn text_thinking_and_tool_use_become_a_chat_message() {
        let out = complete(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "Let me check"},
                {"type": "text", "text": " the weather."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 12, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5, "output_tokens": 40}
        }));
        assert_eq!(
            out,
            json!({
                "id": "chatcmpl-msg_01", "object": "chat.completion", "created": 1_700_000_000u64,
                "model": "claude-sonnet-4-5",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Let me check the weather.",
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}"}}]
                }}],
                "usage": {"prompt_tokens": 47, "completion_tokens": 40, "total_tokens": 87, "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 5}}
            })
        );
    }

    #[test]
    fn tool_calls_alone_have_null_content_and_an_empty_answer_has_empty_text() {
        let out = complete(
            json!({"type": "message", "id": "m", "model": "c", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {}}], "stop_reason": "tool_use"}),
        );
        assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert!(out.get("usage").is_none());
        let out = complete(
            json!({"type": "message", "id": "m", "model": "c", "content": [], "stop_reason": "max_tokens"}),
        );
        assert_eq!(out["choices"][0]["message"]["content"], "");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn tool_input_is_passed_on_as_written() {
        let body = br#"{"type":"message","id":"m","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{"b": 1, "a": "\u00e9"}}],"stop_reason":"tool_use"}"#;
        let out: Value = serde_json::from_slice(&chat_completion(body, 0).unwrap()).unwrap();
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"b": 1, "a": "\u00e9"}"#
        );
    }

    #[test]
    fn a_block_of_an_unknown_shape_is_left_out() {
        let out = complete(
            json!({"type": "message", "id": "m", "model": "c", "stop_reason": "end_turn", "content": [
            {"type": "future_block", "text": {"rich": true}, "id": 5},
            {"type": "text", "text": "kept"}]}),
        );
        assert_eq!(out["choices"][0]["message"]["content"], "kept");
    }

    #[test]
    fn what_is_not_a_message_is_none() {
        for body in [
            r#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
            r#"{"id":"m"}"#,
            "[1]",
            "{\"type\":\"message\",\"content\":5}",
            "",
        ] {
            assert_eq!(chat_completion(body.as_bytes(), 0), None, "{body}");
        }
    }
}
