//! A chat or legacy-completions stream whose backend reports no usage (llama.cpp's server ignores
//! `stream_options.include_usage`): its tokens estimated from what it streamed, and the usage
//! chunk the router writes for a client that asked for one.
//!
//! The estimate, documented in `docs/config.md` ("Usage the router estimates"):
//! - completion tokens: per choice, the larger of the number of chunks that carried output for
//!   the choice (with text or not: a token that decodes to no text, such as a special token, is
//!   still a token the backend ran; a chunk with only the role, or only the finish, is not) and the text's estimate ([`crate::token_estimate`]), summed over
//!   the choices. OpenAI-compatible servers send about one token per chunk (llama.cpp's server
//!   one); the larger of the two errs toward charging a budget more rather than less. Text is
//!   `delta.content`, `delta.reasoning_content`, `delta.refusal` and the tool calls'
//!   `function.name` and `function.arguments` (chat), or `text` (completions).
//! - prompt tokens: the request body's estimate, as the admission reservation counts them (see
//!   [`crate::global_limits::prompt_tokens`]).

use std::borrow::Cow;

use serde::Deserialize;

use crate::json_scan;

/// What a stream's chunks carried so far, for its estimate and for the usage chunk's identity.
#[derive(Debug, Default)]
pub(super) struct StreamedText {
    /// Per choice index: chunks that carried the choice, and its text's estimated tokens.
    choices: Vec<(u64, u64)>,
    /// The `id`, `object` and `created` of the stream's first chunk.
    head: Option<Head>,
}

/// The members of a chunk that name its stream (read until a chunk parses, the first one).
#[derive(Debug, Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    created: Option<u64>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// Choices beyond this index are counted with the last one (a stream's `n` is at most 128).
const MAX_CHOICES: usize = 128;

impl StreamedText {
    /// Reads one event's data (a JSON chunk; anything else is not counted). Only `choices` is
    /// parsed (found by walking the chunk, see [`json_scan::member`]), and the whole chunk once,
    /// the first time, for its `id`, `object` and `created`.
    pub(super) fn add(&mut self, data: &[u8]) {
        if self.head.is_none() {
            self.head = serde_json::from_slice(data).ok();
        }
        let Some(choices) = json_scan::member(data, b"choices") else {
            return;
        };
        let Ok(choices) = serde_json::from_slice::<Vec<Choice<'_>>>(choices) else {
            return;
        };
        for choice in choices {
            if !carries_output(&choice) {
                continue;
            }
            let tokens = text_tokens(&choice);
            let at = usize::try_from(choice.index.unwrap_or(0))
                .unwrap_or(MAX_CHOICES)
                .min(MAX_CHOICES);
            if self.choices.len() <= at {
                self.choices.resize(at + 1, (0, 0));
            }
            if let Some((chunks, total)) = self.choices.get_mut(at) {
                *chunks += 1;
                *total = total.saturating_add(tokens);
            }
        }
    }

    /// The completion tokens the stream's text is estimated at (see the module doc).
    pub(super) fn completion_tokens(&self) -> u64 {
        self.choices
            .iter()
            .map(|&(chunks, tokens)| chunks.max(tokens))
            .fold(0, u64::saturating_add)
    }

    /// The usage chunk for a client that asked for usage: OpenAI's last chunk (`choices` empty,
    /// `usage` with the three counts) under the client's model name, with the stream's `id`,
    /// `object` and `created` (`object_fallback` when no chunk named one). An SSE event, blank
    /// line included.
    pub(super) fn usage_event(
        &self,
        prompt_tokens: u64,
        object_fallback: &str,
        model: &str,
    ) -> Vec<u8> {
        let completion = self.completion_tokens();
        let head = self.head.as_ref();
        let chunk = serde_json::json!({
            "id": head.and_then(|h| h.id.as_deref()).unwrap_or(""),
            "object": head.and_then(|h| h.object.as_deref()).unwrap_or(object_fallback),
            "created": head.and_then(|h| h.created).unwrap_or(0),
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens.saturating_add(completion),
            },
        });
        let mut out = b"data: ".to_vec();
        out.extend(chunk.to_string().into_bytes());
        out.extend_from_slice(b"\n\n");
        out
    }
}

/// Whether a choice of a chunk carries output, even text that is empty (a token that decodes
/// to nothing): `text`, or a delta's content, reasoning, refusal or tool calls. A delta with
/// only its `role`, or none (the finish), carries none.
fn carries_output(choice: &Choice<'_>) -> bool {
    choice.text.is_some()
        || choice.delta.as_ref().is_some_and(|d| {
            d.content.is_some()
                || d.reasoning_content.is_some()
                || d.refusal.is_some()
                || d.tool_calls.is_some()
        })
}

/// The estimated tokens of the text one choice of a chunk carries.
fn text_tokens(choice: &Choice<'_>) -> u64 {
    let est = |s: &Option<Cow<'_, str>>| {
        s.as_deref()
            .map_or(0, |t| crate::token_estimate::estimate(t.as_bytes()))
    };
    let mut tokens = est(&choice.text);
    if let Some(d) = &choice.delta {
        tokens = tokens
            .saturating_add(est(&d.content))
            .saturating_add(est(&d.reasoning_content))
            .saturating_add(est(&d.refusal));
        for call in d.tool_calls.iter().flatten() {
            if let Some(f) = &call.function {
                tokens = tokens
                    .saturating_add(est(&f.name))
                    .saturating_add(est(&f.arguments));
            }
        }
    }
    tokens
}
