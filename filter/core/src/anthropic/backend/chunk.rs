//! The `chat.completion.chunk` events a translated stream is made of, written as SSE
//! (`data: {...}` and a blank line): one choice (index 0) with a delta, or the usage-only chunk
//! (`choices: []`).

use serde::Serialize;

use super::usage::Usage;

/// What every chunk of one stream repeats: OpenAI's id, the model, the creation time.
#[derive(Debug, Default)]
pub(super) struct Head {
    pub id: String,
    pub model: String,
    pub created: u64,
}

/// What a chunk adds to the message.
#[derive(Debug, Default, Serialize)]
pub(super) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

/// A piece of a tool call: its first (with `id`, `type` and the function's `name`), or more of
/// its `arguments`. `index` counts the message's tool calls.
#[derive(Debug, Serialize)]
pub(super) struct ToolCallDelta<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<super::usage::OpenAiUsage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

impl Head {
    /// Writes a chunk with `delta` and `finish_reason`.
    pub fn delta(&self, out: &mut Vec<u8>, delta: Delta<'_>, finish_reason: Option<&'static str>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.write(out, &[choice], None);
    }

    /// Writes the usage-only chunk.
    pub fn usage(&self, out: &mut Vec<u8>, usage: &Usage) {
        self.write(out, &[], Some(usage.openai()));
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        choices: &[ChunkChoice<'_>],
        usage: Option<super::usage::OpenAiUsage>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        // Plain strings and numbers: writing cannot fail; were it to, the chunk is left out.
        if let Ok(json) = serde_json::to_vec(&chunk) {
            data_event(out, &json);
        }
    }
}

/// Writes `data: <data>` and the blank line that ends the event.
pub(super) fn data_event(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_one_choice_or_only_usage() {
        let head = Head {
            id: "chatcmpl-msg_1".into(),
            model: "claude".into(),
            created: 7,
        };
        let mut out = Vec::new();
        head.delta(
            &mut out,
            Delta {
                tool_calls: Some([ToolCallDelta {
                    index: 1,
                    id: Some("toolu_1"),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some("f"),
                        arguments: "",
                    },
                }]),
                ..Delta::default()
            },
            None,
        );
        head.usage(&mut out, &Usage::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"claude","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"toolu_1","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}]}"#,
                "\n\n",
                r#"data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"claude","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0}}}"#,
                "\n\n"
            )
        );
    }
}
