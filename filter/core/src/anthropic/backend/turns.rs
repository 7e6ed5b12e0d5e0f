//! A chat request's `messages` as Anthropic's top-level `system` and its alternating
//! `messages` turns.
//!
//! - `system` and `developer` messages, wherever they are: their text parts, each a
//!   paragraph, joined with a blank line into `system`.
//! - `user` → a user turn; `assistant` → an assistant turn (its text, then its `tool_calls` as
//!   `tool_use` blocks). An assistant's `reasoning_content` (the thinking this router returned)
//!   is left out: Anthropic takes thinking back only with the signature a chat answer cannot
//!   carry.
//! - `tool` → a `tool_result` block (`tool_call_id`, the text) in a user turn.
//! - Adjacent turns of one role are merged into one (Anthropic wants roles to alternate), and in
//!   a user turn the tool results come first (Anthropic wants them right after the calls).
//! - A message's `name` has no counterpart (see `params.rs`); `function` messages, assistant
//!   `audio` and `function_call` are refused.

use serde::Serialize;
use serde_json::{Map, Value};

use super::content::{bad_content, blocks, texts, Author, Block};
use super::params::{invalid_type, quoted, unsupported};
use super::tools::tool_uses;
use crate::errors::ApiError;

/// One turn of the conversation.
#[derive(Debug, Serialize)]
pub(super) struct Turn {
    role: &'static str,
    content: Vec<Block>,
}

/// The conversation: the system prompt (when any) and the turns.
#[derive(Debug, Default)]
pub(super) struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Turn>,
}

/// The request's `messages`; `drop`: fields without a counterpart are left out rather than
/// refused.
pub(super) fn conversation(messages: &Value, drop: bool) -> Result<Conversation, ApiError> {
    let list = messages
        .as_array()
        .ok_or_else(|| invalid_type("messages", "an array"))?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (index, message) in list.iter().enumerate() {
        let message = message
            .as_object()
            .ok_or_else(|| bad_content(index, "each message must be an object"))?;
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_content(index, "each message needs a string 'role'"))?;
        check_fields(message, role, index, drop)?;
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(texts(content, index)?),
            "user" => push(&mut turns, "user", blocks(content, Author::User, index)?),
            "assistant" => {
                let mut out = blocks(content, Author::Assistant, index)?;
                if let Some(Value::String(refusal)) = message.get("refusal") {
                    if !refusal.is_empty() {
                        out.push(Block::Text {
                            text: refusal.clone(),
                        });
                    }
                }
                let calls = message.get("tool_calls").unwrap_or(&Value::Null);
                out.extend(tool_uses(calls, index)?);
                push(&mut turns, "assistant", out);
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_content(index, "a tool message needs a 'tool_call_id'"))?;
                let result = Block::ToolResult {
                    tool_use_id: id.to_string(),
                    content: texts(content, index)?.concat(),
                };
                push(&mut turns, "user", vec![result]);
            }
            other => {
                return Err(bad_content(
                    index,
                    &format!(
                        "the role '{}' is not supported with this model",
                        quoted(other)
                    ),
                ))
            }
        }
    }
    for turn in &mut turns {
        // Stable: the results keep their order, and so does the rest.
        turn.content
            .sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    let system = system.join("\n\n");
    Ok(Conversation {
        system: (!system.is_empty()).then_some(system),
        turns,
    })
}

/// Adds `content` as a turn of `role`, merged into the last turn when it has that role too.
fn push(turns: &mut Vec<Turn>, role: &'static str, content: Vec<Block>) {
    if content.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(content),
        _ => turns.push(Turn { role, content }),
    }
}

/// Refuses (or, with `drop`, ignores) the fields of a message that have no counterpart.
fn check_fields(
    message: &Map<String, Value>,
    role: &str,
    index: usize,
    drop: bool,
) -> Result<(), ApiError> {
    for (key, value) in message {
        let carried = match key.as_str() {
            "role" | "content" => true,
            "tool_calls" | "refusal" | "reasoning_content" => role == "assistant",
            "tool_call_id" => role == "tool",
            "audio" | "function_call" if role == "assistant" && !value.is_null() => {
                return Err(bad_content(
                    index,
                    &format!("an assistant's '{key}' is not supported with this model"),
                ))
            }
            _ => false,
        };
        if !carried && !value.is_null() && !drop {
            return Err(unsupported(Some("messages"), key));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(messages: Value) -> (Option<String>, String) {
        let c = conversation(&messages, false).unwrap();
        (c.system, serde_json::to_string(&c.turns).unwrap())
    }

    #[test]
    fn system_and_developer_messages_join_the_system_prompt_from_anywhere() {
        let (system, turns) = convert(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}, {"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]},
        ]));
        assert_eq!(
            system.as_deref(),
            Some("Be brief.\n\nAnswer in French.\n\nNo emoji.")
        );
        assert_eq!(
            turns,
            r#"[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"Again"}]}]"#
        );
    }

    #[test]
    fn tool_calls_and_their_results_alternate_with_results_first() {
        let (system, turns) = convert(json!([
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "user", "content": "Be quick."},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
            {"role": "assistant", "content": "Paris 18C, Rome 21C.", "reasoning_content": "easy"},
        ]));
        assert_eq!(system, None);
        assert_eq!(
            turns,
            concat!(
                r#"[{"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"}]},"#,
                r#"{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},"#,
                r#"{"type":"tool_use","id":"toolu_2","name":"weather","input":{"city":"Rome"}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},"#,
                r#"{"type":"tool_result","tool_use_id":"toolu_2","content":"21C"},{"type":"text","text":"Be quick."}]},"#,
                r#"{"role":"assistant","content":[{"type":"text","text":"Paris 18C, Rome 21C."}]}]"#
            )
        );
    }

    #[test]
    fn fields_without_counterpart_are_refused_or_dropped() {
        let named = json!([{"role": "user", "content": "hi", "name": "ann"}]);
        let err = conversation(&named, false).unwrap_err();
        assert_eq!(
            (err.param, err.code),
            (Some("messages"), Some("unsupported_parameter"))
        );
        assert!(err.message.contains("'name'"));
        assert!(conversation(&named, true).is_ok());
        for bad in [
            json!([{"role": "function", "name": "f", "content": "x"}]),
            json!([{"role": "assistant", "audio": {"id": "a1"}}]),
            json!([{"role": "tool", "content": "x"}]),
            json!([{"content": "x"}]),
            json!(["x"]),
            json!({"role": "user"}),
        ] {
            let err = conversation(&bad, true).unwrap_err();
            assert_eq!((err.status, err.param), (400, Some("messages")), "{bad}");
        }
        let tool_call_id_on_user = json!([{"role": "user", "content": "x", "tool_call_id": "t"}]);
        assert!(conversation(&tool_call_id_on_user, false).is_err());
    }

    #[test]
    fn empty_messages_leave_no_turn() {
        let (system, turns) = convert(json!([
            {"role": "system", "content": ""},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": null},
            {"role": "user", "content": "b"},
        ]));
        assert_eq!(system, None);
        assert_eq!(
            turns,
            r#"[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]"#
        );
    }
}
