//! An Anthropic backend's errors in OpenAI's envelope: an error answer
//! (`{"type":"error","error":{"type","message"}}` with its HTTP status) and an `error` event of
//! a stream.
//!
//! The message is kept; Anthropic's error `type` becomes OpenAI's `type` and `code`:
//!
//! | Anthropic (status)            | status | OpenAI `type`           | `code`                |
//! |-------------------------------|--------|-------------------------|-----------------------|
//! | `invalid_request_error` (400) | kept   | `invalid_request_error` | —                     |
//! | `authentication_error` (401)  | kept   | `authentication_error`  | —                     |
//! | `billing_error` (402)         | kept   | `insufficient_quota`    | `insufficient_quota`  |
//! | `permission_error` (403)      | kept   | `permission_error`      | —                     |
//! | `not_found_error` (404)       | kept   | `invalid_request_error` | `model_not_found` (1) |
//! | `request_too_large` (413)     | kept   | `invalid_request_error` | `request_too_large`   |
//! | `rate_limit_error` (429)      | kept   | `rate_limit_error`      | `rate_limit_exceeded` |
//! | `api_error` (500)             | kept   | `server_error`          | —                     |
//! | `timeout_error` (504)         | kept   | `server_error`          | `timeout`             |
//! | `overloaded_error` (529)      | 503    | `server_error`          | `overloaded`          |
//!
//! (1) when the message is about the model (`model: …`, as Anthropic words an unknown model),
//! else no code. 529 is no HTTP status OpenAI's clients know; as 503 they retry it, as they
//! would an overloaded OpenAI server. Any other type keeps its status and gets the status's
//! OpenAI type. A body not in Anthropic's shape gets a generic message for its status, never
//! its bytes.
//!
//! The result is a backend's error in OpenAI's shape: the flow still scrubs it like any other
//! (`backend_errors::wrap`: backend names and addresses out, generic 5xx messages).

use std::borrow::Cow;

use serde::Deserialize;

use crate::backend_errors::generic_message;
use crate::errors::{envelope, type_for_status};

/// Anthropic's overloaded status, not an HTTP status OpenAI clients know.
const OVERLOADED: u16 = 529;

/// Anthropic's error answer.
#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error: AnthropicError<'a>,
}

/// The `error` object of an answer or a stream event.
#[derive(Debug, Deserialize)]
pub(super) struct AnthropicError<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// The status, OpenAI `type` and `code` for an Anthropic error `kind` answered with `status`.
fn mapping(kind: &str, status: u16, message: &str) -> (u16, &'static str, Option<&'static str>) {
    match kind {
        "invalid_request_error" => (status, "invalid_request_error", None),
        "authentication_error" => (status, "authentication_error", None),
        "billing_error" => (status, "insufficient_quota", Some("insufficient_quota")),
        "permission_error" => (status, "permission_error", None),
        "not_found_error" => {
            let about_model = message.trim_start().starts_with("model:");
            (
                status,
                "invalid_request_error",
                about_model.then_some("model_not_found"),
            )
        }
        "request_too_large" => (status, "invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => (status, "rate_limit_error", Some("rate_limit_exceeded")),
        "api_error" => (status, "server_error", None),
        "timeout_error" => (status, "server_error", Some("timeout")),
        "overloaded_error" => (503, "server_error", Some("overloaded")),
        _ => (status, type_for_status(status), None),
    }
}

/// A status OpenAI's clients understand: 529 is 503.
fn faithful(status: u16) -> u16 {
    if status == OVERLOADED {
        503
    } else {
        status
    }
}

/// The status Anthropic documents for an error type, for an error met in a stream (whose
/// HTTP status was 200).
fn status_of(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => OVERLOADED,
        _ => 500,
    }
}

impl AnthropicError<'_> {
    /// The OpenAI envelope for this error, and its status, answered with `status`.
    fn envelope(&self, status: u16) -> (u16, Vec<u8>) {
        let message = self.message.as_deref().unwrap_or("");
        let (status, kind, code) = mapping(&self.kind, faithful(status), message);
        let message = if message.trim().is_empty() {
            generic(status)
        } else {
            message
        };
        (status, envelope(message, kind, None, code))
    }

    /// The envelope for this error met in a stream, its status taken from its type.
    pub(super) fn stream_envelope(&self) -> Vec<u8> {
        self.envelope(status_of(&self.kind)).1
    }
}

/// A message for an error that says nothing useful.
fn generic(status: u16) -> &'static str {
    if status >= 500 {
        generic_message(status)
    } else {
        "The backend rejected the request."
    }
}

/// An Anthropic backend's error answer (`status`, `body`) as OpenAI's envelope and the status
/// the client gets (see the module's table). A body not in Anthropic's shape gets a generic
/// message for its status.
pub fn openai_error(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    match serde_json::from_slice::<ErrorBody<'_>>(body) {
        Ok(err) if err.kind.as_deref().is_none_or(|k| k == "error") => err.error.envelope(status),
        _ => {
            let code = (status == OVERLOADED).then_some("overloaded");
            let status = faithful(status);
            (
                status,
                envelope(generic(status), type_for_status(status), None, code),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, body: &str) -> (u16, serde_json::Value) {
        let (status, body) = openai_error(status, body.as_bytes());
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn anthropic(kind: &str, message: &str) -> String {
        serde_json::json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"})
            .to_string()
    }

    #[test]
    fn each_documented_type_maps_with_its_message_kept() {
        for (status, kind, out_status, out_kind, code) in [
            (
                400,
                "invalid_request_error",
                400,
                "invalid_request_error",
                None,
            ),
            (
                401,
                "authentication_error",
                401,
                "authentication_error",
                None,
            ),
            (
                402,
                "billing_error",
                402,
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            (403, "permission_error", 403, "permission_error", None),
            (404, "not_found_error", 404, "invalid_request_error", None),
            (
                413,
                "request_too_large",
                413,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            (
                429,
                "rate_limit_error",
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
            ),
            (500, "api_error", 500, "server_error", None),
            (504, "timeout_error", 504, "server_error", Some("timeout")),
            (
                529,
                "overloaded_error",
                503,
                "server_error",
                Some("overloaded"),
            ),
            (418, "teapot_error", 418, "invalid_request_error", None),
        ] {
            let (s, v) = error(status, &anthropic(kind, "It went wrong."));
            assert_eq!(s, out_status, "{kind}");
            assert_eq!(v["error"]["message"], "It went wrong.", "{kind}");
            assert_eq!(v["error"]["type"], out_kind, "{kind}");
            assert_eq!(v["error"]["code"].as_str(), code, "{kind}");
            assert_eq!(v["error"]["param"], serde_json::Value::Null);
            assert!(v.get("request_id").is_none() && v.get("type").is_none());
        }
    }

    #[test]
    fn an_unknown_model_is_model_not_found() {
        let (s, v) = error(404, &anthropic("not_found_error", "model: claude-nope"));
        assert_eq!(s, 404);
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn bodies_not_in_anthropic_shape_get_a_generic_message() {
        for (status, body, out_status, kind) in [
            (
                502,
                "<html>bad gateway at 10.0.0.1</html>",
                502,
                "server_error",
            ),
            (529, "", 503, "server_error"),
            (
                400,
                r#"{"error":"secret detail"}"#,
                400,
                "invalid_request_error",
            ),
            (
                429,
                r#"{"type":"other","error":{"type":"x","message":"m"}}"#,
                429,
                "rate_limit_error",
            ),
            (401, "\u{0}\u{ff}", 401, "authentication_error"),
        ] {
            let (s, v) = error(status, body);
            assert_eq!(s, out_status, "{body}");
            assert_eq!(v["error"]["type"], kind, "{body}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(!message.contains("10.0.0.1") && !message.contains("secret"));
            assert!(!message.is_empty());
        }
        let (_, v) = error(529, "");
        assert_eq!(v["error"]["code"], "overloaded");
    }

    #[test]
    fn escaped_text_is_read_as_written() {
        let (s, v) = error(
            529,
            r#"{"type":"err\u006fr","error":{"type":"overloaded_\u0065rror","message":"Over\nloaded \u00e9"}}"#,
        );
        assert_eq!(s, 503);
        assert_eq!(v["error"]["message"], "Over\nloaded \u{e9}");
        assert_eq!(v["error"]["code"], "overloaded");
    }

    #[test]
    fn an_empty_message_gets_a_generic_one() {
        let (_, v) = error(529, &anthropic("overloaded_error", " "));
        assert_eq!(v["error"]["message"], generic_message(503));
    }

    #[test]
    fn stream_errors_take_their_status_from_their_type() {
        let err: AnthropicError =
            serde_json::from_str(r#"{"type":"overloaded_error","message":"Overloaded"}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&err.stream_envelope()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded"}})
        );
    }
}
