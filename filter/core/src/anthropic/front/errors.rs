//! Errors in Anthropic's shape, `{"type":"error","error":{"type","message"}}`: the router's
//! own, and OpenAI's envelope (a backend's error, or the router's on the inner chat request)
//! turned into it with its status kept.

use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// Anthropic's error `type` for an HTTP status (its "HTTP errors" list): 400
/// `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 503 and 529
/// `overloaded_error`, any other 5xx `api_error`, any other status `invalid_request_error`
/// (Anthropic uses it for 4xx it does not list).
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// An error body in Anthropic's shape, of type `kind`, or, when `kind` is empty, the type of
/// `status` ([`error_type`]). The status itself is the response's, not the body's.
pub fn error_body(status: u16, kind: &str, message: &str) -> Vec<u8> {
    let kind = if kind.is_empty() {
        error_type(status)
    } else {
        kind
    };
    let body = Body {
        kind: "error",
        error: Inner { kind, message },
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#.to_vec()
    })
}

/// OpenAI's error envelope `{"error":{"message",...}}` with its status, in Anthropic's shape:
/// the status kept, the `type` from it ([`error_type`]), the message kept. A body without a
/// message (not JSON, another shape) gets one saying the status.
pub fn anthropic_error(status: u16, openai_body: &[u8]) -> (u16, Vec<u8>) {
    let message = serde_json::from_slice::<Value>(openai_body)
        .ok()
        .as_ref()
        .and_then(message_of)
        .unwrap_or_else(|| fallback_message(status));
    (status, error_body(status, error_type(status), &message))
}

/// The message of an error value: `{"error":{"message"}}`, `{"error":"..."}`, `{"message"}`.
fn message_of(v: &Value) -> Option<String> {
    let err = v.get("error").unwrap_or(v);
    err.as_str()
        .or_else(|| err.get("message").and_then(Value::as_str))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

fn fallback_message(status: u16) -> String {
    if status >= 500 {
        crate::backend_errors::generic_message(status).to_string()
    } else {
        crate::text::concat(&["The request failed (HTTP ", &status.to_string(), ")."])
    }
}

/// The `error` a chat stream sent mid-way (`data: {"error":...}`), as Anthropic's `type` and
/// message: the status its numeric `code` (or `status`) names, else its OpenAI `type`, else
/// `api_error`.
pub(super) fn stream_error(err: &Value) -> (&'static str, String) {
    let number = |k: &str| {
        let v = err.get(k)?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let status = number("code")
        .or_else(|| number("status"))
        .filter(|c| (400..600).contains(c))
        .and_then(|c| u16::try_from(c).ok());
    let kind = match (status, err.get("type").and_then(Value::as_str)) {
        (Some(s), _) => error_type(s),
        (None, Some(t)) => openai_type(t),
        (None, None) => "api_error",
    };
    let message = message_of(err).unwrap_or_else(|| "The backend's stream failed.".into());
    (kind, message)
}

/// Anthropic's `type` for an OpenAI error `type`.
fn openai_type(t: &str) -> &'static str {
    match t {
        "invalid_request_error" | "BadRequestError" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" | "NotFoundError" => "not_found_error",
        "rate_limit_error" => "rate_limit_error",
        "overloaded" | "overloaded_error" | "engine_overloaded" | "service_unavailable" => {
            "overloaded_error"
        }
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn statuses_get_anthropic_types() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "api_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(error_type(status), kind, "{status}");
        }
    }

    #[test]
    fn openai_envelopes_keep_status_and_message() {
        let openai = crate::errors::ApiError::model_not_found("m").body();
        let (status, body) = anthropic_error(404, &openai);
        assert_eq!(status, 404);
        assert_eq!(
            parse(&body),
            serde_json::json!({"type":"error","error":{"type":"not_found_error","message":"The model `m` does not exist."}})
        );
        let (status, body) = anthropic_error(
            503,
            br#"{"error":{"message":"busy","type":"server_error"}}"#,
        );
        assert_eq!(status, 503);
        assert_eq!(parse(&body)["error"]["type"], "overloaded_error");
        assert_eq!(parse(&body)["error"]["message"], "busy");
    }

    #[test]
    fn bodies_without_a_message_say_the_status() {
        let (_, body) = anthropic_error(502, b"<html>bad gateway</html>");
        let v = parse(&body);
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(
            v["error"]["message"],
            crate::backend_errors::generic_message(502)
        );
        let (_, body) = anthropic_error(418, b"{}");
        assert_eq!(
            parse(&body)["error"]["message"],
            "The request failed (HTTP 418)."
        );
        let (_, body) = anthropic_error(400, br#"{"error":"plain text"}"#);
        assert_eq!(parse(&body)["error"]["message"], "plain text");
    }

    #[test]
    fn error_bodies_escape_messages() {
        let body = error_body(400, "invalid_request_error", "a \"quoted\"\nline");
        assert_eq!(parse(&body)["error"]["message"], "a \"quoted\"\nline");
        assert_eq!(parse(&body)["type"], "error");
        let body = error_body(429, "", "slow down");
        assert_eq!(parse(&body)["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn stream_errors_are_typed_by_code_then_type() {
        let cases = [
            (
                serde_json::json!({"error":{"message":"bad","code":400}}),
                "invalid_request_error",
            ),
            (
                serde_json::json!({"error":{"message":"x","code":"429"}}),
                "rate_limit_error",
            ),
            (
                serde_json::json!({"error":{"message":"x","type":"server_error","code":null}}),
                "api_error",
            ),
            (
                serde_json::json!({"error":{"message":"x","type":"rate_limit_error"}}),
                "rate_limit_error",
            ),
            (
                serde_json::json!({"error":{"message":"x","code":"engine_overloaded","type":"overloaded"}}),
                "overloaded_error",
            ),
            (serde_json::json!({"error":"text"}), "api_error"),
        ];
        for (chunk, kind) in cases {
            assert_eq!(stream_error(&chunk["error"]).0, kind, "{chunk}");
        }
        assert_eq!(stream_error(&serde_json::json!("text")).1, "text");
        assert_eq!(
            stream_error(&serde_json::json!({})).1,
            "The backend's stream failed."
        );
    }
}
