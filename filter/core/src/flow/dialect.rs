//! A backend that speaks another API than the client: its request made from the OpenAI chat
//! request the flow holds, and its answer (status, JSON, SSE stream, error) made back into
//! OpenAI's form before the rest of the flow renames and counts it. One per attempt: the listener
//! flow's for a single-target model, the upstream flow's for each attempt of a failover.
//!
//! Today: Anthropic's Messages API (`kind = "anthropic"`), see [`crate::anthropic::backend`].

use super::front::Direct;
use crate::anthropic::backend::{self as anthropic, ChunkStream, RequestOptions};
use crate::config::{Backend, BackendKind};
use crate::errors::ApiError;
use crate::host::{Headers, Host};

/// Anthropic's status for "overloaded", which OpenAI's API does not have.
const ANTHROPIC_OVERLOADED: u16 = 529;

/// The request for `backend` made from the chat request `chat` (whose model is already the
/// backend's `backend_model`): `None` when the backend speaks OpenAI's API, the Messages
/// request for an Anthropic backend. A 400 naming the parameter the backend cannot take.
pub(super) fn request(
    backend: &Backend,
    backend_model: &str,
    chat: &[u8],
) -> Option<Result<Vec<u8>, ApiError>> {
    let options = match (backend.kind, &backend.anthropic) {
        (BackendKind::Anthropic, Some(a)) => RequestOptions {
            model: backend_model,
            default_max_tokens: a.default_max_tokens,
            drop_unsupported: a.drop_unsupported,
        },
        _ => return None,
    };
    Some(anthropic::messages_request(chat, &options))
}

/// How one attempt's answer is made into OpenAI's form.
#[derive(Debug)]
pub(super) enum Answer {
    /// A stream, translated event by event.
    Stream(Box<ChunkStream>),
    /// A JSON body (a message, or an error of `status`), translated whole at its end. For a
    /// `direct` request (see `front.rs`), a success is checked and passed on as it is.
    Whole { status: u16, direct: Option<Direct> },
    /// Nothing to translate (no body, or a direct request's stream).
    Untouched,
}

impl Answer {
    /// At the response headers of an Anthropic backend's answer: its status made OpenAI's (529
    /// → 503), the length dropped when the body will change, and how the body is translated.
    /// `usage_chunk`: the request asked for stream usage (see `json_body::asks_stream_usage`).
    /// `direct`: the request went as its Anthropic client sent it, so only errors are
    /// translated (the client's front makes them Anthropic's again, scrubbed). A success that
    /// cannot be Anthropic's (compressed though the request asked for none, or neither JSON nor
    /// a stream) is held whole and made a 502.
    pub(super) fn at_headers(
        host: &mut dyn Host,
        end_of_stream: bool,
        usage_chunk: bool,
        direct: Option<Direct>,
    ) -> Answer {
        let resp = Headers::Response;
        let mut status = host
            .header(resp, ":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status == ANTHROPIC_OVERLOADED {
            status = 503;
            host.set_header(resp, ":status", Some("503"));
        }
        if end_of_stream {
            return Answer::Untouched;
        }
        let ctype = host
            .header(resp, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let encoded = host
            .header(resp, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        let stream = !encoded && ctype.starts_with("text/event-stream");
        let answer = if status < 300 && stream && direct.is_some() {
            return Answer::Untouched;
        } else if status < 300 && stream {
            let stream = ChunkStream::new(host.now_ms() / 1000);
            let stream = if usage_chunk {
                stream
            } else {
                stream.without_usage_chunk()
            };
            Answer::Stream(Box::new(stream))
        } else if !(300..400).contains(&status) {
            // An error, or a success that must be a message (a 2xx the API does not send
            // becomes a 502 once read).
            Answer::Whole { status, direct }
        } else {
            return Answer::Untouched;
        };
        host.set_header(resp, "content-length", None);
        if encoded {
            // Read as it came, which is unreadable: replaced whole by the router's error.
            host.set_header(resp, "content-encoding", None);
        }
        answer
    }

    /// Whether the body is translated only once it is whole.
    pub(super) fn needs_whole_body(&self) -> bool {
        matches!(self, Answer::Whole { .. })
    }

    /// The OpenAI form of `chunk` (a stream's next bytes, or the whole body at its end).
    /// An answer that is not a message (a 2xx the backend's API does not send) becomes a 502:
    /// the response's headers are held until then.
    pub(super) fn translate(
        &mut self,
        host: &mut dyn Host,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Vec<u8> {
        match self {
            Answer::Stream(stream) => {
                let mut out = stream.feed(chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                out
            }
            Answer::Whole { status, .. } if *status >= 300 => {
                anthropic::openai_error(*status, chunk).1
            }
            Answer::Whole {
                direct: Some(d), ..
            } if anthropic::is_answer(chunk, *d == Direct::CountTokens) => chunk.to_vec(),
            Answer::Whole { direct: None, .. } => {
                match anthropic::chat_completion(chunk, host.now_ms() / 1000) {
                    Some(completion) => completion,
                    None => unreadable(host),
                }
            }
            Answer::Whole { .. } => unreadable(host),
            Answer::Untouched => chunk.to_vec(),
        }
    }
}

/// The router's 502 in place of a backend's answer it cannot read.
fn unreadable(host: &mut dyn Host) -> Vec<u8> {
    host.set_header(Headers::Response, ":status", Some("502"));
    host.set_header(Headers::Response, "content-type", Some("application/json"));
    crate::errors::envelope(
        "The backend's answer could not be read.",
        "server_error",
        None,
        Some("bad_backend_response"),
    )
}
