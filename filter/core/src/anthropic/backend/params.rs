//! The chat parameters Anthropic's Messages API has no counterpart for, and the 400s a request
//! gets for what cannot be carried over.
//!
//! A parameter without a counterpart is harmless at its default (`n: 1`, `logprobs: false`,
//! `presence_penalty: 0`, `response_format: {"type":"text"}`, any parameter `null`, ...): it is
//! left out. Otherwise it is refused with a 400 naming it (`unsupported_parameter`), or left
//! out when the backend is set to drop what it cannot carry; never applied as something else.
//! Fields OpenAI does not define are treated the same way.
//!
//! `reasoning_effort` is one of them, though Anthropic can think: its extended thinking hands
//! back signed thinking blocks that must come back with the next turn's tool results, and a
//! chat conversation has no place for the signature, so tool use would fail a turn later.

use serde_json::Value;

use crate::errors::ApiError;

/// Longest part of a client's field name quoted back in an error, in characters.
const MAX_QUOTED_CHARS: usize = 64;

/// Whether a parameter's value is its harmless default.
type IsDefault = fn(&Value) -> bool;

/// Chat parameters without an Anthropic counterpart, each with whether a value is its harmless
/// default.
const WITHOUT_COUNTERPART: &[(&str, IsDefault)] = &[
    ("n", |v| v.as_u64() == Some(1)),
    ("logprobs", |v| v == &Value::Bool(false)),
    ("top_logprobs", |_| false),
    ("presence_penalty", is_zero),
    ("frequency_penalty", is_zero),
    ("logit_bias", |v| {
        v.as_object().is_some_and(|o| o.is_empty())
    }),
    ("seed", |_| false),
    ("response_format", |v| {
        v.get("type") == Some(&Value::from("text"))
    }),
    ("modalities", |v| v == &serde_json::json!(["text"])),
    ("service_tier", |v| v.as_str() == Some("auto")),
    ("store", |v| v == &Value::Bool(false)),
    ("metadata", |v| v.as_object().is_some_and(|o| o.is_empty())),
    ("audio", |_| false),
    ("prediction", |_| false),
    ("functions", |_| false),
    ("function_call", |_| false),
    ("reasoning_effort", |_| false),
    ("verbosity", |_| false),
    ("web_search_options", |_| false),
    ("prompt_cache_key", |_| false),
];

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

/// A top-level parameter the translation does not carry: `Ok` when it may be left out (its
/// default, or the backend drops what it cannot carry), else the 400 naming it.
pub(super) fn without_counterpart(key: &str, value: &Value, drop: bool) -> Result<(), ApiError> {
    let known = WITHOUT_COUNTERPART.iter().find(|(name, _)| *name == key);
    if value.is_null() || drop || known.is_some_and(|(_, is_default)| is_default(value)) {
        return Ok(());
    }
    Err(unsupported(known.map(|(name, _)| *name), key))
}

/// The 400 for a parameter (`param`, when it is one OpenAI defines) or a client's field (`key`)
/// the backend cannot take.
pub(super) fn unsupported(param: Option<&'static str>, key: &str) -> ApiError {
    let message = format!(
        "Unsupported parameter: '{}' is not supported with this model.",
        quoted(key)
    );
    coded(param, message, "unsupported_parameter")
}

/// A 400 naming `param` (when there is one) with `code`.
pub(super) fn coded(param: Option<&'static str>, message: String, code: &'static str) -> ApiError {
    let base = match param {
        Some(p) => ApiError::invalid_param(p, message),
        None => ApiError::bad_request(message),
    };
    ApiError {
        code: Some(code),
        ..base
    }
}

/// A 400 for a value of the wrong JSON type.
pub(super) fn invalid_type(param: &'static str, expected: &str) -> ApiError {
    coded(
        Some(param),
        format!("Invalid type for '{param}': expected {expected}."),
        "invalid_type",
    )
}

/// A 400 for a value out of its range, or otherwise not accepted.
pub(super) fn invalid_value(param: &'static str, why: &str) -> ApiError {
    coded(
        Some(param),
        format!("Invalid value for '{param}': {why}."),
        "invalid_value",
    )
}

/// A client's text quoted back, cut to [`MAX_QUOTED_CHARS`].
pub(super) fn quoted(text: &str) -> String {
    text.chars().take(MAX_QUOTED_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_nulls_pass_and_other_values_are_refused_naming_the_parameter() {
        for (key, value) in [
            ("n", json!(1)),
            ("logprobs", json!(false)),
            ("presence_penalty", json!(0)),
            ("frequency_penalty", json!(0.0)),
            ("logit_bias", json!({})),
            ("response_format", json!({"type": "text"})),
            ("modalities", json!(["text"])),
            ("seed", Value::Null),
            ("anything", Value::Null),
        ] {
            assert_eq!(without_counterpart(key, &value, false), Ok(()), "{key}");
        }
        for (key, value) in [
            ("n", json!(2)),
            ("logprobs", json!(true)),
            ("presence_penalty", json!(0.5)),
            ("seed", json!(7)),
            ("response_format", json!({"type": "json_object"})),
            ("modalities", json!(["text", "audio"])),
        ] {
            let err = without_counterpart(key, &value, false).unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(err.param, Some(key), "{key}");
            assert_eq!(err.code, Some("unsupported_parameter"));
            assert!(err.message.contains(&format!("'{key}'")), "{}", err.message);
            assert_eq!(without_counterpart(key, &value, true), Ok(()), "{key}");
        }
    }

    #[test]
    fn unknown_fields_are_named_in_the_message_cut_short() {
        let key = "x".repeat(500);
        let err = without_counterpart(&key, &json!(1), false).unwrap_err();
        assert_eq!(err.param, None);
        assert!(err.message.contains(&"x".repeat(MAX_QUOTED_CHARS)));
        assert!(!err.message.contains(&"x".repeat(MAX_QUOTED_CHARS + 1)));
    }
}
