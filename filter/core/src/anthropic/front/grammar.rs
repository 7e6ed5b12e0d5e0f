//! For the tests: a checker of Anthropic's stream grammar, and the message a client SDK would
//! accumulate from a stream that passes it.
//!
//! Each event is `event: NAME\ndata: JSON\n\n` with the data's `type` equal to NAME. A stream
//! is one `error` event alone, or `message_start` (its message empty), then content blocks one
//! after another (`content_block_start` with the next `index`, deltas of the block's kind for
//! that index, `content_block_stop`), `ping`s anywhere after the start, and at the end either
//! `message_delta` then `message_stop`, or an `error`, with no block open.

use serde_json::{json, Value};

/// How a checked stream ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// `message_stop`: the message accumulated.
    Message(Value),
    /// An `error` event: its `error` object.
    Error(Value),
}

/// Checks `stream` against the grammar; `Err` says what broke it.
pub fn check(stream: &[u8]) -> Result<End, String> {
    let text = std::str::from_utf8(stream).map_err(|e| format!("not UTF-8: {e}"))?;
    let body = text
        .strip_suffix("\n\n")
        .ok_or_else(|| "the stream does not end with a blank line".to_string())?;
    let mut events = Vec::new();
    for raw in body.split("\n\n") {
        let (name, data) = raw
            .strip_prefix("event: ")
            .and_then(|r| r.split_once("\ndata: "))
            .ok_or_else(|| format!("not `event:` then `data:`: {raw:?}"))?;
        let data: Value =
            serde_json::from_str(data).map_err(|e| format!("data is not JSON ({e}): {data}"))?;
        if data["type"] != name {
            return Err(format!("event `{name}` has data of type {}", data["type"]));
        }
        events.push((name.to_string(), data));
    }
    let mut events = events.into_iter();
    let (first, start) = events.next().ok_or("no events")?;
    let mut events = events.filter(|(n, _)| n != "ping");
    if first == "error" {
        return match events.next() {
            None => Ok(End::Error(start["error"].clone())),
            Some((n, _)) => Err(format!("`{n}` after an error")),
        };
    }
    if first != "message_start" {
        return Err(format!("the first event is `{first}`"));
    }
    let mut message = start["message"].clone();
    if message["content"] != json!([]) || !message["stop_reason"].is_null() {
        return Err(format!("message_start's message is not empty: {message}"));
    }
    if !message["id"]
        .as_str()
        .is_some_and(|i| i.starts_with("msg_"))
        || message["type"] != "message"
        || message["role"] != "assistant"
        || !message["usage"]["input_tokens"].is_u64()
    {
        return Err(format!("message_start's message is malformed: {message}"));
    }
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_text: Vec<String> = Vec::new();
    let mut open: Option<usize> = None;
    let mut delta_seen = false;
    for (name, data) in events.by_ref() {
        let index = data["index"].as_u64().map(|i| i as usize);
        match (name.as_str(), open) {
            ("content_block_start", None) => {
                if index != Some(blocks.len()) {
                    return Err(format!("block {index:?} starts, {} expected", blocks.len()));
                }
                let block = data["content_block"].clone();
                let empty = match block["type"].as_str() {
                    Some("text") => block["text"] == "",
                    Some("thinking") => block["thinking"] == "" && block["signature"].is_string(),
                    Some("tool_use") => {
                        block["input"] == json!({})
                            && block["id"].is_string()
                            && block["name"].is_string()
                    }
                    _ => false,
                };
                if !empty {
                    return Err(format!(
                        "a block starts not empty or of no known type: {block}"
                    ));
                }
                open = Some(blocks.len());
                blocks.push(block);
                json_text.push(String::new());
            }
            ("content_block_delta", Some(i)) if index == Some(i) => {
                let (kind, delta) = (blocks[i]["type"].clone(), &data["delta"]);
                match (kind.as_str(), delta["type"].as_str()) {
                    (Some("text"), Some("text_delta")) => {
                        let t = blocks[i]["text"].as_str().unwrap().to_string();
                        blocks[i]["text"] = json!(t + delta["text"].as_str().ok_or("text")?);
                    }
                    (Some("thinking"), Some("thinking_delta")) => {
                        let t = blocks[i]["thinking"].as_str().unwrap().to_string();
                        blocks[i]["thinking"] =
                            json!(t + delta["thinking"].as_str().ok_or("thinking")?);
                    }
                    (Some("thinking"), Some("signature_delta")) => {
                        blocks[i]["signature"] = delta["signature"].clone();
                    }
                    (Some("tool_use"), Some("input_json_delta")) => {
                        json_text[i].push_str(delta["partial_json"].as_str().ok_or("partial_json")?)
                    }
                    _ => return Err(format!("a {kind} block gets a delta {delta}")),
                }
            }
            ("content_block_stop", Some(i)) if index == Some(i) => open = None,
            ("message_delta", None) => {
                if !data["delta"]["stop_reason"].is_string()
                    || !data["usage"]["output_tokens"].is_u64()
                {
                    return Err(format!("message_delta is malformed: {data}"));
                }
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                for (k, v) in data["usage"].as_object().unwrap() {
                    message["usage"][k] = v.clone();
                }
                delta_seen = true;
                break;
            }
            ("error", None) => {
                return match events.next() {
                    None => Ok(End::Error(data["error"].clone())),
                    Some((n, _)) => Err(format!("`{n}` after an error")),
                }
            }
            (name, open) => return Err(format!("`{name}` with block {open:?} open: {data}")),
        }
    }
    if !delta_seen {
        return Err("the stream ends without message_delta or error".into());
    }
    match (events.next(), events.next()) {
        (Some((n, _)), None) if n == "message_stop" => {}
        other => {
            return Err(format!(
                "message_delta is not followed by message_stop alone: {other:?}"
            ))
        }
    }
    for (block, text) in blocks.iter_mut().zip(json_text) {
        if block["type"] == "tool_use" {
            let input: Value = if text.is_empty() {
                json!({})
            } else {
                serde_json::from_str(&text).map_err(|e| format!("tool input {text:?}: {e}"))?
            };
            if !input.is_object() {
                return Err(format!("tool input is no object: {text}"));
            }
            block["input"] = input;
        }
    }
    message["content"] = Value::Array(blocks);
    Ok(End::Message(message))
}

#[test]
fn the_checker_refuses_broken_streams() {
    let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1}}}\n\n";
    let stop = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let open = |i: u32| {
        format!("event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n")
    };
    let close = |i: u32| {
        format!("event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{i}}}\n\n")
    };
    assert!(check(format!("{start}{}{}{stop}", open(0), close(0)).as_bytes()).is_ok());
    for broken in [
        format!("{start}{}{stop}", open(0)),
        format!("{start}{}{}{stop}", open(1), close(1)),
        format!("{start}{}{}{}{stop}", open(0), open(1), close(1)),
        format!("{start}{}", open(0)),
        stop.to_string(),
        format!("{start}{stop}{stop}"),
        format!("{start}{stop}").replace("event: message_stop", "event: message_end"),
        start.to_string(),
        format!("event: ping\ndata: {{\"type\":\"ping\"}}\n\n{start}{stop}"),
    ] {
        assert!(check(broken.as_bytes()).is_err(), "{broken}");
    }
}
