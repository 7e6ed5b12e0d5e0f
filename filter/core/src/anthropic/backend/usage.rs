//! Token usage: Anthropic's `usage` object read (from a message, `message_start` or
//! `message_delta`), and written as OpenAI's chat `usage`.
//!
//! Anthropic counts the prompt in three parts: `input_tokens` (not cached),
//! `cache_read_input_tokens` (read from the prompt cache) and `cache_creation_input_tokens`
//! (written to it). OpenAI has one `prompt_tokens` with `prompt_tokens_details`:
//! `prompt_tokens` is the sum of the three, `cached_tokens` the cache reads and
//! `cache_write_tokens` the cache writes (the field OpenAI's chat usage has for prompt tokens
//! written to the cache; clients that do not know it see the writes in `prompt_tokens` only).

use serde::{Deserialize, Serialize};

/// Tokens an Anthropic backend reported, in OpenAI's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The whole prompt: uncached input, cache reads and cache writes.
    pub prompt_tokens: u64,
    /// Tokens generated (`output_tokens`; thinking included, as Anthropic bills it).
    pub completion_tokens: u64,
    /// Prompt tokens read from the cache (`cache_read_input_tokens`).
    pub cached_tokens: u64,
    /// Prompt tokens written to the cache (`cache_creation_input_tokens`).
    pub cache_creation_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens together (saturating).
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// OpenAI's `usage` object for these counts.
    pub(super) fn openai(&self) -> OpenAiUsage {
        OpenAiUsage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens(),
            prompt_tokens_details: PromptDetails {
                cached_tokens: self.cached_tokens,
                cache_write_tokens: self.cache_creation_tokens,
            },
        }
    }
}

/// Anthropic's `usage` as sent; in a stream's `message_delta` only some counts may be present
/// (they are cumulative: each replaces the one seen before).
/// A count that is not a whole number (`null`, negative, a string) is taken as absent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AnthropicUsage {
    #[serde(default, deserialize_with = "count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_creation_input_tokens: Option<u64>,
}

/// Any JSON value, read as a count when it is a whole number that fits in a `u64`; a number
/// beyond (JSON has no limit) is the most there is, so that it saturates and is charged capped
/// rather than not at all.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let beyond = || {
        value
            .as_f64()
            .filter(|f| *f >= u64::MAX as f64)
            .map(|_| u64::MAX)
    };
    Ok(value.as_u64().or_else(beyond))
}

/// The four counts as last reported, kept apart until written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl Counts {
    /// Takes every count `usage` carries, keeping the others.
    pub(crate) fn update(&mut self, usage: &AnthropicUsage) {
        self.input = usage.input_tokens.unwrap_or(self.input);
        self.output = usage.output_tokens.unwrap_or(self.output);
        self.cache_read = usage.cache_read_input_tokens.unwrap_or(self.cache_read);
        self.cache_creation = usage
            .cache_creation_input_tokens
            .unwrap_or(self.cache_creation);
    }

    /// The counts in OpenAI's terms.
    pub(crate) fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            completion_tokens: self.output,
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
        }
    }
}

/// OpenAI's chat `usage`.
#[derive(Debug, Serialize)]
pub(super) struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
}

#[derive(Debug, Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_reads_and_writes_are_prompt_tokens_and_later_counts_replace_earlier_ones() {
        let mut counts = Counts::default();
        counts.update(
            &serde_json::from_str(
                r#"{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":7,"output_tokens":1}"#,
            )
            .unwrap(),
        );
        counts.update(&serde_json::from_str(r#"{"output_tokens":25}"#).unwrap());
        let usage = counts.usage();
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 117,
                completion_tokens: 25,
                cached_tokens: 100,
                cache_creation_tokens: 7
            }
        );
        assert_eq!(usage.total_tokens(), 142);
        assert_eq!(
            serde_json::to_string(&usage.openai()).unwrap(),
            r#"{"prompt_tokens":117,"completion_tokens":25,"total_tokens":142,"prompt_tokens_details":{"cached_tokens":100,"cache_write_tokens":7}}"#
        );
    }

    #[test]
    fn counts_that_are_not_whole_numbers_are_absent() {
        let usage: AnthropicUsage = serde_json::from_str(
            r#"{"input_tokens":null,"output_tokens":-3,"cache_read_input_tokens":"9","cache_creation_input_tokens":1.5,"server_tool_use":{}}"#,
        )
        .unwrap();
        let mut counts = Counts::default();
        counts.update(&usage);
        assert_eq!(counts.usage(), Usage::default());
    }

    #[test]
    fn huge_counts_saturate() {
        let mut counts = Counts::default();
        counts.update(
            &serde_json::from_str(&format!(
                r#"{{"input_tokens":{m},"cache_read_input_tokens":{m},"output_tokens":{m}}}"#,
                m = u64::MAX
            ))
            .unwrap(),
        );
        assert_eq!(counts.usage().prompt_tokens, u64::MAX);
        assert_eq!(counts.usage().total_tokens(), u64::MAX);
        // Beyond a u64 (JSON has no limit): the most there is, never nothing.
        let mut counts = Counts::default();
        counts.update(
            &serde_json::from_str(r#"{"input_tokens":18446744073709551621,"output_tokens":1e30}"#)
                .unwrap(),
        );
        assert_eq!(counts.usage().prompt_tokens, u64::MAX);
        assert_eq!(counts.usage().completion_tokens, u64::MAX);
    }
}
