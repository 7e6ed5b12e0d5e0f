//! A Messages request's `tools` and `tool_choice` made into chat's: custom tools become
//! functions, server tools are refused by name; the choice maps one to one, and
//! `disable_parallel_tool_use` becomes `parallel_tool_calls: false`.

use serde::Serialize;
use serde_json::Value;

use super::FrontError;

/// A chat tool: `{"type":"function","function":{...}}`.
#[derive(Serialize, Debug)]
pub(super) struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDef<'a>,
}

/// A function a chat model may call; `parameters` is the tool's `input_schema`.
#[derive(Serialize, Debug)]
struct FunctionDef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

/// Chat's `tool_choice`: a mode, or one function.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub(super) enum ToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

/// `{"name": ...}`.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub(super) struct Named<'a> {
    name: &'a str,
}

/// `tools`, each a custom tool (`type` absent or `custom`); a server tool is refused naming
/// its type.
pub(super) fn tools(value: Option<&Value>) -> Result<Option<Vec<ChatTool<'_>>>, FrontError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(FrontError::invalid("tools: must be a list of tools")),
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| tool(i, t))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn tool(i: usize, t: &Value) -> Result<ChatTool<'_>, FrontError> {
    match t.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "custom" => {}
        Some(Value::String(s)) => {
            return Err(FrontError::invalid(format!(
                "tools.{i}: the server tool `{s}` is not available through this router (it serves custom tools only)"
            )))
        }
        Some(_) => return Err(FrontError::invalid(format!("tools.{i}.type: must be a string"))),
    }
    let Some(name) = t.get("name").and_then(Value::as_str) else {
        return Err(FrontError::invalid(format!(
            "tools.{i}.name: Field required"
        )));
    };
    let parameters = match t.get("input_schema") {
        Some(schema @ Value::Object(_)) => schema,
        Some(_) => {
            return Err(FrontError::invalid(format!(
                "tools.{i}.input_schema: must be an object"
            )))
        }
        None => {
            return Err(FrontError::invalid(format!(
                "tools.{i}.input_schema: Field required"
            )))
        }
    };
    let description = match t.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.as_str()),
        Some(_) => {
            return Err(FrontError::invalid(format!(
                "tools.{i}.description: must be a string"
            )))
        }
    };
    Ok(ChatTool {
        kind: "function",
        function: FunctionDef {
            name,
            description,
            parameters,
        },
    })
}

/// `tool_choice` as chat's `tool_choice`, and `parallel_tool_calls: false` when it disables
/// parallel tool use.
pub(super) fn tool_choice(
    value: Option<&Value>,
) -> Result<(Option<ToolChoice<'_>>, Option<bool>), FrontError> {
    let choice = match value {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(c @ Value::Object(_)) => c,
        Some(_) => return Err(FrontError::invalid("tool_choice: must be an object")),
    };
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Mode("auto"),
        Some("any") => ToolChoice::Mode("required"),
        Some("none") => ToolChoice::Mode("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Function {
                kind: "function",
                function: Named { name },
            },
            None => return Err(FrontError::invalid("tool_choice.name: Field required")),
        },
        Some(other) => {
            return Err(FrontError::invalid(format!(
                "tool_choice.type: `{other}` is not one of `auto`, `any`, `tool`, `none`"
            )))
        }
        None => return Err(FrontError::invalid("tool_choice.type: Field required")),
    };
    let parallel = match choice.get("disable_parallel_tool_use") {
        None | Some(Value::Null | Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(false),
        Some(_) => {
            return Err(FrontError::invalid(
                "tool_choice.disable_parallel_tool_use: must be a boolean",
            ))
        }
    };
    Ok((Some(mapped), parallel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_tools_become_functions() {
        let v = json!([
            {"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}},"cache_control":{"type":"ephemeral"}},
            {"type":"custom","name":"now","input_schema":{"type":"object"}}
        ]);
        let out = serde_json::to_value(tools(Some(&v)).unwrap()).unwrap();
        assert_eq!(
            out,
            json!([
                {"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                {"type":"function","function":{"name":"now","parameters":{"type":"object"}}}
            ])
        );
        assert!(tools(None).unwrap().is_none());
    }

    #[test]
    fn server_tools_and_bad_tools_are_refused_by_name() {
        let e = tools(Some(
            &json!([{"type":"web_search_20250305","name":"web_search"}]),
        ))
        .unwrap_err();
        assert!(e.message.contains("`web_search_20250305`"), "{}", e.message);
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        for (v, field) in [
            (json!([{"input_schema":{}}]), "tools.0.name"),
            (json!([{"name":"f"}]), "tools.0.input_schema"),
            (
                json!([{"name":"f","input_schema":"x"}]),
                "tools.0.input_schema",
            ),
            (
                json!([{"name":"f","input_schema":{},"description":1}]),
                "tools.0.description",
            ),
            (json!({"name":"f"}), "tools:"),
        ] {
            let e = tools(Some(&v)).unwrap_err();
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }

    #[test]
    fn choices_map_one_to_one() {
        let map = |v: Value| {
            let (c, p) = tool_choice(Some(&v)).unwrap();
            (serde_json::to_value(c).unwrap(), p)
        };
        assert_eq!(map(json!({"type":"auto"})), (json!("auto"), None));
        assert_eq!(map(json!({"type":"any"})), (json!("required"), None));
        assert_eq!(map(json!({"type":"none"})), (json!("none"), None));
        assert_eq!(
            map(json!({"type":"tool","name":"f","disable_parallel_tool_use":true})),
            (
                json!({"type":"function","function":{"name":"f"}}),
                Some(false)
            )
        );
        assert_eq!(
            map(json!({"type":"auto","disable_parallel_tool_use":false})),
            (json!("auto"), None)
        );
        for bad in [
            json!({"type":"tool"}),
            json!({"type":"sometimes"}),
            json!({}),
            json!("auto"),
            json!({"type":"any","disable_parallel_tool_use":"yes"}),
        ] {
            assert!(tool_choice(Some(&bad)).is_err(), "{bad}");
        }
    }
}
