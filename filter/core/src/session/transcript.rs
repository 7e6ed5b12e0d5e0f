//! What a response said, for its session record: the assistant's text (first choice; bounded),
//! why it ended, and the token usage the backend reported, read from a whole JSON body or from a
//! stream's events one by one, in each API's dialect:
//! - chat: `choices[0].message.content` (JSON), `choices[0].delta.content` (stream events);
//! - legacy completions: `choices[0].text`;
//! - Responses: the `output_text` parts of `output[].content[]` (JSON), the `delta` of
//!   `response.output_text.delta` events, the `status` and `usage` of the final response;
//! - usage: top-level `usage` or `response.usage`, as `prompt_tokens`/`completion_tokens` or
//!   `input_tokens`/`output_tokens`, with `total_tokens`.
//!
//! Other choices (`n` > 1), tool calls and reasoning text are not kept.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::json_scan;

/// Token counts as the backend reported them (Responses' input/output tokens as prompt and
/// completion tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

/// The response's text and what ended it, gathered as it passes. Holds at most `max_text` bytes
/// of text; beyond that only the length is counted.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Keep the text itself (`capture = "full"`), not only its length.
    keep_text: bool,
    max_text: usize,
    text: String,
    /// Bytes of text the response carried, kept or not.
    text_bytes: u64,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// When the first text arrived, in ms since the epoch (set by the flow).
    first_text_ms: Option<u64>,
}

impl Transcript {
    /// A transcript keeping up to `max_text` bytes of text when `keep_text`, else only counting.
    pub fn new(keep_text: bool, max_text: usize) -> Self {
        Transcript {
            keep_text,
            max_text,
            ..Self::default()
        }
    }

    /// Reads one stream event's data (anything but JSON, `[DONE]` included, is skipped).
    pub fn add_event(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<Event<'_>>(data) else {
            return;
        };
        if let Some(choice) = event.choices.as_ref().and_then(|c| first_choice(c)) {
            let said = choice
                .delta
                .as_ref()
                .and_then(|d| text(&d.content))
                .or(text(&choice.text));
            if let Some(said) = said {
                self.push_text(said);
            }
            if let Some(reason) = text(&choice.finish_reason) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        let kind = text(&event.kind);
        if kind == Some("response.output_text.delta") {
            if let Some(delta) = text(&event.delta) {
                self.push_text(delta);
            }
        }
        let status = event.response.as_ref().and_then(|r| text(&r.status));
        if let Some(status) = status {
            if !matches!(kind, Some("response.created" | "response.in_progress")) {
                self.finish_reason = Some(status.to_string());
            }
        }
        if let Some(usage) = usage_in(data) {
            self.usage = Some(usage);
        }
    }

    /// Reads a whole JSON response body.
    pub fn add_body(&mut self, body: &[u8]) {
        let Ok(resp) = serde_json::from_slice::<Body<'_>>(body) else {
            return;
        };
        if let Some(choice) = resp.choices.as_ref().and_then(|c| first_choice(c)) {
            let said = choice
                .message
                .as_ref()
                .and_then(|m| text(&m.content))
                .or(text(&choice.text));
            if let Some(said) = said {
                self.push_text(said);
            }
            self.finish_reason = text(&choice.finish_reason).map(str::to_string);
        }
        for item in resp.output.iter().flatten() {
            for part in item.content.iter().flatten() {
                if text(&part.kind) == Some("output_text") {
                    if let Some(said) = text(&part.text) {
                        self.push_text(said);
                    }
                }
            }
        }
        if let Some(status) = text(&resp.status) {
            self.finish_reason = Some(status.to_string());
        }
        self.usage = usage_in(body);
    }

    fn push_text(&mut self, text: &str) {
        // Once cut, the text stays the response's start: nothing later is added.
        let whole = self.text.len() as u64 == self.text_bytes;
        self.text_bytes = self.text_bytes.saturating_add(text.len() as u64);
        if !self.keep_text || !whole {
            return;
        }
        let room = self.max_text.saturating_sub(self.text.len());
        self.text.push_str(prefix(text, room));
    }

    /// Notes `now_ms` as the time of the first text, if text has come and none was noted.
    pub fn note_first_text(&mut self, now_ms: u64) {
        if self.text_bytes > 0 && self.first_text_ms.is_none() {
            self.first_text_ms = Some(now_ms);
        }
    }

    /// The text kept (empty unless it is kept).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Bytes of text the response carried.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Whether text was kept, and some of it was not (the cap).
    pub fn text_cut(&self) -> bool {
        self.keep_text && (self.text.len() as u64) < self.text_bytes
    }

    pub fn keeps_text(&self) -> bool {
        self.keep_text
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn first_text_ms(&self) -> Option<u64> {
        self.first_text_ms
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(super) fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// The usage a body or event reports (top-level `usage`, or `response.usage`), when it is an
/// object with at least one count.
fn usage_in(json: &[u8]) -> Option<Usage> {
    let is_object = |v: &&[u8]| v.first() == Some(&b'{');
    let usage = json_scan::member(json, b"usage")
        .filter(is_object)
        .or_else(|| json_scan::member(json_scan::member(json, b"response")?, b"usage"))
        .filter(is_object)?;
    let count = |key: &[u8]| json_scan::member(usage, key).and_then(json_scan::as_count);
    let found = Usage {
        prompt_tokens: count(b"prompt_tokens").or_else(|| count(b"input_tokens")),
        completion_tokens: count(b"completion_tokens").or_else(|| count(b"output_tokens")),
        total_tokens: count(b"total_tokens"),
    };
    (found != Usage::default()).then_some(found)
}

fn first_choice<'c, 'a>(choices: &'c [Choice<'a>]) -> Option<&'c Choice<'a>> {
    choices
        .iter()
        .find(|c| c.index.unwrap_or(0) == 0)
        .or(choices.first())
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(borrow, default)]
    delta: Option<Text<'a>>,
    #[serde(borrow, default)]
    response: Option<ResponseStatus<'a>>,
}

#[derive(Deserialize)]
struct ResponseStatus<'a> {
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(borrow, default)]
    output: Option<Vec<OutputItem<'a>>>,
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct OutputItem<'a> {
    #[serde(borrow, default)]
    content: Option<Vec<OutputPart<'a>>>,
}

#[derive(Deserialize)]
struct OutputPart<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
    #[serde(borrow, default)]
    delta: Option<Message<'a>>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
}

/// A member that should be a string; anything else is read as absent rather than failing the
/// whole event.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    Str(#[serde(borrow)] Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

impl Text<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Text::Str(s) => Some(s),
            Text::Other(_) => None,
        }
    }
}

/// The string of an optional [`Text`].
fn text<'t>(t: &'t Option<Text<'_>>) -> Option<&'t str> {
    t.as_ref().and_then(Text::as_str)
}
