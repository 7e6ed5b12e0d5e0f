//! A chat or legacy-completions stream whose backend reports no usage (llama.cpp's server ignores
//! `stream_options.include_usage`): its tokens estimated from what it streamed, and the usage
//! chunk the router writes for a client that asked for one.
//!
//! The estimate, documented in `docs/config.md` ("Usage the router estimates"):
//! - completion tokens: per choice, the larger of the number of chunks that carried text and a
//!   quarter of the text's UTF-8 bytes, summed over the choices. OpenAI-compatible servers send
//!   about one token per chunk (llama.cpp's server one), and English text runs about four bytes
//!   per token; the larger of the two errs toward charging a budget more rather than less.
//!   Text is `delta.content`, `delta.reasoning_content`, `delta.refusal` and the tool calls'
//!   `function.name` and `function.arguments` (chat), or `text` (completions).
//! - prompt tokens: a quarter of the request body's bytes, as the admission reservation counts
//!   them (see [`crate::global_limits::prompt_tokens`]).

use std::borrow::Cow;

use serde::Deserialize;

use crate::json_scan;

/// What a stream's chunks carried so far, for its estimate and for the usage chunk's identity.
#[derive(Debug, Default)]
pub(super) struct StreamedText {
    /// Per choice index: chunks that carried text, and the text's bytes.
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
            let bytes = text_bytes(&choice);
            if bytes == 0 {
                continue;
            }
            let at = usize::try_from(choice.index.unwrap_or(0))
                .unwrap_or(MAX_CHOICES)
                .min(MAX_CHOICES);
            if self.choices.len() <= at {
                self.choices.resize(at + 1, (0, 0));
            }
            if let Some((chunks, total)) = self.choices.get_mut(at) {
                *chunks += 1;
                *total = total.saturating_add(bytes);
            }
        }
    }

    /// The completion tokens the stream's text is estimated at (see the module doc).
    pub(super) fn completion_tokens(&self) -> u64 {
        self.choices
            .iter()
            .map(|&(chunks, bytes)| chunks.max(bytes.div_ceil(4)))
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

/// The bytes of text one choice of a chunk carries.
fn text_bytes(choice: &Choice<'_>) -> u64 {
    let len = |s: &Option<Cow<'_, str>>| s.as_deref().map_or(0, str::len) as u64;
    let mut bytes = len(&choice.text);
    if let Some(d) = &choice.delta {
        bytes += len(&d.content) + len(&d.reasoning_content) + len(&d.refusal);
        for call in d.tool_calls.iter().flatten() {
            if let Some(f) = &call.function {
                bytes += len(&f.name) + len(&f.arguments);
            }
        }
    }
    bytes
}
