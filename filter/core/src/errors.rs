//! OpenAI's error envelope, `{"error":{"message","type","param","code"}}`, and the router's own errors.

use serde::Serialize;

/// An error the router answers itself, in OpenAI's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// The OpenAI `type` that goes with an HTTP status, for errors that carry none of their own.
pub fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// Serializes an envelope; the only input is plain strings, so this cannot fail in practice,
/// and a fixed body is used if it ever did.
pub fn envelope(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let env = Envelope {
        error: Inner {
            message,
            kind,
            param,
            code,
        },
    };
    serde_json::to_vec(&env).unwrap_or_else(|_| {
        br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#
            .to_vec()
    })
}

impl ApiError {
    fn new(status: u16, message: String) -> Self {
        ApiError {
            status,
            message,
            kind: type_for_status(status),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn body(&self) -> Vec<u8> {
        envelope(&self.message, self.kind, self.param, self.code)
    }

    /// A 400 with the caller's message.
    pub fn bad_request(message: String) -> Self {
        Self::new(400, message)
    }

    /// A 400 naming the request parameter at fault.
    pub fn invalid_param(param: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param),
            ..Self::new(400, message.into())
        }
    }

    /// An error with a given status, the OpenAI `type` for that status, and an optional code.
    pub fn with_status(status: u16, message: String, code: Option<&'static str>) -> Self {
        ApiError {
            code,
            ..Self::new(status, message)
        }
    }

    /// Every target of the model is at its limit or cooling down.
    pub fn all_limited(model: &str, wait_ms: u64) -> Self {
        ApiError {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(wait_ms.div_ceil(1000).max(1)),
            ..Self::new(429, format!("Rate limit reached for `{model}`: every backend serving it is at its limit. Try again later."))
        }
    }

    /// The backend serving the request is at its request limit (kept across Envoy instances).
    pub fn backend_limited(wait_ms: u64) -> Self {
        ApiError {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(wait_ms.div_ceil(1000).max(1)),
            ..Self::new(
                429,
                "Rate limit reached: the backend serving this model is at its limit. Try again later.".into(),
            )
        }
    }

    /// The client's key used up its requests per minute.
    pub fn key_limited(key_name: &str, wait_ms: u64) -> Self {
        Self::key_budget(key_name, "requests", wait_ms)
    }

    /// The client's key used up its `what` (requests, tokens) per minute.
    pub fn key_budget(key_name: &str, what: &str, wait_ms: u64) -> Self {
        ApiError {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(wait_ms.div_ceil(1000).max(1)),
            ..Self::new(
                429,
                format!("Rate limit reached for {what} on key `{key_name}`. Try again later."),
            )
        }
    }

    pub fn missing_key() -> Self {
        ApiError {
            kind: "invalid_request_error",
            code: Some("invalid_api_key"),
            ..Self::new(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".into())
        }
    }

    /// A backend refused the router's own credentials for it (its 401): a 502, since the
    /// client's key was fine and only the operator can fix the backend's.
    pub fn backend_credentials_refused() -> Self {
        Self::with_status(
            502,
            "The backend refused the router's credentials for it; the operator must check the backend's key.".into(),
            Some("backend_auth_failed"),
        )
    }

    pub fn invalid_key() -> Self {
        ApiError {
            kind: "invalid_request_error",
            code: Some("invalid_api_key"),
            ..Self::new(401, "Incorrect API key provided.".into())
        }
    }

    pub fn model_not_found(model: &str) -> Self {
        ApiError {
            code: Some("model_not_found"),
            ..Self::new(404, format!("The model `{model}` does not exist."))
        }
    }

    pub fn unknown_url(method: &str, path: &str) -> Self {
        ApiError {
            code: Some("unknown_url"),
            ..Self::new(404, format!("Invalid URL ({method} {path})"))
        }
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError {
            code: Some("method_not_allowed"),
            ..Self::new(405, format!("Method {method} is not allowed on {path}."))
        }
    }

    pub fn bad_json() -> Self {
        Self::new(400, "We could not parse the JSON body of your request. The body must be a JSON object; check for a trailing comma, a missing quote or an unescaped character.".into())
    }

    pub fn not_an_object() -> Self {
        Self::new(400, "The request body must be a JSON object.".into())
    }

    pub fn missing_model() -> Self {
        ApiError {
            param: Some("model"),
            ..Self::new(400, "you must provide a model parameter".into())
        }
    }

    pub fn model_not_a_string() -> Self {
        ApiError {
            param: Some("model"),
            code: Some("invalid_type"),
            ..Self::new(400, "Invalid type for 'model': expected a string.".into())
        }
    }

    /// The body could be read as naming another model than the one the router checked (a
    /// repeated or case-variant `model`, a second `model` part): refused rather than guessed.
    pub fn ambiguous_model(why: &str) -> Self {
        ApiError {
            param: Some("model"),
            code: Some("ambiguous_model"),
            ..Self::new(
                400,
                format!("The request names its model ambiguously: {why}. Send `model` once."),
            )
        }
    }

    /// A model name longer than the router accepts.
    pub fn model_name_too_long(max: usize) -> Self {
        ApiError {
            param: Some("model"),
            code: Some("invalid_value"),
            ..Self::new(
                400,
                format!("Invalid 'model': the name is longer than {max} bytes."),
            )
        }
    }

    /// A model name with control characters.
    pub fn model_name_control_chars() -> Self {
        ApiError {
            param: Some("model"),
            code: Some("invalid_value"),
            ..Self::new(
                400,
                "Invalid 'model': the name contains control characters.".into(),
            )
        }
    }

    pub fn bad_multipart(why: &str) -> Self {
        Self::new(400, format!("Could not parse the multipart form: {why}."))
    }

    pub fn too_large(limit: u64) -> Self {
        ApiError {
            code: Some("request_too_large"),
            ..Self::new(
                413,
                format!("The request body is larger than this router accepts ({limit} bytes)."),
            )
        }
    }

    pub fn bad_gateway(why: &str) -> Self {
        ApiError {
            code: Some("upstream_unreachable"),
            ..Self::new(502, format!("The backend could not be reached: {why}."))
        }
    }

    pub fn gateway_timeout() -> Self {
        ApiError {
            code: Some("upstream_timeout"),
            ..Self::new(504, "The backend did not answer in time.".into())
        }
    }

    /// Global limits are configured to fail closed and the limiter could not be asked.
    pub fn limiter_unavailable() -> Self {
        Self::new(
            503,
            "The rate limiter is unavailable and this router refuses requests it cannot count. Try again later.".into(),
        )
    }

    /// 503: every target of `model` is on a backend whose key is not configured.
    pub fn no_backend_key(model: &str) -> Self {
        Self::with_status(
            503,
            format!("The model `{model}` is not available: no key is configured for its backends."),
            Some("backend_unavailable"),
        )
    }

    pub fn internal(why: &str) -> Self {
        Self::new(500, format!("Internal router error: {why}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_four_fields() {
        let body = ApiError::model_not_found("gpt-\"x\"").body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["error"]["message"],
            "The model `gpt-\"x\"` does not exist."
        );
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], "model_not_found");
    }

    #[test]
    fn statuses_get_openai_types() {
        assert_eq!(type_for_status(429), "rate_limit_error");
        assert_eq!(type_for_status(503), "server_error");
        assert_eq!(type_for_status(400), "invalid_request_error");
    }
}
