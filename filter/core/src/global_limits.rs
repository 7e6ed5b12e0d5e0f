//! What the filter, Envoy's global rate limit filter and the sidecar's rate limit service agree
//! on beyond the names in [`crate::contract`]: which descriptors Envoy builds, and how a token
//! reservation is written. Also the reservation estimate.
//!
//! The filter names the client key, the routed backend and the token reservation in request
//! headers; `header_to_metadata` moves them into dynamic metadata (removing the headers), and
//! the rate limit actions turn that metadata into descriptors. The tokens a response used travel
//! as filter state ([`crate::contract::USED_PROPERTY`]), which the settlement's `hits_addend`
//! reads when the stream ends.

use serde::Deserialize;

use crate::api::Api;

/// What a descriptor asks of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One request against the key's requests per minute.
    KeyRequests,
    /// A token reservation against the key's tokens per minute.
    KeyTokens,
    /// When the stream ended: replace the reservation with the tokens used (never refused).
    Settle,
    /// One request against the backend's request limit.
    BackendRequests,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::KeyRequests,
        Kind::KeyTokens,
        Kind::Settle,
        Kind::BackendRequests,
    ];

    pub fn value(self) -> &'static str {
        match self {
            Kind::KeyRequests => "key_requests",
            Kind::KeyTokens => "key_tokens",
            Kind::Settle => "settle",
            Kind::BackendRequests => "backend_requests",
        }
    }

    pub fn parse(value: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.value() == value)
    }
}

/// A reservation as carried in [`RL_RESERVE_HEADER`](crate::contract::RL_RESERVE_HEADER): `tokens@unix_ms` (when it was made, so the
/// settlement lands in the same window slot).
pub fn format_reserve(tokens: u64, at_ms: u64) -> String {
    format!("{tokens}@{at_ms}")
}

pub fn parse_reserve(value: &str) -> Option<(u64, u64)> {
    let (tokens, at) = value.split_once('@')?;
    Some((tokens.parse().ok()?, at.parse().ok()?))
}

#[derive(Deserialize)]
struct Budget {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    /// The Responses API's name for it.
    max_output_tokens: Option<u64>,
    n: Option<u64>,
}

/// A request's prompt tokens, estimated before any tokenizer saw it: its whole body counted by
/// [`crate::token_estimate`], which over-counts JSON syntax rather than under-counting text.
pub fn prompt_tokens(body: &[u8]) -> u64 {
    crate::token_estimate::estimate(body)
}

/// Tokens reserved for a request before its usage is known: the prompt ([`prompt_tokens`]) plus the completion's
/// `max_tokens` (or `default_max_tokens`) for each of its `n` choices. APIs whose bodies are not
/// text (audio uploads, images) reserve nothing: their size says nothing about tokens, and a
/// large upload must not be refused for it; they are still refused once the budget is spent.
pub fn reservation(api: Api, body: &[u8], default_max_tokens: u32) -> u64 {
    let prompt = prompt_tokens(body);
    match api {
        Api::Chat | Api::Completions | Api::Responses => {}
        Api::Embeddings | Api::Moderations => return prompt.max(1),
        Api::AudioSpeech
        | Api::AudioTranscriptions
        | Api::AudioTranslations
        | Api::ImagesGenerations => return 0,
    }
    let budget = serde_json::from_slice::<Budget>(body).ok();
    let per_choice = budget
        .as_ref()
        .and_then(|b| {
            b.max_completion_tokens
                .or(b.max_tokens)
                .or(b.max_output_tokens)
        })
        .unwrap_or(u64::from(default_max_tokens));
    let choices = budget.and_then(|b| b.n).unwrap_or(1).clamp(1, 128);
    prompt.saturating_add(per_choice.saturating_mul(choices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_round_trips() {
        assert_eq!(
            parse_reserve(&format_reserve(512, 1_700_000_000_123)),
            Some((512, 1_700_000_000_123))
        );
        assert_eq!(parse_reserve("12"), None);
        assert_eq!(parse_reserve("x@1"), None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.value()), Some(k));
        }
        assert_eq!(Kind::parse("other"), None);
    }

    #[test]
    fn reservation_counts_prompt_and_completion() {
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":100,"n":2}"#;
        let prompt = prompt_tokens(body);
        assert_eq!(reservation(Api::Chat, body, 1024), prompt + 200);
        let body = br#"{"model":"m","prompt":"hi","max_completion_tokens":7}"#;
        assert_eq!(
            reservation(Api::Completions, body, 1024),
            prompt_tokens(body) + 7
        );
        let body = br#"{"model":"m","prompt":"hi"}"#;
        assert_eq!(
            reservation(Api::Completions, body, 50),
            prompt_tokens(body) + 50
        );
    }

    #[test]
    fn reservation_of_other_apis_is_the_input() {
        let body = br#"{"model":"e","input":"some text"}"#;
        assert_eq!(
            reservation(Api::Embeddings, body, 1024),
            prompt_tokens(body)
        );
        // A chat body that is not JSON still reserves something.
        assert_eq!(reservation(Api::Chat, b"x", 10), 11);
        // A 4 MB audio upload reserves nothing (its usage, if any, is charged at the end).
        assert_eq!(
            reservation(Api::AudioTranscriptions, &vec![0u8; 4 << 20], 10),
            0
        );
    }
}
