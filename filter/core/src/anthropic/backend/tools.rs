//! Tools both ways of a conversation: the request's `tools` and `tool_choice` (with
//! `parallel_tool_calls`), and an assistant message's `tool_calls` as `tool_use` blocks.
//!
//! - `tools`: each `{"type":"function","function":{name, description, parameters}}` →
//!   `{name, description, input_schema}` (no `parameters`: an object schema without
//!   properties). `strict: true` has no counterpart (see `params.rs`); other tool types are
//!   refused.
//! - `tool_choice`: `auto` → `auto`, `none` → `none`, `required` → `any`,
//!   `{"type":"function","function":{"name"}}` → `{"type":"tool","name"}`.
//! - `parallel_tool_calls: false` → `disable_parallel_tool_use: true` on the choice (`auto`
//!   when the client named none; nothing when there are no tools or the choice is `none`).
//! - `tool_calls[]` → `tool_use` blocks: `id`, `function.name`, and `function.arguments` (a
//!   JSON text) as `input`, which must be an object (an empty text is `{}`); anything else is
//!   a 400.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::content::{bad_content, Block};
use super::params::{invalid_type, invalid_value, unsupported};
use crate::errors::ApiError;

/// A tool Anthropic may call.
#[derive(Debug, Serialize)]
pub(super) struct Tool {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    input_schema: Value,
}

/// How Anthropic may use the tools.
#[derive(Debug, Serialize)]
pub(super) struct ToolChoice {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disable_parallel_tool_use: bool,
}

/// The request's `tools`; `drop`: a `strict` tool loses `strict` rather than being refused.
pub(super) fn tools(value: &Value, drop: bool) -> Result<Vec<Tool>, ApiError> {
    let list = value
        .as_array()
        .ok_or_else(|| invalid_type("tools", "an array"))?;
    list.iter().map(|t| tool(t, drop)).collect()
}

fn tool(value: &Value, drop: bool) -> Result<Tool, ApiError> {
    let kind = value.get("type").and_then(Value::as_str);
    let function = value.get("function").filter(|_| kind == Some("function"));
    let Some(function) = function.and_then(Value::as_object) else {
        return Err(invalid_value(
            "tools",
            "only tools of type 'function' with a 'function' object are supported with this model",
        ));
    };
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid_value("tools", "each function needs a 'name'"))?;
    if function.get("strict") == Some(&Value::Bool(true)) && !drop {
        return Err(unsupported(Some("tools"), "strict"));
    }
    let description = match function.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(invalid_type("tools", "a string 'description'")),
    };
    let input_schema = match function.get("parameters") {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => return Err(invalid_type("tools", "an object 'parameters'")),
    };
    Ok(Tool {
        name: name.to_string(),
        description,
        input_schema,
    })
}

/// The Anthropic choice for the request's `tool_choice` (`None`: absent) and
/// `parallel_tool_calls`, when the request has tools.
pub(super) fn tool_choice(
    choice: Option<&Value>,
    parallel: Option<&Value>,
    has_tools: bool,
) -> Result<Option<ToolChoice>, ApiError> {
    let disable_parallel = match parallel {
        None | Some(Value::Null) | Some(Value::Bool(true)) => false,
        Some(Value::Bool(false)) => true,
        Some(_) => return Err(invalid_type("parallel_tool_calls", "a boolean")),
    };
    let (kind, name) = match choice {
        None | Some(Value::Null) => ("auto", None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ("auto", None),
            "none" => ("none", None),
            "required" => ("any", None),
            _ => {
                return Err(invalid_value(
                    "tool_choice",
                    "expected 'auto', 'none', 'required' or a function",
                ))
            }
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type") == Some(&Value::from("function")))
                .ok_or_else(|| {
                    invalid_value(
                        "tool_choice",
                        "expected {\"type\":\"function\",\"function\":{\"name\":...}} (other choices are not supported with this model)",
                    )
                })?;
            ("tool", Some(name.to_string()))
        }
    };
    let given = choice.is_some_and(|c| !c.is_null());
    if !has_tools || (!given && !disable_parallel) {
        return Ok(None);
    }
    Ok(Some(ToolChoice {
        kind,
        name,
        disable_parallel_tool_use: disable_parallel && kind != "none",
    }))
}

/// An assistant message's `tool_calls` (message `index`) as `tool_use` blocks.
pub(super) fn tool_uses(calls: &Value, index: usize) -> Result<Vec<Block>, ApiError> {
    let list = match calls {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err(bad_content(index, "'tool_calls' must be an array")),
    };
    list.iter().map(|call| tool_use(call, index)).collect()
}

fn tool_use(call: &Value, index: usize) -> Result<Block, ApiError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let function = call
        .get("function")
        .filter(|_| call.get("type").is_none_or(|t| t == "function"));
    let (Some(id), Some(name)) = (
        text(call.get("id")),
        text(function.and_then(|f| f.get("name"))),
    ) else {
        return Err(bad_content(
            index,
            "each tool call needs an 'id' and a 'function' with a 'name'",
        ));
    };
    let arguments = function
        .and_then(|f| f.get("arguments"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad_content(index, "a tool call's 'function.arguments' must be a string"))?;
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let input = serde_json::from_str::<Box<RawValue>>(arguments)
        .ok()
        .filter(|raw| raw.get().starts_with('{'))
        .ok_or_else(|| {
            bad_content(
                index,
                "a tool call's 'function.arguments' must be a JSON object",
            )
        })?;
    Ok(Block::ToolUse { id, name, input })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn function_tools_become_anthropic_tools() {
        let t = tools(
            &json!([
                {"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
                {"type": "function", "function": {"name": "now", "strict": false}},
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            to_json(&t),
            r#"[{"name":"get_weather","description":"Weather now","input_schema":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}},{"name":"now","input_schema":{"properties":{},"type":"object"}}]"#
        );
        let strict = json!([{"type": "function", "function": {"name": "f", "strict": true}}]);
        assert_eq!(tools(&strict, false).unwrap_err().param, Some("tools"));
        assert!(tools(&strict, true).is_ok());
        for bad in [
            json!([{"type": "custom", "custom": {"name": "x"}}]),
            json!([{"type": "function", "function": {}}]),
            json!([{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
            json!({}),
        ] {
            assert_eq!(
                tools(&bad, false).unwrap_err().param,
                Some("tools"),
                "{bad}"
            );
        }
    }

    #[test]
    fn choices_map_and_parallel_calls_can_be_disabled() {
        let choice = |c: Value, p: Value| {
            let c = (!c.is_null()).then_some(c);
            let p = (!p.is_null()).then_some(p);
            tool_choice(c.as_ref(), p.as_ref(), true).map(|c| to_json(&c))
        };
        assert_eq!(
            choice(json!("auto"), Value::Null).unwrap(),
            r#"{"type":"auto"}"#
        );
        assert_eq!(
            choice(json!("none"), json!(false)).unwrap(),
            r#"{"type":"none"}"#
        );
        assert_eq!(
            choice(json!("required"), json!(true)).unwrap(),
            r#"{"type":"any"}"#
        );
        assert_eq!(
            choice(
                json!({"type": "function", "function": {"name": "f"}}),
                json!(false)
            )
            .unwrap(),
            r#"{"type":"tool","name":"f","disable_parallel_tool_use":true}"#
        );
        assert_eq!(
            choice(Value::Null, json!(false)).unwrap(),
            r#"{"type":"auto","disable_parallel_tool_use":true}"#
        );
        assert_eq!(choice(Value::Null, json!(true)).unwrap(), "null");
        assert!(tool_choice(None, Some(&json!(false)), false)
            .unwrap()
            .is_none());
        assert!(choice(json!("sometimes"), Value::Null).is_err());
        assert!(choice(json!({"type": "allowed_tools"}), Value::Null).is_err());
        assert!(choice(Value::Null, json!("no")).is_err());
    }

    #[test]
    fn tool_calls_become_tool_use_blocks_with_their_arguments_as_written() {
        let blocks = tool_uses(
            &json!([
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"a\": 1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ]),
            1,
        )
        .unwrap();
        assert_eq!(
            to_json(&blocks),
            r#"[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city": "Paris", "a": 1}},{"type":"tool_use","id":"call_2","name":"now","input":{}}]"#
        );
        for bad in [
            json!([{"id": "c", "function": {"name": "f", "arguments": "{not json"}}]),
            json!([{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]),
            json!([{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]),
            json!([{"function": {"name": "f", "arguments": "{}"}}]),
            json!([{"id": "c", "type": "custom", "function": {"name": "f", "arguments": "{}"}}]),
            json!("x"),
        ] {
            let err = tool_uses(&bad, 1).unwrap_err();
            assert_eq!((err.status, err.param), (400, Some("messages")), "{bad}");
        }
    }
}
