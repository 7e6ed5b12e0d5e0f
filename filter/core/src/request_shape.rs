//! The parts of a chat or legacy-completions body that the router and every backend must read
//! alike, checked before any backend sees the body, with the 400 OpenAI answers:
//! - `stream` is a boolean or `null`: the router decides from it whether a stream's usage is
//!   asked for and counted, while some servers stream on `"true"` (a string);
//! - chat's `messages`, when present, is an array of objects, each with a `role` among
//!   OpenAI's (`system`, `developer`, `user`, `assistant`, `tool`, `function`) and a `content`
//!   that is a string, an array of parts, or (for an assistant's tool calls) `null` or absent.
//!   (A body without `messages` is the backend's to refuse, as each words it.)
//!
//! Without the second, a malformed conversation reaches the backend, whose failure is a 500:
//! the client learns nothing, and a run of them can make Envoy eject a healthy backend.
//! Members are read where serde reads them (the first `model`-style ambiguity checks are
//! [`crate::json_body`]'s); unknown members are the backend's business.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::Api;
use crate::errors::ApiError;

/// The roles a chat message may have.
pub const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// Checks `body` (already known to be a JSON object with a model) for `api`; other APIs pass.
pub fn check(api: Api, body: &[u8]) -> Result<(), ApiError> {
    if !matches!(api, Api::Chat | Api::Completions) {
        return Ok(());
    }
    let parsed: Body<'_> = serde_json::from_slice(body).map_err(|_| ApiError::bad_json())?;
    if let Some(stream) = parsed.stream {
        if !matches!(stream.get(), "true" | "false" | "null") {
            return Err(ApiError::invalid_param(
                "stream",
                "Invalid type for 'stream': expected a boolean.",
            ));
        }
    }
    if api == Api::Chat {
        check_messages(parsed.messages)?;
    }
    Ok(())
}

fn check_messages(messages: Option<&RawValue>) -> Result<(), ApiError> {
    let Some(raw) = messages else {
        return Ok(());
    };
    let list: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::invalid_param(
            "messages",
            "Invalid type for 'messages': expected an array.",
        )
    })?;
    for (i, item) in list.iter().enumerate() {
        let m: Message<'_> = serde_json::from_str(item.get()).map_err(|_| {
            ApiError::invalid_param(
                "messages",
                format!(
                    "Invalid type for 'messages[{i}]': expected an object with a string 'role'."
                ),
            )
        })?;
        let role = m.role.as_deref().unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid_param(
                "messages",
                format!(
                    "Invalid value for 'messages[{i}].role': expected one of {}.",
                    ROLES.join(", ")
                ),
            ));
        }
        let content = m.content.map(RawValue::get).map(str::trim_start);
        let ok = match content.and_then(|c| c.bytes().next()) {
            Some(b'"') | Some(b'[') => true,
            Some(b'n') | None => role == "assistant",
            _ => false,
        };
        if !ok {
            return Err(ApiError::invalid_param(
                "messages",
                format!("Invalid type for 'messages[{i}].content': expected a string or an array of content parts."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<(), ApiError> {
        check(Api::Chat, body.as_bytes())
    }

    #[test]
    fn openai_shapes_pass() {
        for ok in [
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}"#,
            r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","content":"42","tool_call_id":"c"}],"stream":null}"#,
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[]}],"stream":false}"#,
            r#"{"model":"m","messages":[]}"#,
            r#"{"model":"m"}"#,
        ] {
            assert!(chat(ok).is_ok(), "{ok}");
        }
        assert!(check(
            Api::Completions,
            br#"{"model":"m","prompt":"x","stream":true}"#
        )
        .is_ok());
        assert!(check(Api::Embeddings, br#"{"model":"m","stream":"yes"}"#).is_ok());
    }

    #[test]
    fn what_backends_would_read_differently_is_a_400_naming_the_parameter() {
        for (bad, param) in [
            (r#"{"model":"m","messages":[],"stream":"true"}"#, "stream"),
            (r#"{"model":"m","messages":[],"stream":1}"#, "stream"),
            (r#"{"model":"m","messages":"hi"}"#, "messages"),
            (r#"{"model":"m","messages":["hi"]}"#, "messages"),
            (
                r#"{"model":"m","messages":[{"role":"wizard","content":"hi"}]}"#,
                "messages",
            ),
            (r#"{"model":"m","messages":[{"content":"hi"}]}"#, "messages"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":7}]}"#,
                "messages",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":null}]}"#,
                "messages",
            ),
            (r#"{"model":"m","messages":[{"role":"user"}]}"#, "messages"),
            (
                r#"{"model":"m","messages":[{"role":1,"content":"x"}]}"#,
                "messages",
            ),
        ] {
            let e = chat(bad).expect_err(bad);
            assert_eq!((e.status, e.param), (400, Some(param)), "{bad}");
        }
        let e = check(
            Api::Completions,
            br#"{"model":"m","prompt":"x","stream":"true"}"#,
        )
        .unwrap_err();
        assert_eq!(e.param, Some("stream"));
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = crate::test_json::Rng::new(11);
        let pieces = [
            "messages", "role", "content", "stream", "user", "null", "true", "\"x\"",
        ];
        for _ in 0..3000 {
            let v = rng.value(&pieces, 3);
            let _ = chat(&v);
            let _ = check(Api::Completions, v.as_bytes());
        }
    }
}
