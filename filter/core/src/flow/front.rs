//! The API the client speaks. Clients of OpenAI's API are the router's own; clients of
//! Anthropic's SDK call `POST /v1/messages`, whose request is made into a chat request (the
//! router's inner form) before anything else reads it, and whose answers (JSON, the event
//! stream, every error, the router's own included) are made Anthropic's after the flow has
//! renamed and counted them. Translators: [`crate::anthropic::front`].

use crate::anthropic::front::{self as anthropic, DirectStream, EventStream};
use crate::api::Api;
use crate::auth::ClientKey;
use crate::config::{BackendKind, Plan};
use crate::errors::ApiError;
use crate::host::{Headers, Host};

use itoa::Buffer as Decimal;

/// Anthropic's Messages API, as a client path.
pub const MESSAGES_PATH: &str = "/v1/messages";
/// The path a Messages request is served at once made a chat request.
const CHAT_PATH: &str = "/v1/chat/completions";
/// Anthropic's token counting, as a client path.
pub const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";

/// The API a client speaks, from its request's path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Front {
    /// OpenAI's: every path the router serves but Anthropic's.
    #[default]
    OpenAi,
    /// Anthropic's Messages API (`POST /v1/messages`).
    Messages,
    /// Anthropic's token counting (`POST /v1/messages/count_tokens`).
    CountTokens,
    /// Another path of Anthropic's API under `/v1/messages/` (message batches, ...): not
    /// served, and refused in Anthropic's shape.
    Unserved,
}

impl Front {
    /// The front of a client path (without its query string).
    pub fn of_path(path: &str) -> Front {
        match path {
            MESSAGES_PATH => Front::Messages,
            COUNT_TOKENS_PATH => Front::CountTokens,
            _ if path.starts_with("/v1/messages/") => Front::Unserved,
            _ => Front::OpenAi,
        }
    }

    /// Whether the client speaks Anthropic's API.
    pub fn is_anthropic(self) -> bool {
        self != Front::OpenAi
    }

    /// `err` as this front's clients read errors: OpenAI's envelope, or Anthropic's
    /// `{"type":"error","error":{"type","message"}}` with the same status.
    pub fn error_body(self, err: &ApiError) -> Vec<u8> {
        match self {
            Front::OpenAi => err.body(),
            // Anthropic's own words for a request without a key (its SDK sends `x-api-key`,
            // or `Authorization: Bearer`, both taken here).
            _ if *err == ApiError::missing_key() => {
                anthropic::error_body(401, "authentication_error", "x-api-key header is required")
            }
            _ => anthropic::anthropic_error(err.status, &err.body()).1,
        }
    }
}

/// A request from an Anthropic client that goes to Anthropic backends as it came (its model
/// replaced, nothing translated), so that what only Anthropic's API has (thinking and its
/// signatures, `cache_control`, `top_k`, a prefill) reaches the backend and comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Direct {
    /// The request's path below an Anthropic backend's base URL (`/v1`).
    pub fn path_suffix(self) -> &'static str {
        match self {
            Direct::Messages => "/messages",
            Direct::CountTokens => "/messages/count_tokens",
        }
    }

    /// The direct request a client path (without its query string) names, if any: used by
    /// each failover attempt, which sees the path the client sent.
    pub fn of_path(path: &str) -> Option<Direct> {
        match Front::of_path(path) {
            Front::Messages => Some(Direct::Messages),
            Front::CountTokens => Some(Direct::CountTokens),
            Front::OpenAi | Front::Unserved => None,
        }
    }
}

/// An Anthropic client's request readied for the flow: its body's size, its prompt's estimated
/// tokens, and whether it goes to its backends as it came.
pub(super) struct Prepared {
    pub size: usize,
    pub input_tokens: u64,
    pub direct: Option<Direct>,
}

/// Readies the request (`body_size` bytes) of a client of Anthropic's API (`front`, for the
/// client's `key`): as it came when every backend of its model speaks Anthropic's API (checked
/// for what the router reads), else made a chat request. Token counting is served only the
/// first way: a 404 otherwise. Errors in OpenAI's terms, answered in Anthropic's.
pub(super) fn prepare(
    host: &mut dyn Host,
    plan: &Plan,
    key: Option<&ClientKey>,
    front: Front,
    body_size: usize,
) -> Result<Prepared, ApiError> {
    let req = Headers::Request;
    let body = host.body(req, body_size).unwrap_or_default();
    let counting = front == Front::CountTokens;
    let model = match crate::json_body::find_model(&body) {
        Ok(m) => Some(m.name),
        // A body whose model cannot be told for sure is refused as any request is; a Messages
        // request is checked again as it is made a chat request.
        Err(e) if counting => return Err(e),
        Err(_) => None,
    };
    if model
        .as_deref()
        .is_some_and(|m| served_by_anthropic(plan, m))
    {
        anthropic::check_direct(&body, counting)
            .map_err(|e| ApiError::with_status(e.status, e.message, None))?;
        host.set_header(req, "anthropic-version", None);
        host.set_header(req, "anthropic-beta", None);
        return Ok(Prepared {
            size: body_size,
            input_tokens: crate::token_estimate::estimate(&body),
            direct: Some(if counting {
                Direct::CountTokens
            } else {
                Direct::Messages
            }),
        });
    }
    if counting {
        anthropic::check_direct(&body, true)
            .map_err(|e| ApiError::with_status(e.status, e.message, None))?;
        let name = model.unwrap_or_default();
        let known = plan.resolve(Api::Chat, &name).is_some() && key.is_none_or(|k| k.allows(&name));
        if !known {
            return Err(ApiError::model_not_found(&name));
        }
        return Err(ApiError::with_status(
            404,
            crate::text::concat(&[
                "Token counting is served for models whose backends speak Anthropic's API, which `",
                &name,
                "` does not: read `usage.input_tokens` from an answer instead.",
            ]),
            Some("unknown_url"),
        ));
    }
    let (size, input_tokens) = to_chat_request(host, body_size)?;
    Ok(Prepared {
        size,
        input_tokens,
        direct: None,
    })
}

/// Whether the model a client names is served by Anthropic backends only (every target of a
/// failover model), so that a Messages request can go to it as it came.
fn served_by_anthropic(plan: &Plan, model: &str) -> bool {
    plan.resolve(Api::Chat, model).is_some_and(|t| {
        t.model.targets().iter().all(|target| {
            plan.backends
                .get(target.backend)
                .is_some_and(|b| b.kind == BackendKind::Anthropic)
        })
    })
}

/// Replaces a Messages request's body (`body_size` bytes) with the chat request it stands for:
/// the new body's size and its prompt's estimated tokens. A 400 (in Anthropic's terms once
/// answered) when it is not a valid Messages request.
fn to_chat_request(host: &mut dyn Host, body_size: usize) -> Result<(usize, u64), ApiError> {
    let req = Headers::Request;
    let body = host.body(req, body_size).unwrap_or_default();
    let chat = anthropic::chat_request(&body)
        .map_err(|e| ApiError::with_status(e.status, e.message, None))?;
    if !host.replace_body(req, body_size, &chat.body) {
        return Err(ApiError::internal(
            "the request body could not be rewritten",
        ));
    }
    let len = chat.body.len();
    host.set_header(req, "content-length", Some(Decimal::new().format(len)));
    // From here on it is a chat request, for every part of the flow (a failover's attempts
    // read the path): the client's query string kept, its Anthropic headers dropped (they
    // describe the request it sent; an Anthropic backend gets its own version header).
    let path = host.header(req, ":path").unwrap_or_default().into_owned();
    let query = path.split_once('?').map(|(_, q)| q);
    let chat_path = match query {
        Some(q) => crate::text::concat(&[CHAT_PATH, "?", q]),
        None => CHAT_PATH.to_string(),
    };
    host.set_header(req, ":path", Some(&chat_path));
    host.set_header(req, "anthropic-version", None);
    host.set_header(req, "anthropic-beta", None);
    Ok((len, crate::token_estimate::estimate(&chat.body)))
}

/// Whether an OpenAI error envelope says its backend was overloaded (code `overloaded`).
fn body_says_overloaded(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/code")
                .and_then(|c| c.as_str())
                .map(|c| c == "overloaded")
        })
        .unwrap_or(false)
}

/// How an answer to a Messages request is made Anthropic's.
#[derive(Debug)]
pub(super) enum Answer {
    /// An event stream, event by event.
    Stream(Box<EventStream>),
    /// An Anthropic backend's own event stream (a direct request), watched event by event.
    Direct(Box<DirectStream>),
    /// A JSON body (a chat completion, or an error of `status`), once whole.
    Whole { status: u16 },
    /// An Anthropic backend's own answer to a direct request, read for its usage once whole.
    DirectWhole { counted: bool },
    /// Nothing to translate (no body).
    Untouched,
}

impl Answer {
    /// At the response headers (after the flow's own handling): how the body is translated;
    /// `model` is the client-visible name, `input_tokens` the prompt's estimate, `direct` set
    /// when the request went to its backends as it came.
    pub(super) fn at_headers(
        host: &mut dyn Host,
        end_of_stream: bool,
        model: &str,
        input_tokens: u64,
        direct: Option<Direct>,
    ) -> Answer {
        if end_of_stream {
            return Answer::Untouched;
        }
        let resp = Headers::Response;
        let status = host
            .header(resp, ":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let ctype = host
            .header(resp, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let stream = status < 300 && ctype.starts_with("text/event-stream");
        match direct {
            Some(_) if stream => {
                host.set_header(resp, "content-length", None);
                Answer::Direct(Box::new(DirectStream::new(input_tokens)))
            }
            Some(d) if status < 300 => Answer::DirectWhole {
                counted: d == Direct::Messages,
            },
            _ if stream => Answer::Stream(Box::new(EventStream::new(model, input_tokens))),
            _ => {
                host.set_header(resp, "content-length", None);
                Answer::Whole { status }
            }
        }
    }

    /// Whether the body is translated only once it is whole.
    pub(super) fn needs_whole_body(&self) -> bool {
        matches!(self, Answer::Whole { .. } | Answer::DirectWhole { .. })
    }

    /// Translates the body the flow has just written (this chunk of a stream, or the whole
    /// body at its end), in place. The tokens a direct answer reported, once it is over (they
    /// include the prompt cache, which the flow's reading of a `usage` does not).
    pub(super) fn on_body(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Option<u64> {
        let resp = Headers::Response;
        let out = match self {
            Answer::Untouched => return None,
            Answer::Whole { .. } | Answer::DirectWhole { .. } if !end_of_stream => return None,
            Answer::DirectWhole { counted } => {
                let status = host
                    .header(resp, ":status")
                    .and_then(|s| s.parse::<u16>().ok())
                    .unwrap_or(0);
                if status >= 300 {
                    // The flow found the answer unreadable and put its own error in its place.
                    host.set_header(resp, "content-length", None);
                    *self = Answer::Whole { status };
                    return self.on_body(host, true);
                }
                let body = host.body(resp, u32::MAX as usize).unwrap_or_default();
                return counted.then(|| anthropic::message_tokens(&body)).flatten();
            }
            Answer::Stream(stream) => {
                let chunk = host.body(resp, u32::MAX as usize).unwrap_or_default();
                let mut out = stream.feed(&chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                (chunk.len(), out)
            }
            Answer::Direct(stream) => {
                let chunk = host.body(resp, u32::MAX as usize).unwrap_or_default();
                let mut out = stream.feed(&chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                let tokens = end_of_stream.then(|| stream.tokens()).flatten();
                if tokens.is_some_and(|(_, estimated)| estimated) {
                    host.count(crate::metrics::USAGE_ESTIMATED);
                }
                let tokens = tokens.map(|(n, _)| n);
                if out != chunk && !host.replace_body(resp, chunk.len(), &out) {
                    host.log_warn("could not pass on an answer to an Anthropic client");
                }
                return tokens;
            }
            Answer::Whole { status } => {
                let body = host.body(resp, u32::MAX as usize).unwrap_or_default();
                let out = if *status >= 300 {
                    let out = anthropic::anthropic_error(*status, &body).1;
                    // An overloaded backend is Anthropic's 529 to its clients (its SDK raises
                    // its overloaded error for that status), where OpenAI's get a 503.
                    if *status == 503 && body_says_overloaded(&body) {
                        host.set_header(resp, ":status", Some("529"));
                    }
                    out
                } else {
                    anthropic::message(&body).unwrap_or_else(|| {
                        anthropic::error_body(
                            502,
                            "api_error",
                            "The backend's answer could not be read.",
                        )
                    })
                };
                host.set_header(
                    resp,
                    "content-length",
                    Some(Decimal::new().format(out.len())),
                );
                (body.len(), out)
            }
        };
        let (size, out) = out;
        if !host.replace_body(resp, size, &out) {
            host.log_warn("could not translate an answer for an Anthropic client");
        }
        None
    }
}
