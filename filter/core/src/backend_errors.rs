//! Errors on the way back: a backend's error bodies put into OpenAI's envelope with their status
//! kept (only OpenAI's four fields), and Envoy's own failures (connection refused, timeout)
//! turned into 502 and 504.
//!
//! A backend's 5xx text is not the client's business: it names hosts, addresses, engines and
//! internal state (`upstream connect to 10.0.0.5:8000 (gpu-node-3) failed`), and OpenAI's own 5xx
//! messages are generic. So a 5xx keeps its status, and its `type` and `code` where they are
//! OpenAI's, but gets a generic message per status. A 4xx message is the client's (it says what
//! was wrong with the request) and is kept, with backend model names (in any case), URLs, IP
//! addresses and `host:port` forms removed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde_json::{Map, Value};

use crate::errors::{envelope, type_for_status, ApiError};
use crate::model_names::NameRewriter;

/// Longest message passed on from a backend, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Error types of OpenAI's API, kept in a 5xx; any other becomes the status's own type.
const OPENAI_TYPES: [&str; 8] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "server_error",
    "api_error",
    "insufficient_quota",
];

/// Error codes of OpenAI's API that a 5xx may carry, kept; any other (and any `param`) is
/// dropped. Numeric codes are kept too: digits name nothing.
const OPENAI_5XX_CODES: [&str; 6] = [
    "server_error",
    "internal_error",
    "service_unavailable",
    "engine_overloaded",
    "timeout",
    "overloaded",
];

/// The message a 5xx from a backend gets, whatever it said.
pub fn generic_message(status: u16) -> &'static str {
    match status {
        500 => "The backend had an internal error while processing the request.",
        501 => "The backend does not implement this request.",
        502 => "The backend's own upstream failed (bad gateway).",
        503 => "The backend is unavailable or overloaded; retry later.",
        504 => "The backend timed out while processing the request.",
        _ => "The backend failed to process the request.",
    }
}

/// Replaces what names a backend in an error's text: its model names (anywhere, in any ASCII
/// case, longest first: error texts hold no protocol tokens to protect), URLs, IP addresses
/// and `host:port` forms.
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
            .fold(cut, |acc, m| replace_ascii_ci(&acc, m, self.client_name));
        without_addresses(&without_urls(&renamed))
    }
}

/// `text` with every occurrence of `name` in any ASCII case replaced by `with`. Error texts are
/// at most [`MAX_MESSAGE_CHARS`] long, and lower-casing keeps byte positions.
fn replace_ascii_ci(text: &str, name: &str, with: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let needle = name.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in memchr::memmem::find_iter(lower.as_bytes(), needle.as_bytes()) {
        if at < copied {
            continue;
        }
        out.push_str(text.get(copied..at).unwrap_or(""));
        out.push_str(with);
        copied = at + needle.len();
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// `text` with IP addresses (v4 and v6, bracketed, with a zone or a port) and `host:port` forms
/// replaced by `<address>`. Candidates are runs of the characters addresses are made of; one
/// that is not an address as a whole is tried again in its pieces between `-` and `_`
/// (`node-10.0.0.5`). A `host:port` is a DNS name with a letter in it, then 1-5 digits
/// (`gpu-node-3:8000`, `vllm:8000`): a `word:number` in a message is taken for one too.
fn without_addresses(text: &str) -> String {
    let is_addr_byte = |b: u8| b.is_ascii_alphanumeric() || b".:-_[]%".contains(&b);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if !bytes.get(i).copied().is_some_and(is_addr_byte) {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).copied().is_some_and(is_addr_byte) {
            i += 1;
        }
        let run = text.get(start..i).unwrap_or("");
        // Punctuation ending a sentence or a label is the text's.
        let core = run.trim_end_matches(['.', ':']);
        let scrubbed = if is_address(core) {
            Some("<address>".to_string())
        } else if core.split(['-', '_']).any(is_address) {
            let pieces: Vec<&str> = core
                .split_inclusive(['-', '_'])
                .map(|p| {
                    let (word, sep) = p.split_at(p.trim_end_matches(['-', '_']).len());
                    if is_address(word) {
                        if sep.is_empty() {
                            "<address>"
                        } else if sep == "-" {
                            "<address>-"
                        } else {
                            "<address>_"
                        }
                    } else {
                        p
                    }
                })
                .collect();
            Some(pieces.concat())
        } else {
            None
        };
        if let Some(scrubbed) = scrubbed {
            out.push_str(text.get(copied..start).unwrap_or(""));
            out.push_str(&scrubbed);
            copied = start + core.len();
        }
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// Whether `s` is an IP address (optionally bracketed, with a zone or a port) or `host:port`.
fn is_address(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() || s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let unbracketed = s.trim_start_matches('[');
    let unbracketed = unbracketed.split(']').next().unwrap_or(unbracketed);
    let unzoned = unbracketed.split('%').next().unwrap_or(unbracketed);
    if unzoned.contains(':') && unzoned.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    port_ok && host.bytes().any(|b| b.is_ascii_alphabetic()) && host.split('.').all(label_ok)
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
/// For a 5xx `status`, see [`server_error`].
fn from_error_member(
    obj: &Map<String, Value>,
    status: u16,
    scrubber: &Scrubber<'_>,
) -> Option<Vec<u8>> {
    let default_type = type_for_status(status);
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(scrubber.scrub(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    if status >= 500 {
        let err = obj.get("error")?;
        return Some(server_error(status, err.as_object()));
    }
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

/// A 5xx's envelope: the [`generic_message`] of its status, its `type` and `code` where they
/// are OpenAI's (or a number), no `param`.
fn server_error(status: u16, err: Option<&Map<String, Value>>) -> Vec<u8> {
    let field = |k: &str| err.and_then(|e| e.get(k));
    let kind = field("type")
        .and_then(Value::as_str)
        .filter(|t| OPENAI_TYPES.contains(t))
        .unwrap_or(type_for_status(status));
    let code = match field("code") {
        // The router's own ending of a stream it translated (a stream event over its limit,
        // a stream cut short): its code, and its own words rather than a backend's.
        Some(Value::String(c)) if c == crate::sse::TOO_LARGE_CODE => {
            return envelope(crate::sse::TOO_LARGE_MESSAGE, kind, None, Some(c));
        }
        Some(Value::String(c)) if c == crate::sse::TRUNCATED_CODE => {
            return envelope(crate::sse::TRUNCATED_MESSAGE, kind, None, Some(c));
        }
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(c)) if OPENAI_5XX_CODES.contains(&c.as_str()) => Some(c.clone()),
        Some(Value::String(c)) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
            Some(c.clone())
        }
        _ => None,
    };
    envelope(generic_message(status), kind, None, code.as_deref())
}

/// For an SSE event's data holding an `error` (a backend failing mid-stream): OpenAI's
/// envelope with only its fields, renamed; `None` when the data is no such object. The stream's
/// status is long sent, so the error's own numeric `code` (or `status`) says whether it is the
/// client's (4xx: its message kept, scrubbed) or the backend's (5xx, or no such number: a
/// generic message, as for a 5xx).
pub fn trimmed(data: &[u8], names: &NameRewriter) -> Option<Vec<u8>> {
    let obj: Map<String, Value> = serde_json::from_slice(data).ok()?;
    let backend: Vec<String> = names
        .backend_names()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let backend: Vec<&str> = backend.iter().map(String::as_str).collect();
    let client = names.client_text();
    let client = String::from_utf8_lossy(client);
    let err = obj.get("error")?;
    let number = |k: &str| {
        let v = err.as_object()?.get(k)?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let status = number("code")
        .or_else(|| number("status"))
        .filter(|c| (400..600).contains(c))
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    from_error_member(&obj, status, &Scrubber::new(&backend, &client))
}

/// A backend's error body in OpenAI's envelope. A 5xx gets a generic message (see
/// `server_error`). A 4xx already in OpenAI's shape keeps only OpenAI's fields; others have
/// their message found (`message`, `detail`, `error`, or the text itself); either way scrubbed
/// of backend names and addresses.
pub fn wrap(status: u16, body: &[u8], backend_models: &[&str], client_name: &str) -> Vec<u8> {
    let scrubber = Scrubber::new(backend_models, client_name);
    let default_type = type_for_status(status);
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if let Some(out) = parsed
        .as_ref()
        .and_then(|obj| from_error_member(obj, status, &scrubber))
    {
        return out;
    }
    if status >= 500 {
        return server_error(status, None);
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
    fn openai_shaped_client_errors_keep_their_fields_but_lose_backend_names() {
        let body = br#"{"error":{"message":"The model `QWEN2-0.5b` does not support tools","type":"invalid_request_error","param":"tools","code":"unsupported","model":"qwen2-0.5b"}}"#;
        let out = wrap(400, body, &["qwen2-0.5b"], "chat-small");
        assert_eq!(
            parse(&out),
            serde_json::json!({"error": {
                "message": "The model `chat-small` does not support tools",
                "type": "invalid_request_error",
                "param": "tools",
                "code": "unsupported",
            }})
        );
    }

    /// Extra fields of an OpenAI-shaped error (a backend's URL, its model) never reach the
    /// client, nor do URLs, addresses and names inside the fields that stay.
    #[test]
    fn openai_shaped_errors_keep_only_openai_fields() {
        let body = br#"{"error":{"message":"qwen2-0.5b at http://10.0.0.5:8000/v1 (gpu-node-3:8000, 10.0.0.6) is busy; see https://docs.example/x.","type":"invalid_request_error","param":"model qwen2-0.5b","code":429,"backend_url":"http://10.0.0.5:8000/v1","model":"qwen2-0.5b"},"backend":"vllm-7"}"#;
        let out = wrap(429, body, &["qwen2-0.5b"], "chat-small");
        assert_eq!(
            parse(&out),
            serde_json::json!({"error": {
                "message": "chat-small at <url> (<address>, <address>) is busy; see <url>.",
                "type": "invalid_request_error",
                "param": "model chat-small",
                "code": "429",
            }})
        );
        // A string error, and an error without a message.
        let v = parse(&wrap(
            400,
            br#"{"error":"qwen2-0.5b died","x":1}"#,
            &["qwen2-0.5b"],
            "c",
        ));
        assert_eq!(v["error"]["message"], "c died");
        assert_eq!(v["error"].as_object().unwrap().len(), 4);
        let v = parse(&wrap(400, br#"{"error":{"kind":"x"}}"#, &["m"], "c"));
        assert_eq!(v["error"]["message"], "The backend reported an error.");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }

    /// A backend's 5xx text names its hosts and internals: whatever it says, the client reads a
    /// generic message for the status, with OpenAI's own type and code kept.
    #[test]
    fn server_errors_get_a_generic_message() {
        for (status, body) in [
            (503, &br#"{"error":{"message":"upstream connect to 10.9.8.7:8000 (zeta-gpu-node-3) failed","type":"server_error","param":"zeta","code":"overloaded","host":"x"}}"#[..]),
            (500, br#"{"error":"engine on zeta-gpu-node-3 died"}"#),
            (502, br#"{"detail":"zeta-gpu-node-3 unreachable"}"#),
            (504, b"timeout talking to zeta-gpu-node-3"),
            (500, br#"{"error":{"message":"x","type":"ZetaEngineError","code":"ZETA_DOWN"}}"#),
        ] {
            let out = wrap(status, body, &["qwen2-0.5b"], "chat-small");
            let v = parse(&out);
            assert_eq!(v["error"]["message"], generic_message(status), "{status}");
            assert_eq!(v["error"]["param"], Value::Null);
            assert_eq!(v["error"]["type"], "server_error");
            assert!(!String::from_utf8_lossy(&out).contains("zeta"), "{out:?}");
            assert!(!String::from_utf8_lossy(&out).contains("ZETA"), "{out:?}");
        }
        let v = parse(&wrap(
            503,
            br#"{"error":{"message":"m","type":"server_error","code":"overloaded"}}"#,
            &[],
            "c",
        ));
        assert_eq!(v["error"]["code"], "overloaded");
        let v = parse(&wrap(
            503,
            br#"{"error":{"message":"m","code":503}}"#,
            &[],
            "c",
        ));
        assert_eq!(v["error"]["code"], "503");
    }

    #[test]
    fn addresses_are_removed() {
        for (text, want) in [
            (
                "connect to 10.9.8.7:8000 failed",
                "connect to <address> failed",
            ),
            ("at 10.9.8.7.", "at <address>."),
            (
                "[2001:db8::1]:8000 and ::1 and fe80::1%eth0",
                "<address> and <address> and <address>",
            ),
            (
                "host gpu-node-3:8000, vllm:8000: down",
                "host <address>, <address>: down",
            ),
            ("node-10.0.0.5 x_10.0.0.6", "node-<address> x_<address>"),
            ("backend.internal:443/v1", "<address>/v1"),
            // Not addresses: times, versions, plain words and numbers.
            (
                "at 12:30, v1.2.3, max 4096 tokens, ratio 3:4",
                "at 12:30, v1.2.3, max 4096 tokens, ratio 3:4",
            ),
            (
                "caf\u{e9} 10.0.0.1 \u{1F600}",
                "caf\u{e9} <address> \u{1F600}",
            ),
        ] {
            assert_eq!(without_addresses(text), want, "{text}");
        }
    }

    #[test]
    fn stream_error_events_are_trimmed_the_same_way() {
        let names = NameRewriter::new("chat-small", "qwen2-0.5b");
        let data = br#"{"error":{"object":"error","message":"QWEN2-0.5B failed at 10.0.0.5:80","type":"BadRequestError","param":null,"code":400,"url":"http://h"}}"#;
        let v = parse(&trimmed(data, &names).unwrap());
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "chat-small failed at <address>", "type": "BadRequestError", "param": null, "code": "400"}})
        );
        // Not a client error: the backend's text goes.
        let data =
            br#"{"error":{"message":"qwen2-0.5b engine on gpu-3 died","type":"EngineError"}}"#;
        let v = parse(&trimmed(data, &names).unwrap());
        assert_eq!(v["error"]["message"], generic_message(500));
        assert_eq!(v["error"]["type"], "server_error");
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
        let v = parse(&wrap(400, long.as_bytes(), &["m"], "c"));
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
        let v = parse(&wrap(404, b"Not Found\n", &["qwen2-0.5b"], "chat-small"));
        assert_eq!(v["error"]["message"], "Not Found");
        let v = parse(&wrap(500, b"Internal Server Error\n", &[], "c"));
        assert_eq!(v["error"]["message"], generic_message(500));
        assert_eq!(v["error"]["type"], "server_error");
        let v = parse(&wrap(409, b"", &["qwen2-0.5b"], "chat-small"));
        assert!(v["error"]["message"].as_str().unwrap().contains("409"));
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
