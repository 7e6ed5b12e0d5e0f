//! Anthropic's answer shapes as written here: a message and its content blocks, and each
//! stream event as `event: NAME\ndata: JSON\n\n` (the event's name is its data's `type`).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::openai::AnthropicUsage;

/// A message: the whole answer, or the empty one `message_start` carries.
#[derive(Serialize)]
pub(super) struct Message<'a, B: Serialize> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: &'a [B],
    pub stop_reason: Option<&'a str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: &'a AnthropicUsage,
}

/// A content block, its tool input of type `I` (raw JSON, or [`EmptyObject`] in
/// `content_block_start`).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a, I: Serialize> {
    Text {
        text: &'a str,
    },
    /// No backend but Anthropic signs its thinking: the signature is empty.
    Thinking {
        thinking: &'a str,
        signature: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: I,
    },
}

/// `{}`, the input a `tool_use` block starts with.
pub(super) struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// What a `content_block_delta` adds (`text_delta`, `input_json_delta`, `thinking_delta`).
#[derive(Serialize)]
#[serde(tag = "type")]
pub(super) enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
}

/// The usage `message_delta` carries: output tokens, and the prompt's when the backend counted
/// them (they replace `message_start`'s estimate).
#[derive(Serialize)]
pub(super) struct DeltaUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    pub output_tokens: u64,
}

/// One stream event's data.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Event<'a> {
    MessageStart {
        message: Message<'a, Block<'a, EmptyObject>>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a, EmptyObject>,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta<'a>,
        usage: DeltaUsage,
    },
    MessageStop,
    /// A keep-alive.
    Ping,
    Error {
        error: ErrorObject<'a>,
    },
}

/// `message_delta`'s `delta`: why the answer stopped.
#[derive(Serialize)]
pub(super) struct StopDelta<'a> {
    pub stop_reason: &'a str,
    pub stop_sequence: Option<&'a str>,
}

/// The `error` of an `error` event.
#[derive(Serialize)]
pub(super) struct ErrorObject<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub message: &'a str,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Ping => "ping",
            Event::Error { .. } => "error",
        }
    }

    /// Appends the event as `event: NAME\ndata: JSON\n\n`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut *out, self).is_err() {
            // Plain strings and numbers do not fail to serialize; should it ever, the event
            // still ends and parses.
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(e: Event) -> String {
        let mut out = Vec::new();
        e.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn events_are_named_for_their_type() {
        assert_eq!(
            written(Event::ContentBlockStart {
                index: 2,
                content_block: Block::ToolUse {
                    id: "call_1",
                    name: "f",
                    input: EmptyObject
                }
            }),
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":{}}}\n\n"
        );
        assert_eq!(
            written(Event::MessageStop),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(
            written(Event::ContentBlockDelta {
                index: 0,
                delta: Delta::Thinking { thinking: "a\"b" }
            }),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"a\\\"b\"}}\n\n"
        );
    }
}
