//! The chunk stream's rules one by one: the role first, tool-call indexes, arguments of tools
//! that stream none, the end (`[DONE]`, an error, an overlong event, a stream cut short), and
//! any bytes fed without a panic.

use serde_json::Value;

use super::*;
use crate::anthropic::backend::golden_tests::{assemble, Assembled, CREATED};
use crate::sse::MAX_EVENT_BYTES;
use crate::test_json::Rng;

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
const STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn run(input: &str) -> (String, Assembled) {
    let mut s = ChunkStream::new(CREATED);
    let mut out = s.feed(input.as_bytes());
    out.extend(s.finish());
    let a = assemble(&out);
    (String::from_utf8(out).unwrap(), a)
}

fn event(data: &str) -> String {
    format!("data: {data}\n\n")
}

#[test]
fn the_first_chunk_carries_the_role_and_the_message_id() {
    let (out, a) = run(&format!("{START}{STOP}"));
    assert!(out.starts_with(
        "data: {\"id\":\"chatcmpl-msg_1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    ), "{out}");
    assert_eq!(a.finish.as_deref(), Some("stop"));
    assert!(a.done);
    assert_eq!(a.usage.unwrap()["total_tokens"], 4);
}

#[test]
fn a_stream_without_message_start_still_starts_with_the_role() {
    let (_, a) = run(&event(
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
    ));
    assert_eq!(a.content, "hi");
    assert!(!a.done && a.usage.is_none());
}

#[test]
fn tool_indexes_count_tool_calls_and_silent_tools_get_their_start_input() {
    let input = [
        START.to_string(),
        event(r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"hm"}}"#),
        event(r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"a","input":{"k": [1]}}}"#),
        event(r#"{"type":"content_block_stop","index":1}"#),
        event(r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t2","name":"b","input":{}}}"#),
        event(r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"x\":"}}"#),
        event(r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#),
        event(r#"{"type":"content_block_stop","index":2}"#),
        event(r#"{"type":"content_block_stop","index":2}"#),
        event(r#"{"type":"content_block_delta","index":9,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#),
        event(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#),
        event(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#),
        STOP.to_string(),
    ]
    .concat();
    let (_, a) = run(&input);
    assert_eq!(a.reasoning, "hm");
    assert_eq!(
        a.tools,
        [
            ("t1".into(), "a".into(), r#"{"k": [1]}"#.into()),
            ("t2".into(), "b".into(), r#"{"x":1}"#.into())
        ]
    );
    assert_eq!(a.finish.as_deref(), Some("tool_calls"));
    assert_eq!(a.usage.unwrap()["completion_tokens"], 30);
}

#[test]
fn an_error_event_ends_the_stream_without_done() {
    let input = format!(
        "{START}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"Internal server error\"}}}}\n\n{STOP}"
    );
    let (out, a) = run(&input);
    assert!(out.ends_with("data: {\"error\":{\"message\":\"Internal server error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"), "{out}");
    assert!(!a.done && a.finish.is_none());
    // An error event that is not in Anthropic's shape still ends it, with a generic error.
    let (_, a) = run(&format!(
        "{START}{}{STOP}",
        event(r#"{"type":"error","error":"boom"}"#)
    ));
    assert_eq!(a.error.unwrap()["type"], "server_error");
    assert!(!a.done);
}

#[test]
fn nothing_follows_the_end_and_finish_adds_nothing_to_a_stream_cut_short() {
    let mut s = ChunkStream::new(CREATED);
    let out = s.feed(format!("{START}{STOP}").as_bytes());
    assert!(String::from_utf8(out)
        .unwrap()
        .ends_with("data: [DONE]\n\n"));
    assert!(s.feed(START.as_bytes()).is_empty());
    assert!(s.finish().is_empty());
    // Cut short: what came is translated, and finish() writes no ending of its own.
    let mut s = ChunkStream::new(CREATED);
    let text = event(
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"par"}}"#,
    );
    let mut out = s.feed(format!("{START}{text}data: {{\"type\":\"content_blo").as_bytes());
    assert!(s.finish().is_empty());
    let a = assemble(&out);
    assert_eq!((a.content.as_str(), a.done, a.finish), ("par", false, None));
    // A last event without its blank line is still read.
    let mut s = ChunkStream::new(CREATED);
    out = s.feed(START.as_bytes());
    out.extend(s.feed(b"data: {\"type\":\"message_stop\"}"));
    out.extend(s.finish());
    assert!(assemble(&out).done);
}

#[test]
fn ping_unknown_and_malformed_events_write_nothing() {
    let mut s = ChunkStream::new(CREATED);
    assert!(s
        .feed(b"event: ping\ndata: {\"type\": \"ping\"}\n\n")
        .is_empty());
    assert!(!s.feed(START.as_bytes()).is_empty());
    for input in [
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: new_thing\ndata: {\"type\":\"new_thing\"}\n\n",
        ": comment\n\n",
        "data: not json\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":\"x\"}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"abc\"}}\n\n",
        "data: [1,2]\n\n",
    ] {
        assert!(s.feed(input.as_bytes()).is_empty(), "{input}");
    }
    assert_eq!(s.usage().map(|u| u.total_tokens()), Some(4));
}

#[test]
fn an_event_over_the_limit_ends_the_stream_like_the_sse_rewriter() {
    let mut s = ChunkStream::new(CREATED);
    let mut out = s.feed(START.as_bytes());
    out.extend(s.feed(b"data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\""));
    let big = vec![b'x'; 1024 * 1024];
    for _ in 0..MAX_EVENT_BYTES / big.len() + 1 {
        out.extend(s.feed(&big));
    }
    out.extend(s.feed(b"\"}}\n\n"));
    out.extend(s.feed(STOP.as_bytes()));
    out.extend(s.finish());
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("xxx"));
    assert!(
        text.ends_with("\"code\":\"stream_event_too_large\"}}\n\ndata: [DONE]\n\n"),
        "{text}"
    );
    assert_eq!(text.matches("[DONE]").count(), 1);
}

/// Random bytes, and a valid stream with bytes changed, fed in random chunks: no panic, and
/// the output is well-formed SSE of JSON chunks.
#[test]
fn any_bytes_give_well_formed_chunks() {
    let valid = [
        START.to_string(),
        event(r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#),
        event(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":\"\u00e9\"}"}}"#),
        event(r#"{"type":"content_block_stop","index":0}"#),
        event(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}}"#),
        STOP.to_string(),
    ]
    .concat()
    .into_bytes();
    let mut rng = Rng::new(0x5eed);
    const BYTES: &[u8] = b"{}[]\":,\\\n\r xa0\xc3\xff";
    for round in 0..2000 {
        let mut input = valid.clone();
        if round % 4 == 0 {
            input = (0..rng.next(300))
                .map(|_| BYTES[rng.next(BYTES.len() as u64) as usize])
                .collect();
        } else {
            for _ in 0..1 + rng.next(4) {
                let at = rng.next(input.len() as u64) as usize;
                input[at] = BYTES[rng.next(BYTES.len() as u64) as usize];
            }
        }
        let mut s = ChunkStream::new(CREATED);
        let mut out = Vec::new();
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let (a, b) = rest.split_at((1 + rng.next(40) as usize).min(rest.len()));
            out.extend(s.feed(a));
            rest = b;
        }
        out.extend(s.finish());
        // Well-formed, except that a changed byte may leave a tool's arguments invalid JSON.
        let text = String::from_utf8(out).unwrap();
        for event in text.split_terminator("\n\n") {
            let data = event.strip_prefix("data: ").unwrap();
            assert!(
                data == "[DONE]" || serde_json::from_str::<Value>(data).is_ok(),
                "{data}"
            );
        }
    }
}
