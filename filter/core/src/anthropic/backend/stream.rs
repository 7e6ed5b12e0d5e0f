//! An Anthropic event stream (SSE) as OpenAI `chat.completion.chunk`s, fed in chunks split at
//! any byte (framed by [`SseFramer`]).
//!
//! Each event is read by its data's `type` (Anthropic names it in `event:` too):
//! - `message_start` → the first chunk, `delta: {"role":"assistant","content":""}` (its id and
//!   model are every chunk's: `chatcmpl-` and Anthropic's id, the model as the backend named it);
//! - `content_block_start` of a `tool_use` → a chunk opening the tool call
//!   (`tool_calls[{index, id, type, function: {name, arguments: ""}}]`; `index` counts the tool
//!   calls, not Anthropic's blocks); `content_block_delta`: `text_delta` → `content`,
//!   `thinking_delta` → `reasoning_content`, `input_json_delta` → more `arguments`
//!   (`signature_delta` and `citations_delta` → nothing); `content_block_stop` of a tool call
//!   that streamed no arguments → `arguments: "{}"` (or its start's `input`), so they parse;
//! - `message_delta` with a `stop_reason` → the chunk with `finish_reason` (once);
//! - `message_stop` → the usage-only chunk (`choices: []`), unless the request did not ask for
//!   it ([`ChunkStream::without_usage_chunk`]), then `data: [DONE]`; a stream that reported no
//!   usage at all gets no usage chunk;
//! - `error` → `data: {"error":{...}}` (OpenAI's envelope, see `error.rs`) and the stream ends
//!   there, without `[DONE]`: the flow marks it truncated;
//! - `ping`, other types and events that are not JSON → nothing.
//!
//! Usage is read from `message_start` and every `message_delta` (their counts are cumulative).
//! An event over [`MAX_EVENT_BYTES`](crate::sse::MAX_EVENT_BYTES) ends the stream as the
//! router's SSE rewriter does (an error event, then `[DONE]`). Nothing follows the end of a
//! stream. [`ChunkStream::finish`] reads an event left without its blank line and adds nothing
//! else: a stream that stopped early ends as it stopped, for the flow to mark truncated.

use std::borrow::Cow;

use serde::Deserialize;

use super::chunk::{data_event, Delta, FunctionDelta, Head, ToolCallDelta};
use super::error::AnthropicError;
use super::message::{completion_id, ContentBlock};
use super::usage::{AnthropicUsage, Counts, Usage};
use crate::anthropic::reasons::finish_reason;
use crate::sse::event::event_data;
use crate::sse::{too_large_ending, SseFramer};

/// Anthropic SSE in, OpenAI `chat.completion.chunk` SSE out (see the module's documentation).
#[derive(Debug)]
pub struct ChunkStream {
    framer: SseFramer,
    head: Head,
    /// The first chunk (the role) was written.
    started: bool,
    /// The chunk with `finish_reason` was written.
    finished: bool,
    /// The stream ended (`message_stop`, `error`, an overlong event): the rest is ignored.
    ended: bool,
    counts: Counts,
    usage_seen: bool,
    /// The message's tool calls so far, by Anthropic block index.
    tools: Vec<ToolBlock>,
    /// Whether the usage-only chunk is written (the request asked for stream usage).
    usage_chunk: bool,
}

/// A `tool_use` block being streamed.
#[derive(Debug)]
struct ToolBlock {
    block: u64,
    /// Its place among the message's tool calls.
    index: u32,
    /// Some arguments were streamed.
    streamed: bool,
    /// The `input` its start carried when not empty (`{}`), sent when none is streamed.
    input: Option<String>,
}

/// One Anthropic stream event, as far as the translation reads it.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    message: Option<StartMessage<'a>>,
    #[serde(borrow, default)]
    content_block: Option<ContentBlock<'a>>,
    #[serde(borrow, default)]
    delta: Option<EventDelta<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// `message_start`'s message.
#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// The `delta` of `content_block_delta` and of `message_delta`.
#[derive(Deserialize)]
struct EventDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

/// An `error` event's data.
#[derive(Deserialize)]
struct ErrorEvent<'a> {
    #[serde(borrow)]
    error: AnthropicError<'a>,
}

impl ChunkStream {
    /// A stream whose chunks say they were created at `created` (Unix seconds).
    pub fn new(created: u64) -> Self {
        ChunkStream {
            framer: SseFramer::default(),
            head: Head {
                created,
                ..Head::default()
            },
            started: false,
            finished: false,
            ended: false,
            counts: Counts::default(),
            usage_seen: false,
            tools: Vec::new(),
            usage_chunk: true,
        }
    }

    /// The same stream without the usage-only chunk, for a request that did not ask for stream
    /// usage (`stream_options.include_usage`), as OpenAI's API sends none then. The usage is
    /// still read ([`Self::usage`]).
    pub fn without_usage_chunk(mut self) -> Self {
        self.usage_chunk = false;
        self
    }

    /// The chunks for the events `chunk` completes (possibly none yet).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let mut framer = std::mem::take(&mut self.framer);
        framer.push(chunk, &mut |event| self.event(event, &mut out));
        if framer.overflowed() && !self.ended {
            out.extend(too_large_ending(true));
            self.ended = true;
        }
        self.framer = framer;
        out
    }

    /// The backend's stream ended: the chunks of an event left without its blank line, and
    /// nothing else (see the module's documentation).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let rest = self.framer.finish();
        if !rest.is_empty() {
            self.event(&rest, &mut out);
        }
        out
    }

    /// The tokens reported so far, once the stream reported any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage_seen.then(|| self.counts.usage())
    }

    /// Translates one whole event.
    fn event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let data = event_data(event);
        let Ok(ev) = serde_json::from_slice::<Event<'_>>(&data) else {
            return;
        };
        match ev.kind.as_ref() {
            "message_start" => {
                if let Some(message) = ev.message {
                    self.head.id = completion_id(&message.id);
                    self.head.model = message.model.into_owned();
                    self.take_usage(message.usage.as_ref());
                }
                self.start(out);
            }
            "content_block_start" => {
                self.start(out);
                if let Some(block) = ev.content_block {
                    self.block_start(ev.index.unwrap_or(0), &block, out);
                }
            }
            "content_block_delta" => {
                self.start(out);
                if let Some(delta) = ev.delta {
                    self.block_delta(ev.index.unwrap_or(0), &delta, out);
                }
            }
            "content_block_stop" => self.block_stop(ev.index.unwrap_or(0), out),
            "message_delta" => {
                self.take_usage(ev.usage.as_ref());
                if let Some(reason) = ev.delta.and_then(|d| d.stop_reason) {
                    self.finish_reason(finish_reason(&reason), out);
                }
            }
            "message_stop" => {
                self.finish_reason("stop", out);
                if let Some(usage) = self.usage().filter(|_| self.usage_chunk) {
                    self.head.usage(out, &usage);
                }
                data_event(out, b"[DONE]");
                self.ended = true;
            }
            "error" => {
                let envelope = match serde_json::from_slice::<ErrorEvent<'_>>(&data) {
                    Ok(e) => e.error.stream_envelope(),
                    Err(_) => super::error::openai_error(500, b"").1,
                };
                data_event(out, &envelope);
                self.ended = true;
            }
            _ => {}
        }
    }

    fn take_usage(&mut self, usage: Option<&AnthropicUsage>) {
        if let Some(usage) = usage {
            self.counts.update(usage);
            self.usage_seen = true;
        }
    }

    /// Writes the first chunk, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let delta = Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            };
            self.head.delta(out, delta, None);
        }
    }

    /// Writes the chunk with `finish_reason`, once.
    fn finish_reason(&mut self, reason: &'static str, out: &mut Vec<u8>) {
        if !self.finished {
            self.start(out);
            self.finished = true;
            self.head.delta(out, Delta::default(), Some(reason));
        }
    }

    fn block_start(&mut self, block: u64, start: &ContentBlock<'_>, out: &mut Vec<u8>) {
        match start.kind.as_ref() {
            "text" => self.text(start.text.as_deref(), out),
            "thinking" => self.reasoning(start.thinking.as_deref(), out),
            "tool_use" => {
                let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                let input = start
                    .input
                    .map(|raw| raw.get())
                    .filter(|raw| {
                        raw.strip_prefix('{')
                            .is_some_and(|rest| rest.trim_start() != "}")
                    })
                    .map(str::to_string);
                self.tools.push(ToolBlock {
                    block,
                    index,
                    streamed: false,
                    input,
                });
                let call = ToolCallDelta {
                    index,
                    id: Some(start.id.as_deref().unwrap_or("")),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(start.name.as_deref().unwrap_or("")),
                        arguments: "",
                    },
                };
                self.tool_delta(call, out);
            }
            _ => {}
        }
    }

    fn block_delta(&mut self, block: u64, delta: &EventDelta<'_>, out: &mut Vec<u8>) {
        match delta.kind.as_deref() {
            Some("text_delta") => self.text(delta.text.as_deref(), out),
            Some("thinking_delta") => self.reasoning(delta.thinking.as_deref(), out),
            Some("input_json_delta") => {
                let Some(json) = delta.partial_json.as_deref().filter(|j| !j.is_empty()) else {
                    return;
                };
                let Some(tool) = self.tools.iter_mut().rev().find(|t| t.block == block) else {
                    return;
                };
                tool.streamed = true;
                let index = tool.index;
                self.tool_delta(arguments(index, json), out);
            }
            _ => {}
        }
    }

    fn block_stop(&mut self, block: u64, out: &mut Vec<u8>) {
        let Some(tool) = self.tools.iter_mut().rev().find(|t| t.block == block) else {
            return;
        };
        if std::mem::replace(&mut tool.streamed, true) {
            return;
        }
        let (index, input) = (tool.index, tool.input.take());
        self.tool_delta(arguments(index, input.as_deref().unwrap_or("{}")), out);
    }

    fn text(&self, text: Option<&str>, out: &mut Vec<u8>) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let delta = Delta {
                content: Some(text),
                ..Delta::default()
            };
            self.head.delta(out, delta, None);
        }
    }

    fn reasoning(&self, text: Option<&str>, out: &mut Vec<u8>) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let delta = Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            };
            self.head.delta(out, delta, None);
        }
    }

    fn tool_delta(&self, call: ToolCallDelta<'_>, out: &mut Vec<u8>) {
        let delta = Delta {
            tool_calls: Some([call]),
            ..Delta::default()
        };
        self.head.delta(out, delta, None);
    }
}

/// More `arguments` for tool call `index`.
fn arguments(index: u32, json: &str) -> ToolCallDelta<'_> {
    ToolCallDelta {
        index,
        id: None,
        kind: None,
        function: FunctionDelta {
            name: None,
            arguments: json,
        },
    }
}

#[cfg(test)]
mod tests;
