//! Envoy's own answers in OpenAI's envelope: the listener's `local_reply_config`. Envoy answers
//! some requests itself, in plain text, where the filter cannot reach: a chunked body over the
//! buffer limit (413), a backend that breaks off a response the filter holds (502, sent straight
//! to the client), timeouts (408, 504), header overflow (431), codec errors (400), no healthy
//! upstream (503). Each gets a fixed OpenAI error body with `content-type: application/json` and
//! its status kept.
//!
//! A request from a client of Anthropic's API (the filter marks it with
//! [`ANTHROPIC_FRONT_FILTER_STATE`]) gets the same replies in Anthropic's error shape,
//! `{"type":"error","error":{"type","message"}}`, by mappers that come first. Replies Envoy
//! sends before any filter saw the request (a request line or headers its codec refuses: 400,
//! 431) cannot tell the client's API, and are OpenAI's.
//!
//! Replies that are already JSON are left alone: the filter's own (their response code details
//! are [`LOCAL_REPLY_DETAILS`]), the catch-all route's `direct_response` and the rate limit filter's
//! refusals (bodies from the limiter). Mappers match with CEL on `response.code` and
//! `response.code_details`, first match wins; a reply no mapper matches keeps its body.

use airouter_core::anthropic::front::{anthropic_error, error_type};
use airouter_core::backend_errors::RATE_LIMITED;
use airouter_core::contract::{ANTHROPIC_FRONT_FILTER_STATE, LOCAL_REPLY_DETAILS};
use airouter_core::errors::{envelope, ApiError};
use serde_json::{json, Value};

/// `response.code_details` of replies whose bodies are already OpenAI errors.
const JSON_ALREADY: [&str; 3] = [LOCAL_REPLY_DETAILS, "direct_response", RATE_LIMITED];

/// A CEL expression true for Envoy's own replies with a status in `statuses` (`lo..=hi`).
fn envoy_reply(lo: u16, hi: u16) -> String {
    let quoted: Vec<String> = JSON_ALREADY.iter().map(|d| format!("'{d}'")).collect();
    format!(
        "response.code >= {lo} && response.code <= {hi} && !(response.code_details in [{}])",
        quoted.join(", ")
    )
}

/// A CEL expression true for a request the filter marked as from a client of Anthropic's API.
fn anthropic_client() -> String {
    format!("'{ANTHROPIC_FRONT_FILTER_STATE}' in filter_state")
}

pub(super) fn cel_filter(expression: &str) -> Value {
    json!({ "extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": expression
        }
    }})
}

/// A mapper giving matching replies `body`, as JSON. The body is the local reply body and the
/// format only echoes it, so no `%` in it is ever read as a format command.
pub fn mapper(filter: Value, body: &[u8]) -> Value {
    json!({
        "filter": filter,
        "body": { "inline_string": String::from_utf8_lossy(body) },
        "body_format_override": {
            "text_format_source": { "inline_string": "%LOCAL_REPLY_BODY%" },
            "content_type": "application/json"
        }
    })
}

/// The OpenAI body for Envoy's reply with `status`, when it has a fixed one.
fn body_for(status: u16, max_body_bytes: u64) -> Option<Vec<u8>> {
    let invalid = "invalid_request_error";
    let server = "server_error";
    let body = match status {
        400 => envelope(
            "The request could not be read: it is not valid HTTP.",
            invalid,
            None,
            Some("invalid_request"),
        ),
        404 => envelope("Unknown request URL.", invalid, None, Some("unknown_url")),
        408 => envelope(
            "The request was not received in time.",
            invalid,
            None,
            Some("request_timeout"),
        ),
        413 => ApiError::too_large(max_body_bytes).body(),
        431 => envelope(
            "The request's headers are too large.",
            invalid,
            None,
            Some("request_headers_too_large"),
        ),
        500 => envelope(
            "Internal router error.",
            server,
            None,
            Some("internal_error"),
        ),
        502 => envelope(
            "The backend's answer broke off or could not be read.",
            server,
            None,
            Some("upstream_error"),
        ),
        503 => envelope(
            "No backend is available for this request. Try again later.",
            server,
            None,
            Some("upstream_unavailable"),
        ),
        504 => ApiError::gateway_timeout().body(),
        _ => return None,
    };
    Some(body)
}

/// Statuses with a body of their own; others fall to the 4xx and 5xx catch-alls.
const STATUSES: [u16; 9] = [400, 404, 408, 413, 431, 500, 502, 503, 504];

/// The catch-all for an Envoy reply with no fixed body: the envelope around Envoy's status.
fn fallback(lo: u16, hi: u16, kind: &str, what: &str) -> Value {
    json!({
        "filter": cel_filter(&envoy_reply(lo, hi)),
        "body_format_override": {
            "json_format": { "error": {
                "message": format!("{what} (HTTP %RESPONSE_CODE%)."),
                "type": kind,
                "param": null,
                "code": null
            }},
            "content_type": "application/json"
        }
    })
}

/// The catch-all for Envoy's replies with no fixed body to Anthropic's clients.
fn anthropic_fallback(lo: u16, hi: u16, kind: &str, what: &str) -> Value {
    json!({
        "filter": cel_filter(&format!("{} && {}", envoy_reply(lo, hi), anthropic_client())),
        "body_format_override": {
            "json_format": { "type": "error", "error": {
                "type": kind,
                "message": format!("{what} (HTTP %RESPONSE_CODE%)."),
            }},
            "content_type": "application/json"
        }
    })
}

/// Envoy's `response.code_details` for a response body over the buffer it was held in.
const RESPONSE_TOO_LARGE: &str = "response_payload_too_large";

/// The mappers for a backend's answer over the buffer the filter holds it in to rewrite it:
/// Envoy answers 500, as if the router had failed; the client gets a 502 naming the cause.
fn response_too_large(max_body_bytes: u64) -> [Value; 2] {
    let openai = envelope(
        &format!(
            "The backend's answer is larger than the router holds to rewrite it ({max_body_bytes} bytes)."
        ),
        "server_error",
        None,
        Some("backend_response_too_large"),
    );
    let (_, anthropic) = anthropic_error(502, &openai);
    let details = format!("response.code_details == '{RESPONSE_TOO_LARGE}'");
    let mut to_anthropic = mapper(
        cel_filter(&format!("{details} && {}", anthropic_client())),
        &anthropic,
    );
    let mut to_openai = mapper(cel_filter(&details), &openai);
    to_anthropic["status_code"] = json!(502);
    to_openai["status_code"] = json!(502);
    [to_anthropic, to_openai]
}

/// The listener's `local_reply_config`; `first` are mappers that take precedence (the global
/// rate limiter's).
pub fn config(max_body_bytes: u64, first: Vec<Value>) -> Value {
    let mut mappers = first;
    mappers.extend(response_too_large(max_body_bytes));
    for status in STATUSES {
        if let Some(body) = body_for(status, max_body_bytes) {
            let (_, body) = anthropic_error(status, &body);
            let filter = format!("{} && {}", envoy_reply(status, status), anthropic_client());
            mappers.push(mapper(cel_filter(&filter), &body));
        }
    }
    mappers.push(anthropic_fallback(
        400,
        499,
        error_type(400),
        "The proxy refused the request",
    ));
    mappers.push(anthropic_fallback(
        500,
        599,
        error_type(500),
        "The proxy could not serve the request",
    ));
    for status in STATUSES {
        if let Some(body) = body_for(status, max_body_bytes) {
            mappers.push(mapper(cel_filter(&envoy_reply(status, status)), &body));
        }
    }
    mappers.push(fallback(
        400,
        499,
        "invalid_request_error",
        "The proxy refused the request",
    ));
    mappers.push(fallback(
        500,
        599,
        "server_error",
        "The proxy could not serve the request",
    ));
    json!({ "mappers": mappers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_body_is_an_openai_error() {
        for status in STATUSES {
            let body = body_for(status, 10).unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"]["message"].is_string(), "{status}");
            assert!(v["error"]["code"].is_string(), "{status}");
            assert!(v["error"]["param"].is_null(), "{status}");
        }
    }

    #[test]
    fn anthropic_clients_get_every_reply_in_anthropic_shape_first() {
        let config = config(10, Vec::new());
        let mappers = config["mappers"].as_array().unwrap();
        let anthropic = STATUSES.len() + 2;
        // After the two for an answer over the buffer.
        let mappers = &mappers[2..];
        for (i, m) in mappers.iter().enumerate() {
            let expr = m["filter"]["extension_filter"]["typed_config"]["expression"]
                .as_str()
                .unwrap();
            assert_eq!(
                expr.contains(ANTHROPIC_FRONT_FILTER_STATE),
                i < anthropic,
                "{expr}"
            );
            if let Some(body) = m["body"]["inline_string"].as_str() {
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["type"] == "error", i < anthropic, "{body}");
                assert!(v["error"]["message"].is_string(), "{body}");
            } else {
                let f = &m["body_format_override"]["json_format"];
                assert_eq!(f["type"] == "error", i < anthropic, "{f}");
            }
        }
    }

    #[test]
    fn json_replies_are_not_matched() {
        let e = envoy_reply(413, 413);
        assert_eq!(
            e,
            "response.code >= 413 && response.code <= 413 && !(response.code_details in ['airouter', 'direct_response', 'request_rate_limited'])"
        );
    }
}
