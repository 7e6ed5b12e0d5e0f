//! The gRPC status of a call the router refused or could not answer, from its HTTP answer (the
//! OpenAI error envelope the filter and Envoy write, with a faithful status) or from an error
//! event in the middle of a stream. The router's own message is kept (it names no backend: the
//! filter scrubs error bodies), and the details (`grpc-status-details-bin`) carry a
//! `google.rpc.ErrorInfo` (reason: the OpenAI `code` in capitals, else its `type`; domain
//! `airouter`; metadata: `http_status`, `type`, `param`) and, when the router says when to retry,
//! a `google.rpc.RetryInfo`.
//!
//! | HTTP | gRPC |
//! |---|---|
//! | 400, 422, other 4xx | `INVALID_ARGUMENT` |
//! | 401 | `UNAUTHENTICATED` |
//! | 403 | `PERMISSION_DENIED` |
//! | 404, or the code `model_not_found` | `NOT_FOUND` |
//! | 408, 504 | `DEADLINE_EXCEEDED` |
//! | 409 | `ABORTED` |
//! | 429 | `RESOURCE_EXHAUSTED` (with `RetryInfo` from `retry-after-ms` or `retry-after`) |
//! | 413, 431 (a request over a size limit) | `RESOURCE_EXHAUSTED` |
//! | 499 | `CANCELLED` |
//! | 405, 501 | `UNIMPLEMENTED` |
//! | 502, 503, 529, Envoy unreachable, an answer cut short | `UNAVAILABLE` |
//! | other 5xx, a 2xx that is not a completion | `INTERNAL` |
//!
//! An error event in a stream has no HTTP status: its `type` says the code the same way
//! (`rate_limit_error` is `RESOURCE_EXHAUSTED`, ...), a cut-off stream (`stream_truncated`) is
//! `UNAVAILABLE`, other server errors `INTERNAL`.
//!
//! Sizes follow gRPC's status-code guide (`doc/statuscodes.md`): a message over a size limit is
//! `RESOURCE_EXHAUSTED`, an answer that cannot be parsed `INTERNAL`. What the router's answer
//! puts in a status is bounded: the message to [`MAX_MESSAGE_BYTES`], each `ErrorInfo` value to
//! [`MAX_DETAIL_BYTES`], so a status always fits the 8 KiB of trailers gRPC clients take.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use serde::Deserialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `domain` of the `ErrorInfo` every status carries.
const DOMAIN: &str = "airouter";

/// Longest status message passed on from the router's answer, in bytes (cut at a character).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Longest `ErrorInfo` metadata value (`type`, `param`) passed on, in bytes.
pub const MAX_DETAIL_BYTES: usize = 128;

/// Longest retry delay passed on (a day): a hint beyond it is no hint.
const MAX_RETRY: Duration = Duration::from_secs(86_400);

/// OpenAI's error object (the inside of `{"error": {...}}`). A field of another JSON type than
/// OpenAI's is read as absent, so an error stays an error whatever its fields hold.
#[derive(Debug, Default, Deserialize)]
pub struct OpenAiError {
    #[serde(default, deserialize_with = "text")]
    pub message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "text")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub param: Option<String>,
    /// A string for OpenAI; some servers send a number.
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

impl OpenAiError {
    fn code(&self) -> Option<&str> {
        self.code.as_ref().and_then(serde_json::Value::as_str)
    }
}

/// A JSON string as itself, any other value as `None`.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// `{"error": {...}}`.
#[derive(Deserialize)]
pub struct Envelope {
    pub error: OpenAiError,
}

/// The status for an HTTP answer that is not a success: `body` is its (OpenAI error) body,
/// `headers` may carry a retry hint.
pub fn from_http(status: u16, headers: &HeaderMap, body: &[u8]) -> Status {
    let err = serde_json::from_slice::<Envelope>(body)
        .map(|e| e.error)
        .unwrap_or_default();
    let code = code_for(Some(status), err.kind.as_deref(), err.code());
    let message = bounded_message(err.message.as_deref())
        .unwrap_or_else(|| format!("the router answered with HTTP status {status}"));
    let mut details = ErrorDetails::new();
    error_info(&mut details, &err, Some(status));
    if let Some(delay) = retry_delay(headers, SystemTime::now()) {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(code, message, details)
}

/// The status for an error event in a stream (no HTTP status to go by).
pub fn from_stream_error(err: &OpenAiError) -> Status {
    let code = code_for(None, err.kind.as_deref(), err.code());
    let message = bounded_message(err.message.as_deref())
        .unwrap_or_else(|| "the answer's stream ended with an error".into());
    let mut details = ErrorDetails::new();
    error_info(&mut details, err, None);
    Status::with_error_details(code, message, details)
}

/// `INVALID_ARGUMENT` for a request field, with a `google.rpc.BadRequest` naming it.
pub fn invalid_argument(field: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// `UNAVAILABLE` when Envoy's OpenAI listener cannot be reached (its address is logged, not
/// told).
pub fn listener_unavailable() -> Status {
    Status::unavailable("the router cannot be reached; try again later")
}

/// `UNAVAILABLE` when the router's answer broke off after it had begun (or the connection closed
/// before an answer): the router was reached, its answer is incomplete.
pub fn answer_cut_short() -> Status {
    Status::unavailable("the router's answer was cut short before it was complete; try again")
}

/// `UNAVAILABLE` when the router took the request but closed its connection without an answer.
pub fn no_answer() -> Status {
    Status::unavailable("the router closed the connection without an answer; try again")
}

/// `INTERNAL` for a success answer that is not what it should be (not a completion, no choice,
/// no finish reason, a value out of shape): `what` says which, without quoting it.
pub fn unreadable_answer(what: &str) -> Status {
    Status::internal(format!("the router's answer could not be read: {what}"))
}

/// `RESOURCE_EXHAUSTED` for a request over a size limit of `limit` bytes.
pub fn request_too_large(what: &str, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "{what} is larger than the router takes ({limit} bytes at most)"
    ))
}

/// A message from the router's answer, empty as `None`, else at most [`MAX_MESSAGE_BYTES`] with
/// control characters made spaces (it ends up in clients' logs and terminals).
fn bounded_message(message: Option<&str>) -> Option<String> {
    let m = message.filter(|m| !m.is_empty())?;
    let plain = |t: &str| -> String {
        t.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    if m.len() <= MAX_MESSAGE_BYTES {
        return Some(plain(m));
    }
    Some(format!("{}...", plain(cut(m, MAX_MESSAGE_BYTES - 3))))
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The gRPC code for an HTTP status (`None` in a stream), the OpenAI error `type` and `code`.
pub fn code_for(status: Option<u16>, kind: Option<&str>, code: Option<&str>) -> Code {
    if code == Some("model_not_found") {
        return Code::NotFound;
    }
    match status {
        Some(401) => Code::Unauthenticated,
        Some(403) => Code::PermissionDenied,
        Some(404) => Code::NotFound,
        Some(405 | 501) => Code::Unimplemented,
        Some(408 | 504) => Code::DeadlineExceeded,
        Some(409) => Code::Aborted,
        Some(413 | 429 | 431) => Code::ResourceExhausted,
        Some(499) => Code::Cancelled,
        Some(502 | 503 | 529) => Code::Unavailable,
        Some(400..=499) => Code::InvalidArgument,
        Some(_) => Code::Internal,
        None => match (kind, code) {
            (_, Some("stream_truncated" | "upstream_unreachable")) => Code::Unavailable,
            (_, Some("upstream_timeout")) => Code::DeadlineExceeded,
            (Some("invalid_request_error"), _) => Code::InvalidArgument,
            (Some("authentication_error"), _) => Code::Unauthenticated,
            (Some("permission_error"), _) => Code::PermissionDenied,
            (Some("not_found_error"), _) => Code::NotFound,
            (Some("rate_limit_error"), _) => Code::ResourceExhausted,
            _ => Code::Internal,
        },
    }
}

/// Adds the `ErrorInfo` of `err`.
fn error_info(details: &mut ErrorDetails, err: &OpenAiError, status: Option<u16>) {
    let reason = err
        .code()
        .or(err.kind.as_deref())
        .map(reason)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| match status {
            Some(s) => format!("HTTP_{s}"),
            None => "STREAM_ERROR".into(),
        });
    let mut metadata = HashMap::new();
    if let Some(s) = status {
        metadata.insert("http_status".to_string(), s.to_string());
    }
    if let Some(kind) = &err.kind {
        metadata.insert("type".to_string(), cut(kind, MAX_DETAIL_BYTES).to_string());
    }
    if let Some(param) = &err.param {
        metadata.insert(
            "param".to_string(),
            cut(param, MAX_DETAIL_BYTES).to_string(),
        );
    }
    details.set_error_info(reason, DOMAIN, metadata);
}

/// An OpenAI code or type as an `ErrorInfo` reason: capitals, digits and underscores, at most
/// 63 characters.
fn reason(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_uppercase())
        .take(63)
        .collect()
}

/// How long the router asks to wait: `retry-after-ms`, else `retry-after` (seconds or an
/// HTTP-date, counted from `now`), at most [`MAX_RETRY`].
pub fn retry_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let delay = if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<u64>().ok()) {
        Duration::from_millis(ms)
    } else {
        let v = value("retry-after")?;
        match v.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => httpdate::parse_http_date(v)
                .ok()?
                .duration_since(now)
                .unwrap_or_default(),
        }
    };
    Some(delay.min(MAX_RETRY))
}

#[cfg(test)]
mod tests;
