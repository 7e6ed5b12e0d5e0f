//! A chat answer (`chat.completion`, JSON) made into a Messages answer: reasoning, text and
//! tool calls as content blocks, the stop reason and the usage in Anthropic's terms.

use serde_json::value::RawValue;

use super::events::{Block, Message};
use super::openai::{message_id, AnthropicUsage, Completion, Stop, ToolCall};

/// A tool call ready to be a `tool_use` block.
struct ToolUse {
    id: String,
    name: String,
    input: Box<RawValue>,
}

/// The Anthropic message for a `chat.completion`: `{"id":"msg_…","type":"message","role":
/// "assistant","model","content":[…],"stop_reason","stop_sequence","usage"}`, the model copied
/// from the answer. Content: a `thinking` block for the reasoning, a `text` block for the text
/// (and one for a refusal, which stops with `refusal`), a `tool_use` block per tool call.
/// `None` when the body is no chat completion (an error envelope, no choices) or one the
/// Messages API cannot carry (tool call arguments that are not a JSON object, or no name).
pub fn message(chat_completion: &[u8]) -> Option<Vec<u8>> {
    let answer: Completion = serde_json::from_slice(chat_completion).ok()?;
    if answer.error.is_some() {
        return None;
    }
    let choice = answer.choices.into_iter().next()?;
    let msg = choice.message?;
    let tools = msg
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, call)| tool_use(i, call))
        .collect::<Option<Vec<_>>>()?;
    let reasoning = msg.reasoning_content.or(msg.reasoning);
    let refusal = msg.refusal.filter(|r| !r.is_empty());
    let mut content: Vec<Block<&RawValue>> = Vec::new();
    if let Some(thinking) = reasoning.as_deref().filter(|r| !r.is_empty()) {
        content.push(Block::Thinking {
            thinking,
            signature: "",
        });
    }
    if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
        content.push(Block::Text { text });
    }
    if let Some(text) = refusal.as_deref() {
        content.push(Block::Text { text });
    }
    content.extend(tools.iter().map(|t| Block::ToolUse {
        id: &t.id,
        name: &t.name,
        input: &*t.input,
    }));
    let mut stop = Stop::new(choice.finish_reason.as_deref(), choice.stop_reason.as_ref());
    if refusal.is_some() {
        stop = Stop {
            reason: "refusal",
            sequence: None,
        };
    }
    let id = message_id(answer.id.as_deref());
    let usage = AnthropicUsage::from(answer.usage);
    let out = Message {
        id: &id,
        kind: "message",
        role: "assistant",
        model: answer.model.as_deref().unwrap_or(""),
        content: &content,
        stop_reason: Some(stop.reason),
        stop_sequence: stop.sequence.as_deref(),
        usage: &usage,
    };
    serde_json::to_vec(&out).ok()
}

/// A tool call as a `tool_use` block's parts: its arguments must be a JSON object (empty
/// arguments are `{}`), its name given; the id falls back to `toolu_<position>`.
fn tool_use(position: usize, call: ToolCall) -> Option<ToolUse> {
    let name = call.function.name.filter(|n| !n.is_empty())?;
    let args = call.function.arguments.unwrap_or_default();
    let args = if args.trim().is_empty() { "{}" } else { &args };
    let input: Box<RawValue> = serde_json::from_str(args).ok()?;
    if !input.get().starts_with('{') {
        return None;
    }
    let id = call
        .id
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| crate::text::concat(&["toolu_", &position.to_string()]));
    Some(ToolUse { id, name, input })
}

/// Whether tool call arguments make a JSON object, or are empty (no arguments: `{}`).
pub(super) fn is_object_or_empty(args: &str) -> bool {
    let args = args.trim();
    args.is_empty()
        || (args.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(args).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate(v: Value) -> Option<Value> {
        message(v.to_string().as_bytes()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn text_answer() {
        let out = translate(json!({
            "id":"chatcmpl-9","object":"chat.completion","model":"my-chat",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"id":"msg_9","type":"message","role":"assistant","model":"my-chat",
                "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,
                "usage":{"input_tokens":5,"output_tokens":2,"cache_read_input_tokens":0}})
        );
    }

    #[test]
    fn reasoning_text_and_tools() {
        let out = translate(json!({
            "id":"c","model":"m",
            "choices":[{"message":{"content":"Let me look.","reasoning_content":"think",
                "tool_calls":[
                    {"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"city\": \"Paris\"}"}},
                    {"type":"function","function":{"name":"now","arguments":""}}
                ]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}
        }))
        .unwrap();
        assert_eq!(
            out["content"],
            json!([
                {"type":"thinking","thinking":"think","signature":""},
                {"type":"text","text":"Let me look."},
                {"type":"tool_use","id":"call_1","name":"get","input":{"city":"Paris"}},
                {"type":"tool_use","id":"toolu_1","name":"now","input":{}}
            ])
        );
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            out["usage"],
            json!({"input_tokens":6,"output_tokens":3,"cache_read_input_tokens":4})
        );
    }

    #[test]
    fn vllm_stop_strings_and_refusals() {
        let out = translate(json!({"choices":[{"message":{"content":"a"},"finish_reason":"stop","stop_reason":"###"}]})).unwrap();
        assert_eq!(
            (out["stop_reason"].as_str(), out["stop_sequence"].as_str()),
            (Some("stop_sequence"), Some("###"))
        );
        assert_eq!(out["id"], "msg_router");
        let out = translate(json!({"choices":[{"message":{"content":null,"refusal":"No."},"finish_reason":"stop"}]})).unwrap();
        assert_eq!(out["content"], json!([{"type":"text","text":"No."}]));
        assert_eq!(out["stop_reason"], "refusal");
        let out =
            translate(json!({"choices":[{"message":{"content":"x"},"finish_reason":"length"}]}))
                .unwrap();
        assert_eq!(out["stop_reason"], "max_tokens");
        assert_eq!(out["content"], json!([{"type":"text","text":"x"}]));
    }

    #[test]
    fn what_is_no_message_gives_none() {
        for body in [
            json!({"error":{"message":"bad","type":"invalid_request_error"}}),
            json!({"choices":[]}),
            json!({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":"}}]}}]}),
            json!({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}}]}),
            json!({"choices":[{"message":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}),
            json!({"choices":[{"message":{"content":["parts"]}}]}),
            json!([1]),
        ] {
            assert_eq!(translate(body.clone()), None, "{body}");
        }
        assert_eq!(message(b"{\"choices\":[{\"message\":"), None);
    }
}
