//! Messages and system prompts made into chat messages, and the blocks refused by name.

use super::*;
use serde_json::json;

fn chat(messages: Value) -> Result<Value, FrontError> {
    let mut out = Vec::new();
    super::messages(Some(&messages), &mut out)?;
    Ok(serde_json::to_value(&out).unwrap())
}

fn refused(messages: Value) -> String {
    chat(messages).unwrap_err().message
}

#[test]
fn strings_and_text_blocks() {
    let out = chat(json!([
        {"role":"user","content":"Hi"},
        {"role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"text","text":"there","citations":[]}]},
        {"role":"user","content":[{"type":"text","text":"<reminder/>","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Go on"}]}
    ]))
    .unwrap();
    assert_eq!(
        out,
        json!([
            {"role":"user","content":"Hi"},
            {"role":"assistant","content":"Hello\nthere"},
            {"role":"user","content":"<reminder/>\nGo on"}
        ])
    );
}

#[test]
fn images_make_parts() {
    let out = chat(json!([{"role":"user","content":[
        {"type":"text","text":"What is this?"},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}},
        {"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}}
    ]}]))
    .unwrap();
    assert_eq!(
        out,
        json!([{"role":"user","content":[
            {"type":"text","text":"What is this?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}},
            {"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}
        ]}])
    );
}

#[test]
fn tool_use_and_tool_results() {
    let out = chat(json!([
        {"role":"user","content":"Weather in Paris and Rome?"},
        {"role":"assistant","content":[
            {"type":"thinking","thinking":"two calls","signature":"sig"},
            {"type":"redacted_thinking","data":"xyz"},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
            {"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Rome"}}
        ]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_1","content":"18 C"},
            {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"city"},{"type":"text","text":"not found"}],"is_error":true},
            {"type":"text","text":"Thanks"}
        ]}
    ]))
    .unwrap();
    assert_eq!(
        out,
        json!([
            {"role":"user","content":"Weather in Paris and Rome?"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"toolu_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}
            ]},
            {"role":"tool","tool_call_id":"toolu_1","content":"18 C"},
            {"role":"tool","tool_call_id":"toolu_2","content":"Error: city\nnot found"},
            {"role":"user","content":"Thanks"}
        ])
    );
}

#[test]
fn a_tool_result_alone_is_only_a_tool_message_and_thinking_alone_an_empty_turn() {
    let out = chat(json!([
        {"role":"user","content":"x"},
        {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"a"},{"type":"tool_result","tool_use_id":"b","is_error":true}]}
    ]))
    .unwrap();
    assert_eq!(
        out,
        json!([
            {"role":"user","content":"x"},
            {"role":"assistant","content":""},
            {"role":"tool","tool_call_id":"a","content":""},
            {"role":"tool","tool_call_id":"b","content":"Error"}
        ])
    );
}

#[test]
fn blocks_chat_cannot_carry_are_refused_by_name() {
    let user = |block: Value| json!([{"role":"user","content":[block]}]);
    let cases = [
        (
            user(
                json!({"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}),
            ),
            "messages.0.content.0: content blocks of type `document`",
        ),
        (
            user(json!({"type":"search_result","source":"s","title":"t","content":[]})),
            "`search_result`",
        ),
        (
            user(json!({"type":"thinking","thinking":"x"})),
            "`thinking`",
        ),
        (
            user(json!({"type":"tool_use","id":"a","name":"f","input":{}})),
            "`tool_use`",
        ),
        (
            user(json!({"type":"image","source":{"type":"file","file_id":"file_1"}})),
            "messages.0.content.0.source: image sources of type `file`",
        ),
        (
            user(json!({"type":"image","source":{"type":"base64","data":"x"}})),
            "needs `media_type` and `data`",
        ),
        (
            user(
                json!({"type":"tool_result","tool_use_id":"a","content":[{"type":"image","source":{}}]}),
            ),
            "messages.0.content.0.content.0: tool results with `image` blocks",
        ),
        (
            user(json!({"type":"tool_result","content":"x"})),
            "messages.0.content.0.tool_use_id: Field required",
        ),
        (
            user(json!({"type":"tool_result","tool_use_id":"a","is_error":"yes"})),
            "is_error: must be a boolean",
        ),
        (
            user(json!({"text":"no type"})),
            "messages.0.content.0.type: Field required",
        ),
        (
            user(json!({"type":"text","text":5})),
            "messages.0.content.0.text: must be a string",
        ),
        (
            json!([{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]},{"role":"user","content":"b"}]),
            "messages.1.content.0: content blocks of type `server_tool_use`",
        ),
        (
            json!([{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"s","name":"f","input":[1]}]},{"role":"user","content":"b"}]),
            "messages.1.content.0.input: must be an object",
        ),
        (
            json!([{"role":"user","content":"a"},{"role":"assistant","content":"{"}]),
            "messages.1: a final assistant message (a prefill",
        ),
        (
            json!([{"role":"system","content":"a"}]),
            "messages.0.role: must be `user` or `assistant`",
        ),
        (
            json!([{"role":"user","content":[]}]),
            "messages.0.content: must not be empty",
        ),
        (
            json!([{"role":"user","content":7}]),
            "messages.0.content: must be a string or a list",
        ),
        (
            json!([{"role":"user"}]),
            "messages.0.content: must be a string or a list",
        ),
        (json!([]), "messages: at least one message is required"),
        (json!({"role":"user"}), "messages: must be a list"),
    ];
    for (messages, want) in cases {
        let got = refused(messages.clone());
        assert!(got.contains(want), "{messages}: {got}");
    }
    let e = super::messages(None, &mut Vec::new()).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (400, "messages: Field required")
    );
}

#[test]
fn system_prompts() {
    let sys = |v: Value| serde_json::to_value(system(Some(&v)).unwrap()).unwrap();
    assert_eq!(
        sys(json!("Be brief.")),
        json!({"role":"system","content":"Be brief."})
    );
    assert_eq!(
        sys(
            json!([{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}])
        ),
        json!({"role":"system","content":"A\nB"})
    );
    assert!(system(None).unwrap().is_none());
    assert!(system(Some(&json!(""))).unwrap().is_none());
    assert!(system(Some(&json!([]))).unwrap().is_none());
    assert!(system(Some(&Value::Null)).unwrap().is_none());
    assert!(system(Some(&json!([{"type":"image"}])))
        .unwrap_err()
        .message
        .contains("system.0: content blocks of type `image`"));
    assert!(system(Some(&json!(3))).is_err());
}
