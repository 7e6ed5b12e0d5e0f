//! Anthropic's Messages API (`POST /v1/messages`, version `2023-06-01`) and OpenAI's chat
//! completions, translated both ways: one translator per API pair and direction.
//!
//! - [`backend`]: a client speaking OpenAI chat to a `kind = "anthropic"` backend: the chat
//!   request becomes a Messages request, and the backend's message (JSON), its event stream
//!   (SSE) and its errors become a chat completion, `chat.completion.chunk`s and OpenAI's error
//!   envelope.
//! - [`front`]: a client of the Anthropic SDK (`POST /v1/messages`) served by any backend: its
//!   Messages request becomes a chat request (the router's inner form), and the chat answer,
//!   stream and errors become Anthropic's message, events and error shape.
//! - `reasons`: the stop reasons of the two APIs, mapped one way and back.
//!
//! Every translator is pure (bytes in, bytes out) and panic-free; streams are fed in chunks
//! split at any byte and always end well-formed.

pub mod backend;
pub mod front;
pub mod reasons;
