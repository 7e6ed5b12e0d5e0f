//! What a routed request's GenAI telemetry says, in the OpenTelemetry GenAI semantic
//! conventions' terms: one [`Exchange`] per request, gathered by the flow as the response
//! passes (`flow/telemetry.rs`), made into
//! - the filter state Envoy's span and JSON access log read ([`Exchange::properties`], the
//!   attribute and field names in [`span`]), and
//! - the histograms of Envoy's stats ([`Exchange::observations`], names, tags and buckets in
//!   [`histograms`]).
//!
//! Which names carry what (decided in `docs/observability.md`): the span and the access log
//! are the operator's, so they carry the backend's configured name (`gen_ai.provider.name`) and,
//! in the log, the model name the backend was sent; `gen_ai.request.model` and
//! `gen_ai.response.model` are the client-visible name, which is what the client sent and got
//! back (the filter renames every answer). Metrics are tagged only with configured names (the
//! model's name or pattern, the backend, the key's name), so a client cannot grow their
//! cardinality. No key ever appears anywhere.

pub mod histograms;
pub mod span;

use crate::api::Api;
use crate::contract;

/// One routed request's GenAI facts, as the flow knows them when its response has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange<'a> {
    /// The API the client called.
    pub api: Option<Api>,
    /// The model name the client sent (and got back).
    pub model: &'a str,
    /// The model's configured name or pattern (metric tags never hold a client's string).
    pub configured_model: &'a str,
    /// The backend that answered (configured name); for failover, the last attempt's.
    pub backend: Option<&'a str>,
    /// The model name that backend was sent.
    pub backend_model: Option<&'a str>,
    /// The client key's configured name.
    pub key: Option<&'a str>,
    /// Tokens the backend reported, input (prompt) and output (completion).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Why the answer ended, as the response said.
    pub finish_reason: Option<&'a str>,
    /// The response was a success (2xx).
    pub succeeded: bool,
    /// The response was a stream.
    pub streamed: bool,
    /// When the request's headers came, the first streamed text, and the response's end, in
    /// milliseconds since the epoch.
    pub start_ms: u64,
    pub first_token_ms: Option<u64>,
    pub end_ms: u64,
}

/// The GenAI conventions' `gen_ai.operation.name` of `api`: their well-known values where one
/// fits (`chat`, `text_completion`, `embeddings`; the Responses API is a chat), the API's
/// configuration name otherwise (`audio.speech`, `images.generations`, ...).
pub fn operation_name(api: Api) -> &'static str {
    match api {
        Api::Chat | Api::Responses => "chat",
        Api::Completions => "text_completion",
        Api::Embeddings => "embeddings",
        other => other.config_name(),
    }
}

impl Exchange<'_> {
    /// The filter state to set, as (property, value) pairs: only what is known.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(8);
        if let Some(api) = self.api {
            out.push((
                contract::OPERATION_PROPERTY,
                operation_name(api).to_string(),
            ));
        }
        out.push((contract::MODEL_PROPERTY, self.model.to_string()));
        let texts = [
            (contract::BACKEND_PROPERTY, self.backend),
            (contract::BACKEND_MODEL_PROPERTY, self.backend_model),
            (contract::KEY_NAME_PROPERTY, self.key),
            (contract::FINISH_REASON_PROPERTY, self.finish_reason),
        ];
        for (property, value) in texts {
            if let Some(v) = value {
                out.push((property, v.to_string()));
            }
        }
        let counts = [
            (contract::INPUT_TOKENS_PROPERTY, self.input_tokens),
            (contract::OUTPUT_TOKENS_PROPERTY, self.output_tokens),
        ];
        for (property, value) in counts {
            if let Some(n) = value {
                out.push((property, n.to_string()));
            }
        }
        out
    }

    /// The histogram values to record, as (series, value) pairs, per
    /// [`histograms`]: token usage by type when reported; the request's duration; for a
    /// successful stream, the time to its first token and, with more than one output token,
    /// the time per output token after the first.
    pub fn observations(&self) -> Vec<(histograms::Series, u64)> {
        let op = self.api.map_or("other", operation_name);
        let tags = histograms::Tags {
            operation: op,
            model: self.configured_model,
            backend: self.backend,
            key: self.key,
        };
        let mut out = Vec::with_capacity(5);
        for (kind, value) in [("input", self.input_tokens), ("output", self.output_tokens)] {
            if let Some(n) = value {
                out.push((tags.token_usage(kind), n));
            }
        }
        let duration = self.end_ms.saturating_sub(self.start_ms);
        out.push((tags.series(histograms::REQUEST_DURATION), duration));
        let first = self
            .first_token_ms
            .filter(|_| self.succeeded && self.streamed);
        if let Some(first) = first {
            let ttft = first.saturating_sub(self.start_ms);
            out.push((tags.series(histograms::TIME_TO_FIRST_TOKEN), ttft));
            if let Some(n) = self.output_tokens.filter(|n| *n > 1) {
                let after = self.end_ms.saturating_sub(first);
                out.push((
                    tags.series(histograms::TIME_PER_OUTPUT_TOKEN),
                    after / (n - 1),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
