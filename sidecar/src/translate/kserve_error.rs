//! Triton failures (KServe v2 gRPC statuses and the `error_message` of its stream) → OpenAI
//! errors with faithful statuses.

use airouter_core::errors::ApiError;
use tonic::{Code, Status};

/// A gRPC status from Triton: INVALID_ARGUMENT → 400, NOT_FOUND → 404, UNAVAILABLE → 503,
/// DEADLINE_EXCEEDED → 504, anything else → 500.
pub fn from_status(status: &Status, model: &str) -> ApiError {
    let message = status.message();
    match status.code() {
        Code::InvalidArgument => ApiError::with_status(400, message.to_string(), None),
        Code::NotFound => ApiError::model_not_found(model),
        Code::Unavailable => ApiError::with_status(
            503,
            format!("The Triton backend for `{model}` is unavailable; try again shortly."),
            Some("backend_unavailable"),
        ),
        Code::DeadlineExceeded => ApiError::gateway_timeout(),
        Code::Cancelled => ApiError::with_status(499, "The request was cancelled.".into(), None),
        _ => ApiError::with_status(500, format!("Triton error: {message}"), None),
    }
}

/// An `error_message` on Triton's stream, which carries no code: classified from its text. A
/// prompt longer than the model's context (vLLM: "... is longer than the maximum model length
/// of N") is OpenAI's 400 `context_length_exceeded`.
pub fn from_stream_error(message: &str, model: &str) -> ApiError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("unknown model") || (lower.contains("model") && lower.contains("not found")) {
        return ApiError::model_not_found(model);
    }
    let context = [
        "maximum model length",
        "maximum context length",
        "context window",
    ];
    if context.iter().any(|w| lower.contains(w)) {
        return ApiError::with_status(400, message.to_string(), Some("context_length_exceeded"));
    }
    let client_side = [
        "invalid",
        "unexpected",
        "expected",
        "must be",
        "exceeds",
        "too long",
    ];
    if client_side.iter().any(|w| lower.contains(w)) {
        return ApiError::with_status(400, message.to_string(), None);
    }
    ApiError::with_status(
        500,
        format!("The model failed: {message}"),
        Some("model_error"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Unimplemented, 500),
        ];
        for (code, status) in cases {
            assert_eq!(
                from_status(&Status::new(code, "x"), "m").status,
                status,
                "{code:?}"
            );
        }
        assert_eq!(
            from_stream_error("Request for unknown model: 'x' is not found", "m").status,
            404
        );
        assert_eq!(
            from_stream_error("expected 2 inputs but got 1", "m").status,
            400
        );
        assert_eq!(from_stream_error("engine died mid-stream", "m").status, 500);
        let overflow = from_stream_error("Error generating stream: The decoder prompt (length 3001) is longer than the maximum model length of 2048.", "m");
        assert_eq!(
            (overflow.status, overflow.code),
            (400, Some("context_length_exceeded"))
        );
    }
}
