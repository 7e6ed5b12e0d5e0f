//! Errors on the way back: upstream error bodies put into OpenAI's envelope with their status kept,
//! and Envoy's own failures (connection refused, timeout) turned into 502 and 504.

use serde_json::{Map, Value};

use crate::errors::{envelope, type_for_status, ApiError};
use crate::model_names::NameRewriter;

/// An upstream error body in OpenAI's envelope, with every backend model name replaced.
pub fn wrap(
    status: u16,
    body: &[u8],
    names: &NameRewriter,
    backend_models: &[&str],
    client_name: &str,
) -> Vec<u8> {
    let mut models: Vec<&str> = backend_models
        .iter()
        .copied()
        .filter(|m| !m.is_empty() && *m != client_name)
        .collect();
    // Longest first, so a name that contains another is replaced whole.
    models.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let scrub = |s: &str| {
        models
            .iter()
            .fold(s.to_string(), |acc, m| acc.replace(m, client_name))
    };
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if let Some(obj) = &parsed {
        if let Some(Value::Object(err)) = obj.get("error") {
            if err.get("message").is_some_and(Value::is_string) {
                // Already OpenAI-shaped: swap names in tokens, then inside messages.
                let renamed = names
                    .rewrite_document(body)
                    .unwrap_or_else(|| body.to_vec());
                let text = String::from_utf8_lossy(&renamed);
                return scrub(&text).into_bytes();
            }
        }
    }
    let message = parsed
        .as_ref()
        .and_then(|obj| {
            ["message", "detail", "error"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_str).map(str::to_string))
                .or_else(|| {
                    obj.get("error")
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let cut: String = text.chars().take(1000).collect();
            if cut.is_empty() {
                format!("The backend answered HTTP {status} with no details.")
            } else {
                cut
            }
        });
    envelope(&scrub(&message), type_for_status(status), None, None)
}

/// What an Envoy-generated response (no upstream answer) means for the client, from Envoy's
/// `response.code_details`. `None` when the response did come from the upstream.
/// `response.code_details` of a request Envoy's rate limit filter refused.
pub const RATE_LIMITED: &str = "request_rate_limited";

pub fn local_failure(status: u16, code_details: &str) -> Option<ApiError> {
    if code_details.is_empty() || code_details == "via_upstream" || code_details == RATE_LIMITED {
        return None;
    }
    if code_details.contains("rate_limiter_error") {
        return Some(ApiError::limiter_unavailable());
    }
    if code_details.contains("response_timeout") || code_details.contains("timeout") {
        return Some(ApiError::gateway_timeout());
    }
    if code_details.contains("connection_failure")
        || code_details.contains("connect")
        || code_details.contains("no_healthy_upstream")
        || code_details.contains("reset")
    {
        let why = if code_details.contains("refused") {
            "connection refused"
        } else if code_details.contains("reset") && !code_details.contains("connect") {
            "connection reset"
        } else {
            "connection failure"
        };
        return Some(ApiError::bad_gateway(why));
    }
    (status >= 500).then(|| ApiError::internal(&code_details.replace('_', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> NameRewriter {
        NameRewriter::new("chat-small", "qwen2-0.5b")
    }

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn openai_shaped_errors_keep_their_fields_but_lose_backend_names() {
        let body = br#"{"error":{"message":"The model `qwen2-0.5b` is overloaded","type":"server_error","param":null,"code":"overloaded","model":"qwen2-0.5b"}}"#;
        let out = wrap(503, body, &names(), &["qwen2-0.5b"], "chat-small");
        let v = parse(&out);
        assert_eq!(
            v["error"]["message"],
            "The model `chat-small` is overloaded"
        );
        assert_eq!(v["error"]["code"], "overloaded");
        assert!(!String::from_utf8_lossy(&out).contains("qwen2"));
    }

    #[test]
    fn other_shapes_are_wrapped() {
        let v = parse(&wrap(
            400,
            br#"{"object":"error","message":"bad qwen2-0.5b","code":400}"#,
            &names(),
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "bad chat-small");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let v = parse(&wrap(
            422,
            br#"{"detail":"nope"}"#,
            &names(),
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "nope");
        let v = parse(&wrap(
            500,
            b"Internal Server Error\n",
            &names(),
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "Internal Server Error");
        assert_eq!(v["error"]["type"], "server_error");
        let v = parse(&wrap(502, b"", &names(), &["qwen2-0.5b"], "chat-small"));
        assert!(v["error"]["message"].as_str().unwrap().contains("502"));
    }

    #[test]
    fn envoy_failures_map_to_502_and_504() {
        assert_eq!(local_failure(503, "via_upstream"), None);
        assert_eq!(
            local_failure(504, "upstream_response_timeout")
                .unwrap()
                .status,
            504
        );
        let refused = "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}";
        assert_eq!(local_failure(503, refused).unwrap().status, 502);
    }
}
