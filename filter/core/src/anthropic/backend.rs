//! OpenAI chat in, Anthropic Messages out (API version `2023-06-01`), and the backend's answers
//! back into OpenAI's form: for a client speaking OpenAI chat to a `kind = "anthropic"`
//! backend.
//!
//! - [`messages_request`] (`request.rs`): the chat request as a Messages request, with
//!   `turns.rs` (messages → `system` and alternating turns), `content.rs` (content parts →
//!   blocks), `tools.rs` (tools, tool choice, tool calls) and `params.rs` (what has no
//!   counterpart: refused with a 400 naming it, or dropped as configured).
//! - [`chat_completion`] (`message.rs`): an Anthropic message as a chat completion.
//! - [`ChunkStream`] (`stream.rs`, writing `chunk.rs`): Anthropic's event stream as
//!   `chat.completion.chunk`s, split at any byte.
//! - [`openai_error`] (`error.rs`): Anthropic's errors in OpenAI's envelope, with a status
//!   OpenAI's clients understand.
//! - [`Usage`] (`usage.rs`): the tokens reported, cache reads and writes included.
//!
//! Everything here is pure and panic-free on any input.

mod chunk;
mod content;
mod error;
mod message;
mod params;
mod request;
mod stream;
mod tools;
mod turns;
mod usage;

pub use error::openai_error;
pub use message::{chat_completion, is_answer};
pub use request::{messages_request, RequestOptions};
pub use stream::ChunkStream;
pub use usage::Usage;
pub(crate) use usage::{AnthropicUsage, Counts};

#[cfg(test)]
mod golden_tests;
