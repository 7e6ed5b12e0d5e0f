//! The parts of OpenAI's chat answers read here: a `chat.completion`, a
//! `chat.completion.chunk`, their usage and why they stopped, with the Anthropic values made
//! from them (message id, usage, stop reason). Fields are optional where backends differ.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anthropic::reasons;

/// A `chat.completion` (the JSON answer).
#[derive(Deserialize)]
pub(super) struct Completion {
    pub id: Option<String>,
    pub model: Option<String>,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    /// Present on an error envelope answered with a 200.
    pub error: Option<serde::de::IgnoredAny>,
}

/// One choice of a `chat.completion`.
#[derive(Deserialize)]
pub(super) struct Choice {
    pub message: Option<Message>,
    pub finish_reason: Option<String>,
    /// vLLM: the stop string (or token id) that ended the text.
    pub stop_reason: Option<Value>,
}

/// A choice's assistant message.
#[derive(Deserialize)]
pub(super) struct Message {
    pub content: Option<String>,
    /// vLLM (before 0.10), DeepSeek, llama.cpp: the model's reasoning.
    pub reasoning_content: Option<String>,
    /// vLLM (0.10 on), OpenRouter: the model's reasoning.
    pub reasoning: Option<String>,
    /// OpenAI: the model declined, saying why.
    pub refusal: Option<String>,
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// A tool call of an assistant message.
#[derive(Deserialize)]
pub(super) struct ToolCall {
    pub id: Option<String>,
    pub function: Function,
}

/// A tool call's function.
#[derive(Deserialize)]
pub(super) struct Function {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// A `chat.completion.chunk` (one event of a stream), or an error event.
#[derive(Deserialize)]
pub(super) struct Chunk {
    pub id: Option<String>,
    pub choices: Option<Vec<ChunkChoice>>,
    pub usage: Option<Usage>,
    /// The backend failed mid-stream.
    pub error: Option<Value>,
}

/// One choice of a chunk.
#[derive(Deserialize)]
pub(super) struct ChunkChoice {
    pub index: Option<u32>,
    pub delta: Option<Delta>,
    pub finish_reason: Option<String>,
    pub stop_reason: Option<Value>,
}

/// What a chunk adds to its choice.
#[derive(Deserialize)]
pub(super) struct Delta {
    pub content: Option<String>,
    pub reasoning_content: Option<String>,
    pub reasoning: Option<String>,
    pub refusal: Option<String>,
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// What a chunk adds to one tool call: the first names it, the others add argument text.
#[derive(Deserialize)]
pub(super) struct ToolCallDelta {
    pub index: Option<u32>,
    pub id: Option<String>,
    pub function: Option<FunctionDelta>,
}

/// What a chunk adds to a tool call's function.
#[derive(Deserialize)]
pub(super) struct FunctionDelta {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// OpenAI's usage, in tokens.
#[derive(Deserialize, Clone, Copy, Default, Debug)]
pub(super) struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub prompt_tokens_details: Option<PromptDetails>,
}

/// The prompt's tokens in detail.
#[derive(Deserialize, Clone, Copy, Default, Debug)]
pub(super) struct PromptDetails {
    pub cached_tokens: Option<u64>,
}

impl Usage {
    /// Prompt tokens read from the cache.
    pub fn cached(&self) -> Option<u64> {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens)
    }

    /// Anthropic's `input_tokens`: the prompt's tokens not read from the cache.
    pub fn input_tokens(&self) -> Option<u64> {
        let prompt = self.prompt_tokens?;
        Some(prompt.saturating_sub(self.cached().unwrap_or(0)))
    }
}

/// Anthropic's usage of a whole answer.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub(super) struct AnthropicUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl From<Option<Usage>> for AnthropicUsage {
    fn from(usage: Option<Usage>) -> Self {
        let usage = usage.unwrap_or_default();
        AnthropicUsage {
            input_tokens: usage.input_tokens().unwrap_or(0),
            output_tokens: usage.completion_tokens.unwrap_or(0),
            cache_read_input_tokens: usage.cached().unwrap_or(0),
        }
    }
}

/// Why an answer stopped, in Anthropic's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stop {
    pub reason: &'static str,
    pub sequence: Option<String>,
}

impl Stop {
    /// From OpenAI's `finish_reason` and vLLM's `stop_reason`: a stop that a stop string ended
    /// (vLLM names it; a number is a stop token) is `stop_sequence`.
    pub fn new(finish_reason: Option<&str>, stop_reason: Option<&Value>) -> Self {
        let finish = finish_reason.unwrap_or("stop");
        match stop_reason.and_then(Value::as_str) {
            Some(s) if finish == "stop" => Stop {
                reason: "stop_sequence",
                sequence: Some(s.to_string()),
            },
            _ => Stop {
                reason: reasons::stop_reason(finish),
                sequence: None,
            },
        }
    }
}

/// The Anthropic message id for a chat answer's id: `msg_` and the id without its
/// `chatcmpl-` prefix (`msg_router` when the backend gave none).
pub(super) fn message_id(chat_id: Option<&str>) -> String {
    let id = chat_id.unwrap_or("router");
    let id = id.strip_prefix("chatcmpl-").unwrap_or(id);
    crate::text::concat(&["msg_", id])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lose_the_chat_prefix() {
        assert_eq!(message_id(Some("chatcmpl-abc")), "msg_abc");
        assert_eq!(message_id(Some("cmpl-1")), "msg_cmpl-1");
        assert_eq!(message_id(None), "msg_router");
    }

    #[test]
    fn cached_tokens_are_apart_from_input_tokens() {
        let u: Usage = serde_json::from_str(
            r#"{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":60}}"#,
        )
        .unwrap();
        assert_eq!(
            AnthropicUsage::from(Some(u)),
            AnthropicUsage {
                input_tokens: 40,
                output_tokens: 7,
                cache_read_input_tokens: 60
            }
        );
        assert_eq!(
            AnthropicUsage::from(None),
            AnthropicUsage {
                input_tokens: 0,
                output_tokens: 0,
                cache_read_input_tokens: 0
            }
        );
    }

    #[test]
    fn stop_strings_are_stop_sequences() {
        let s = Value::String("END".into());
        assert_eq!(
            Stop::new(Some("stop"), Some(&s)),
            Stop {
                reason: "stop_sequence",
                sequence: Some("END".into())
            }
        );
        let token = Value::from(128009);
        assert_eq!(Stop::new(Some("stop"), Some(&token)).reason, "end_turn");
        assert_eq!(Stop::new(Some("length"), Some(&s)).reason, "max_tokens");
        assert_eq!(Stop::new(Some("tool_calls"), None).reason, "tool_use");
        assert_eq!(Stop::new(None, None).reason, "end_turn");
    }
}
