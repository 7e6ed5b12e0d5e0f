//! Errors on the way back: upstream error bodies put into OpenAI's envelope with their status kept
//! (only OpenAI's four fields, every backend name and URL removed from their text), and Envoy's
//! own failures (connection refused, timeout) turned into 502 and 504.

use serde_json::{Map, Value};

use crate::errors::{envelope, type_for_status, ApiError};
use crate::model_names::NameRewriter;

/// Longest message passed on from a backend, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Replaces what names a backend in an error's text: its model names (anywhere, longest first:
/// error texts hold no protocol tokens to protect) and URLs.
struct Scrubber<'a> {
    models: Vec<&'a str>,
    client_name: &'a str,
}

impl<'a> Scrubber<'a> {
    fn new(backend_models: &[&'a str], client_name: &'a str) -> Self {
        let mut models: Vec<&str> = backend_models
            .iter()
            .copied()
            .filter(|m| !m.is_empty() && *m != client_name)
            .collect();
        models.sort_by_key(|m| std::cmp::Reverse(m.len()));
        Scrubber {
            models,
            client_name,
        }
    }

    fn scrub(&self, text: &str) -> String {
        let cut: String = text.trim().chars().take(MAX_MESSAGE_CHARS).collect();
        let renamed = self
            .models
            .iter()
            .fold(cut, |acc, m| acc.replace(m, self.client_name));
        without_urls(&renamed)
    }
}

/// `text` with every `http://` and `https://` URL (up to a space, quote or bracket, and not the
/// punctuation that ends a sentence) replaced by `<url>`: backends name their own hosts, and
/// providers their documentation.
fn without_urls(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(at) = lower
        .get(from..)
        .and_then(|rest| rest.find("http").map(|i| i + from))
    {
        let scheme = ["https://", "http://"]
            .into_iter()
            .find(|s| lower.get(at..).is_some_and(|r| r.starts_with(s)));
        let Some(scheme) = scheme else {
            from = at + 4;
            continue;
        };
        let rest = text.get(at + scheme.len()..).unwrap_or("");
        let url = rest
            .find(|c: char| c.is_whitespace() || "\"'`<>()[]{}".contains(c))
            .map_or(rest, |end| rest.get(..end).unwrap_or(rest));
        // Punctuation ending a sentence is the sentence's.
        let len = url.trim_end_matches(['.', ',', ';', ':', '!', '?']).len();
        out.push_str(text.get(copied..at).unwrap_or(""));
        out.push_str("<url>");
        copied = at + scheme.len() + len;
        from = copied;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// The envelope for an object holding an `error` (an object in OpenAI's shape, or a string):
/// only `message`, `type`, `param` and `code`, each scrubbed; `None` when there is no `error`.
fn from_error_member(
    obj: &Map<String, Value>,
    default_type: &str,
    scrubber: &Scrubber<'_>,
) -> Option<Vec<u8>> {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(scrubber.scrub(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match obj.get("error")? {
        Value::Object(err) => {
            let message = ["message", "detail"]
                .iter()
                .find_map(|k| err.get(*k).and_then(Value::as_str))
                .map(|m| scrubber.scrub(m))
                .unwrap_or_else(|| "The backend reported an error.".into());
            let kind = text(err.get("type")).filter(|t| !t.is_empty());
            let param = text(err.get("param"));
            let code = text(err.get("code"));
            Some(envelope(
                &message,
                kind.as_deref().unwrap_or(default_type),
                param.as_deref(),
                code.as_deref(),
            ))
        }
        Value::String(message) => {
            Some(envelope(&scrubber.scrub(message), default_type, None, None))
        }
        _ => None,
    }
}

/// For an SSE event's data holding an `error` (a backend failing mid-stream): OpenAI's
/// envelope with only its fields, renamed; `None` when the data is no such object.
pub fn trimmed(data: &[u8], names: &NameRewriter) -> Option<Vec<u8>> {
    let obj: Map<String, Value> = serde_json::from_slice(data).ok()?;
    let backend: Vec<String> = names
        .backend_names()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let backend: Vec<&str> = backend.iter().map(String::as_str).collect();
    let client = names.client_text();
    let client = String::from_utf8_lossy(client);
    from_error_member(&obj, "server_error", &Scrubber::new(&backend, &client))
}

/// An upstream error body in OpenAI's envelope, with every backend model name replaced. One
/// already in OpenAI's shape keeps only OpenAI's fields; others have their message found
/// (`message`, `detail`, `error`, or the text itself).
pub fn wrap(status: u16, body: &[u8], backend_models: &[&str], client_name: &str) -> Vec<u8> {
    let scrubber = Scrubber::new(backend_models, client_name);
    let default_type = type_for_status(status);
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if let Some(out) = parsed
        .as_ref()
        .and_then(|obj| from_error_member(obj, default_type, &scrubber))
    {
        return out;
    }
    let message = parsed
        .as_ref()
        .and_then(|obj| {
            ["message", "detail"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_str).map(str::to_string))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message = scrubber.scrub(&message);
    let message = if message.is_empty() {
        format!("The backend answered HTTP {status} with no details.")
    } else {
        message
    };
    envelope(&message, default_type, None, None)
}

/// `response.code_details` of a request Envoy's rate limit filter refused.
pub const RATE_LIMITED: &str = "request_rate_limited";

/// What an Envoy-generated response (no upstream answer) means for the client, from Envoy's
/// `response.code_details`. `None` when the response did come from the upstream.
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

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn openai_shaped_errors_keep_their_fields_but_lose_backend_names() {
        let body = br#"{"error":{"message":"The model `qwen2-0.5b` is overloaded","type":"server_error","param":null,"code":"overloaded","model":"qwen2-0.5b"}}"#;
        let out = wrap(503, body, &["qwen2-0.5b"], "chat-small");
        let v = parse(&out);
        assert_eq!(
            v["error"]["message"],
            "The model `chat-small` is overloaded"
        );
        assert_eq!(v["error"]["code"], "overloaded");
        assert!(!String::from_utf8_lossy(&out).contains("qwen2"));
    }

    /// Extra fields of an OpenAI-shaped error (a backend's URL, its model) never reach the
    /// client, nor do URLs and names inside the fields that stay.
    #[test]
    fn openai_shaped_errors_keep_only_openai_fields() {
        let body = br#"{"error":{"message":"qwen2-0.5b at http://10.0.0.5:8000/v1 is overloaded; see https://docs.example/x.","type":"server_error","param":"model qwen2-0.5b","code":503,"backend_url":"http://10.0.0.5:8000/v1","model":"qwen2-0.5b"},"backend":"vllm-7"}"#;
        let out = wrap(503, body, &["qwen2-0.5b"], "chat-small");
        assert_eq!(
            parse(&out),
            serde_json::json!({"error": {
                "message": "chat-small at <url> is overloaded; see <url>.",
                "type": "server_error",
                "param": "model chat-small",
                "code": "503",
            }})
        );
        // A string error, and an error without a message.
        let v = parse(&wrap(
            500,
            br#"{"error":"qwen2-0.5b died","x":1}"#,
            &["qwen2-0.5b"],
            "c",
        ));
        assert_eq!(v["error"]["message"], "c died");
        assert_eq!(v["error"].as_object().unwrap().len(), 4);
        let v = parse(&wrap(500, br#"{"error":{"kind":"x"}}"#, &["m"], "c"));
        assert_eq!(v["error"]["message"], "The backend reported an error.");
        assert_eq!(v["error"]["type"], "server_error");
    }

    #[test]
    fn stream_error_events_are_trimmed_the_same_way() {
        let names = NameRewriter::new("chat-small", "qwen2-0.5b");
        let data = br#"{"error":{"object":"error","message":"qwen2-0.5b failed","type":"BadRequestError","param":null,"code":400,"url":"http://h"}}"#;
        let v = parse(&trimmed(data, &names).unwrap());
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "chat-small failed", "type": "BadRequestError", "param": null, "code": "400"}})
        );
        assert_eq!(trimmed(br#"{"choices":[]}"#, &names), None);
        assert_eq!(trimmed(b"[1]", &names), None);
    }

    #[test]
    fn urls_are_removed_whatever_their_case() {
        assert_eq!(
            without_urls("a HTTP://x.y/z, b (https://q) httpx http"),
            "a <url>, b (<url>) httpx http"
        );
        let long = "x".repeat(5000);
        let v = parse(&wrap(500, long.as_bytes(), &["m"], "c"));
        assert_eq!(
            v["error"]["message"].as_str().unwrap().len(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn other_shapes_are_wrapped() {
        let v = parse(&wrap(
            400,
            br#"{"object":"error","message":"bad qwen2-0.5b","code":400}"#,
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "bad chat-small");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let v = parse(&wrap(
            422,
            br#"{"detail":"nope"}"#,
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "nope");
        let v = parse(&wrap(
            500,
            b"Internal Server Error\n",
            &["qwen2-0.5b"],
            "chat-small",
        ));
        assert_eq!(v["error"]["message"], "Internal Server Error");
        assert_eq!(v["error"]["type"], "server_error");
        let v = parse(&wrap(502, b"", &["qwen2-0.5b"], "chat-small"));
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
