//! A chat stream (`chat.completion.chunk` events, then `data: [DONE]`) made into Anthropic's
//! stream: `message_start`; the content blocks (`content_block_start`, `content_block_delta`,
//! `content_block_stop`, see `blocks`); `message_delta` with the stop reason and usage;
//! `message_stop`. Chunks may be split at any byte (the SSE framer reassembles events).
//!
//! - `message_start` goes out with the first event; its `input_tokens` is the estimate given,
//!   or the backend's count when that first chunk carries usage.
//! - The chunk with `finish_reason` closes the blocks; `message_delta` waits for the usage
//!   chunk that follows it (the chat request asks for one) or for `[DONE]`. Its usage is the
//!   backend's (`output_tokens`, and `input_tokens` replacing the estimate), or without one
//!   an estimate of the streamed text (`crate::token_estimate`).
//! - `data: {"error":...}` closes the open block and ends the stream with an `error` event;
//!   so does a tool call whose arguments make no JSON object (found when the blocks close, as
//!   [`super::message`] refuses such an answer), a stream cut short ([`EventStream::finish`]
//!   before `[DONE]`) and an event over [`crate::sse::MAX_EVENT_BYTES`]. A comment (the backend's keep-alive) after
//!   `message_start` becomes a `ping`; other events that are not JSON chunks of the expected
//!   shape, and choices other than the first, are skipped.
//! - State is bounded: the framer's one event, the blocks held back (`blocks`), and the ids of
//!   tool calls sent without an `index` ([`MAX_TOOL_IDS`]).

use super::blocks::Blocks;
use super::errors::stream_error;
use super::events::{DeltaUsage, ErrorObject, Event, Message, StopDelta};
use super::openai::{message_id, AnthropicUsage, Chunk, Delta, Stop, Usage};
use crate::sse::{event_data, SseFramer};

/// Most tool call ids remembered for calls sent without an `index`.
pub const MAX_TOOL_IDS: usize = 128;

/// OpenAI `chat.completion.chunk` SSE in, Anthropic stream events out.
#[derive(Debug)]
pub struct EventStream {
    framer: SseFramer,
    state: State,
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet.
    Waiting,
    /// `message_start` sent; blocks come.
    Streaming,
    /// The choice finished; `message_delta` waits for usage or `[DONE]`.
    Finishing,
    /// `message_stop` or `error` sent: the rest is ignored.
    Done,
}

#[derive(Debug)]
struct State {
    model: String,
    input_estimate: u64,
    phase: Phase,
    blocks: Blocks,
    stop: Option<Stop>,
    refused: bool,
    usage: Option<Usage>,
    output_estimate: u64,
    /// Tool call ids seen without an `index`, with the key each was given.
    tool_ids: Vec<(String, u32)>,
    last_tool: u32,
}

impl EventStream {
    /// A stream answering as `model` (the client-visible name), its prompt estimated at
    /// `input_tokens_estimate` tokens until the backend counts it.
    pub fn new(model: &str, input_tokens_estimate: u64) -> Self {
        EventStream {
            framer: SseFramer::default(),
            state: State {
                model: model.to_string(),
                input_estimate: input_tokens_estimate,
                phase: Phase::Waiting,
                blocks: Blocks::default(),
                stop: None,
                refused: false,
                usage: None,
                output_estimate: 0,
                tool_ids: Vec::new(),
                last_tool: 0,
            },
        }
    }

    /// The Anthropic events for the next piece of the chat stream (possibly none yet).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.state.phase == Phase::Done {
            return out;
        }
        let state = &mut self.state;
        self.framer
            .push(chunk, &mut |event| state.on_event(event, &mut out));
        if self.framer.overflowed() {
            self.state.fail(
                "api_error",
                "The backend sent a stream event larger than the router passes on (16 MiB); the stream was ended.",
                &mut out,
            );
        }
        out
    }

    /// The inner stream ended: its last event if it lacked its blank line, then, unless the
    /// answer ended, the open block closed and an `error` event: the stream always ends
    /// well-formed.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.state.phase == Phase::Done {
            return out;
        }
        let rest = self.framer.finish();
        if !rest.is_empty() {
            self.state.on_event(&rest, &mut out);
        }
        if self.state.phase != Phase::Done {
            self.state.fail(
                "api_error",
                "The stream was cut short: the backend's answer ended before it was complete.",
                &mut out,
            );
        }
        out
    }
}

impl State {
    fn on_event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        if self.phase == Phase::Done {
            return;
        }
        let data = event_data(event);
        let data = data.trim_ascii();
        if data.is_empty() {
            // A comment is the backend's keep-alive: the client gets Anthropic's.
            if event.first() == Some(&b':') && self.phase != Phase::Waiting {
                Event::Ping.write(out);
            }
            return;
        }
        if data == b"[DONE]" {
            return self.end(out);
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
            return;
        };
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            let (kind, message) = stream_error(err);
            return self.fail(kind, &message, out);
        }
        if self.phase == Phase::Waiting {
            self.start(chunk.id.as_deref(), chunk.usage.as_ref(), out);
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let choices = chunk.choices.unwrap_or_default();
        let usage_only = choices.is_empty() && chunk.usage.is_some();
        for choice in choices.into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            if self.phase != Phase::Streaming {
                break;
            }
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.close_blocks(out);
                if self.phase == Phase::Done {
                    return;
                }
                self.stop = Some(Stop::new(Some(reason), choice.stop_reason.as_ref()));
                self.phase = Phase::Finishing;
            }
        }
        if self.blocks.overflowed() {
            return self.fail(
                "api_error",
                "The answer's tool calls outgrew what the router holds to order and check them (16 MiB); the stream was ended.",
                out,
            );
        }
        if usage_only && self.phase == Phase::Finishing {
            self.end(out);
        }
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<u8>) {
        if let Some(text) = delta.reasoning_content.or(delta.reasoning) {
            self.count(&text);
            self.blocks.thinking(&text, out);
        }
        if let Some(text) = delta.content {
            self.count(&text);
            self.blocks.text(&text, out);
        }
        if let Some(text) = delta.refusal.filter(|r| !r.is_empty()) {
            self.refused = true;
            self.count(&text);
            self.blocks.text(&text, out);
        }
        for call in delta.tool_calls.unwrap_or_default() {
            let key = self.tool_key(call.index, call.id.as_deref());
            let function = call.function;
            let name = function.as_ref().and_then(|f| f.name.as_deref());
            let args = function
                .as_ref()
                .and_then(|f| f.arguments.as_deref())
                .unwrap_or("");
            self.count(args);
            self.blocks.tool(key, call.id.as_deref(), name, args, out);
        }
    }

    /// The key of a tool call piece: its `index`; without one, the call its id names (a new
    /// id, a new call), or without an id the call before.
    fn tool_key(&mut self, index: Option<u32>, id: Option<&str>) -> u32 {
        let key = match (index, id) {
            (Some(index), _) => index,
            (None, Some(id)) => match self.tool_ids.iter().find(|(known, _)| known == id) {
                Some((_, key)) => *key,
                None => {
                    let key = self.last_tool.saturating_add(1);
                    if self.tool_ids.len() < MAX_TOOL_IDS {
                        self.tool_ids.push((id.to_string(), key));
                    }
                    key
                }
            },
            (None, None) => self.last_tool,
        };
        self.last_tool = key;
        key
    }

    fn count(&mut self, text: &str) {
        self.output_estimate = self
            .output_estimate
            .saturating_add(crate::token_estimate::estimate(text.as_bytes()));
    }

    fn start(&mut self, chat_id: Option<&str>, usage: Option<&Usage>, out: &mut Vec<u8>) {
        let id = message_id(chat_id);
        let usage = AnthropicUsage {
            input_tokens: usage
                .and_then(Usage::input_tokens)
                .unwrap_or(self.input_estimate),
            output_tokens: 0,
            cache_read_input_tokens: usage.and_then(Usage::cached).unwrap_or(0),
        };
        let message = Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: &[],
            stop_reason: None,
            stop_sequence: None,
            usage: &usage,
        };
        Event::MessageStart { message }.write(out);
        self.phase = Phase::Streaming;
    }

    /// The answer is complete: blocks closed, `message_delta`, `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Waiting {
            self.start(None, None, out);
        }
        self.close_blocks(out);
        if self.phase == Phase::Done {
            return;
        }
        let stop = match (self.refused, self.stop.take()) {
            (true, _) => Stop {
                reason: "refusal",
                sequence: None,
            },
            (false, Some(stop)) => stop,
            (false, None) => Stop::new(None, None),
        };
        let usage = self.usage.unwrap_or_default();
        Event::MessageDelta {
            delta: StopDelta {
                stop_reason: stop.reason,
                stop_sequence: stop.sequence.as_deref(),
            },
            usage: DeltaUsage {
                input_tokens: usage.input_tokens(),
                cache_read_input_tokens: usage.cached(),
                output_tokens: usage.completion_tokens.unwrap_or(self.output_estimate),
            },
        }
        .write(out);
        Event::MessageStop.write(out);
        self.phase = Phase::Done;
    }

    /// Closes the blocks; a tool call whose arguments make no JSON object fails the answer.
    fn close_blocks(&mut self, out: &mut Vec<u8>) {
        self.blocks.close_all(out);
        if let Some(name) = self.blocks.malformed_tool() {
            let message = crate::text::concat(&[
                "The backend's call of the tool `",
                name,
                "` has arguments that are not a JSON object; the answer cannot be given as a Messages answer.",
            ]);
            self.fail("api_error", &message, out);
        }
    }

    /// The answer failed: the open block closed (held blocks dropped), an `error` event.
    fn fail(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        if self.phase == Phase::Done {
            return;
        }
        self.blocks.abandon(out);
        Event::Error {
            error: ErrorObject { kind, message },
        }
        .write(out);
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
mod tests;
