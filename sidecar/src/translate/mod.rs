//! Translators between the OpenAI API and Triton's KServe v2, one module per API and direction.
//!
//! Chat and legacy completions: [`chat_request`] (OpenAI body → checked request) →
//! [`kserve_request`] (→ `ModelInferRequest`s); [`kserve_response`] (Triton's responses → events,
//! with the [`text_stream`] fix-ups) → [`openai_response`] (→ OpenAI JSON and SSE). Embeddings:
//! [`embeddings`], also answered through [`openai_response`]. Failures: [`kserve_error`].

pub mod chat_request;
pub mod embeddings;
pub mod kserve_error;
pub mod kserve_request;
pub mod kserve_response;
pub mod openai_response;
pub mod text_stream;

/// A token count for text when the model reports none (about four characters a token).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars()
        .count()
        .div_ceil(4)
        .max(usize::from(!text.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates_are_never_zero_for_text() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a"), 1);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
    }
}
