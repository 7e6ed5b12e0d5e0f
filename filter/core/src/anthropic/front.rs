//! Anthropic Messages in (`POST /v1/messages`, API version `2023-06-01`), OpenAI chat to the
//! backend, and the chat answers back into Anthropic's form: a client of the Anthropic SDK
//! served by any OpenAI-compatible backend.
//!
//! - [`chat_request`] (`request`, `content`, `tools`): a Messages request made into a chat
//!   request; [`count_tokens_request`] the same for `POST /v1/messages/count_tokens`.
//! - [`message`] (`message`): a `chat.completion` made into a Messages answer.
//! - [`EventStream`] (`stream`, `blocks`, `events`): `chat.completion.chunk`s (SSE) made into
//!   Anthropic's stream events.
//! - [`error_body`], [`anthropic_error`] (`errors`): errors in Anthropic's shape.
//! - `openai`: the parts of OpenAI's answers read here.
//!
//! # What is translated, and what is refused
//!
//! Nothing a client asks for is silently misapplied: a field is translated, refused with a 400
//! `invalid_request_error` naming it, or dropped where dropping is what Anthropic itself does or
//! changes nothing the client can see.
//!
//! - `model` (string), `max_tokens` (integer ≥ 1) are required, as by Anthropic; `messages`
//!   must hold at least one message.
//! - `system` (a string or text blocks) → a first `system` message (none when empty). Text
//!   blocks of one message are joined with a line feed, as vLLM joins text parts; a message
//!   with images becomes a list of `text` and `image_url` parts.
//! - `image` blocks: a `base64` source → a `data:` URL, a `url` source → its URL; a `file`
//!   source (Files API) → 400.
//! - `tool_use` (assistant) → `tool_calls`, the input serialized as the arguments text, the id
//!   kept (the client sends it back as `tool_use_id`). `tool_result` (user) → `tool` messages,
//!   before the rest of that user message, as OpenAI wants them right after the tool calls;
//!   their text blocks joined with a line feed. `is_error: true` puts `Error: ` before the text:
//!   the chat API has no field for it and the model must still learn the tool failed. Images in
//!   a tool result → 400 (chat `tool` messages carry text).
//! - `thinking` and `redacted_thinking` blocks in history are dropped: Anthropic itself strips
//!   the thinking of previous turns from what the model sees. `document`, `search_result`,
//!   server tool blocks and any other block type → 400 naming it.
//! - A last message from the assistant (a prefill Claude continues) → 400: a chat backend
//!   would answer after it rather than continue it.
//! - `tools`: custom tools (`name`, `description`, `input_schema` → a function's `parameters`);
//!   a server tool (`web_search_20250305`, `bash_20250124`, ...) → 400 naming its type.
//!   `tool_choice`: `auto` → `auto`, `any` → `required`, `tool` → that function, `none` →
//!   `none`; `disable_parallel_tool_use: true` → `parallel_tool_calls: false`.
//! - `stop_sequences` → `stop`; `temperature`, `top_p` kept (their ranges are the backend's to
//!   check); `top_k` passed as `top_k`, which vLLM and llama.cpp's server honour and a backend
//!   without it refuses (its 400 reaches the client), so it is never silently ignored.
//! - `metadata.user_id` → `user`; `stream` → `stream` with `stream_options.include_usage`, so
//!   the stream's usage reaches `message_delta`.
//! - `thinking` (`enabled`, `adaptive`, `disabled`) is accepted and not passed on: chat has no
//!   budget for it; a reasoning backend reasons anyway and its reasoning comes back as
//!   `thinking` blocks. `service_tier` and a top-level `cache_control` are accepted and dropped
//!   (capacity and caching hints with no effect on the answer).
//! - Any other top-level field (`container`, `mcp_servers`, a misspelling) → 400 naming it;
//!   fields the router does not read inside blocks and tools (`cache_control`, `citations`)
//!   are ignored. A key twice at the top level → 400.
//!
//! # Answers
//!
//! A chat answer's `reasoning_content` (or `reasoning`) becomes a `thinking` block first, with
//! an empty `signature` (no backend but Anthropic signs its thinking). Tool call arguments
//! that are not a JSON object make the answer untranslatable ([`message`] gives `None`);
//! empty arguments are `{}`. Anthropic counts cached prompt tokens apart from `input_tokens`,
//! so `input_tokens` is `prompt_tokens` less `prompt_tokens_details.cached_tokens`, which goes
//! to `cache_read_input_tokens`. vLLM's `stop_reason` (the stop string that matched) gives
//! `stop_reason: "stop_sequence"` and `stop_sequence`; a `refusal` becomes text and stops
//! with `refusal`. Only the first choice is read. A stream does the same block by block (see
//! `stream` and `blocks`: a tool call's blocks are held back while another is open, and a
//! stream whose tool arguments make no JSON object ends with an `error` event, as [`message`]
//! refuses the answer). The [`count_tokens_request`] body is a chat request without
//! `max_tokens`: the prompt the router can count or estimate for any backend.
//!
//! Errors keep their status; the `type` follows it (see [`anthropic_error`]): a 503 stays a
//! 503 with `overloaded_error`, Anthropic's 529 is not invented.

mod blocks;
mod content;
mod direct;
mod errors;
mod events;
mod message;
mod openai;
mod request;
mod stream;
mod tools;

pub use direct::{check_direct, message_tokens, DirectStream};
pub use errors::{anthropic_error, error_body, error_type};
pub use message::message;
pub use request::{chat_request, count_tokens_request};
pub use stream::EventStream;

/// A Messages request made into the router's inner form, an OpenAI chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The chat completions request body (JSON).
    pub body: Vec<u8>,
    /// The model the client asked for, as sent.
    pub model: String,
    /// The client asked for a stream (`stream: true`).
    pub stream: bool,
}

/// A request the router refuses on the Anthropic front, in Anthropic's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontError {
    /// The HTTP status.
    pub status: u16,
    /// Anthropic's error `type` (`invalid_request_error`, ...).
    pub kind: &'static str,
    /// What was wrong, naming the field (`messages.1.content.0.type: ...`).
    pub message: String,
}

impl FrontError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        FrontError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    /// The error's body: `{"type":"error","error":{"type","message"}}`.
    pub fn body(&self) -> Vec<u8> {
        error_body(self.status, self.kind, &self.message)
    }
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod grammar;
