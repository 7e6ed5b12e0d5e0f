//! The stream's edges: empty and odd streams, limits, ignored events, and random damage: every
//! output passes Anthropic's grammar.

use super::super::grammar::{check, End};
use super::*;

fn run(model: &str, chunks: &[&[u8]]) -> (String, End) {
    let mut s = EventStream::new(model, 7);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.feed(c));
    }
    out.extend(s.finish());
    let end = check(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    (String::from_utf8(out).unwrap(), end)
}

#[test]
fn an_empty_stream_is_an_error_alone() {
    let (text, end) = run("m", &[]);
    assert!(text.starts_with("event: error\n"), "{text}");
    assert!(matches!(end, End::Error(e) if e["type"] == "api_error"));
    let (text, end) = run("m", &[b": keep-alive\n\n"]);
    assert!(matches!(end, End::Error(_)));
    assert!(
        !text.contains("ping"),
        "no ping before message_start: {text}"
    );
}

#[test]
fn done_alone_is_an_empty_message() {
    let (_, end) = run("my-claude", &[b"data: [DONE]\n\n"]);
    let End::Message(m) = end else { panic!() };
    assert_eq!(m["content"], serde_json::json!([]));
    assert_eq!(m["model"], "my-claude");
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["input_tokens"], 7);
    assert_eq!(m["usage"]["output_tokens"], 0);
}

#[test]
fn the_model_is_the_client_name_and_other_choices_are_skipped() {
    let (text, end) = run(
        "client-name",
        &[
            b"data: {\"id\":\"x\",\"model\":\"backend-secret\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}},{\"index\":0,\"delta\":{\"content\":\"mine\"}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"},{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            b"data: not json\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"after the finish\"}}]}\n\n",
            b"data: [DONE]\n\n",
        ],
    );
    assert!(!text.contains("backend-secret"), "{text}");
    let End::Message(m) = end else { panic!() };
    assert_eq!(
        m["content"],
        serde_json::json!([{"type":"text","text":"mine"}])
    );
    assert_eq!(m["model"], "client-name");
    assert_eq!(m["stop_reason"], "end_turn");
}

#[test]
fn nothing_follows_the_end() {
    let mut s = EventStream::new("m", 1);
    let out = s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n");
    assert!(String::from_utf8(out)
        .unwrap()
        .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    assert!(s
        .feed(b"data: {\"error\":{\"message\":\"late\"}}\n\n")
        .is_empty());
    assert!(s.feed(b"data: [DONE]\n\n").is_empty());
    assert!(s.finish().is_empty());
}

#[test]
fn an_event_over_the_limit_ends_the_stream() {
    let mut s = EventStream::new("m", 1);
    let mut out = s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: \"");
    let big = vec![b'x'; 1024 * 1024];
    for _ in 0..=crate::sse::MAX_EVENT_BYTES / big.len() {
        out.extend(s.feed(&big));
    }
    out.extend(s.feed(b"\"\n\ndata: [DONE]\n\n"));
    out.extend(s.finish());
    let End::Error(e) = check(&out).unwrap() else {
        panic!()
    };
    assert!(e["message"].as_str().unwrap().contains("16 MiB"));
}

#[test]
fn held_tool_calls_over_the_limit_end_the_stream() {
    let mut s = EventStream::new("m", 1);
    let mut out = s.feed(b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n");
    let piece = "x".repeat(1024 * 1024);
    let event = format!("data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":1,\"function\":{{\"arguments\":\"{piece}\"}}}}]}}}}]}}\n\n");
    for _ in 0..=super::super::blocks::MAX_HELD_BYTES / piece.len() {
        out.extend(s.feed(event.as_bytes()));
    }
    out.extend(s.finish());
    let End::Error(e) = check(&out).unwrap() else {
        panic!()
    };
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("tool calls outgrew"),
        "{e}"
    );
    assert!(out.len() < 4096, "held bytes were written: {}", out.len());
}

#[test]
fn tool_call_ids_without_index_are_bounded() {
    let mut s = EventStream::new("m", 1);
    let mut out = Vec::new();
    for i in 0..MAX_TOOL_IDS + 10 {
        let e = format!("data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"id\":\"c{i}\",\"function\":{{\"name\":\"f\",\"arguments\":\"{{}}\"}}}}]}}}}]}}\n\n");
        out.extend(s.feed(e.as_bytes()));
    }
    assert_eq!(s.state.tool_ids.len(), MAX_TOOL_IDS);
    out.extend(s.feed(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n"));
    let End::Message(m) = check(&out).unwrap() else {
        panic!()
    };
    assert_eq!(m["content"].as_array().unwrap().len(), MAX_TOOL_IDS + 10);
    assert_eq!(m["stop_reason"], "tool_use");
}

/// The golden streams damaged at random (bytes changed, cut, repeated) and fed in random
/// pieces: whatever comes in, what goes out is a well-formed Anthropic stream.
#[test]
fn damaged_streams_still_end_well_formed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic/front");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "sse") && !p.to_string_lossy().contains(".expected.")
        })
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(inputs.len() >= 10);
    inputs.sort();
    let mut rng = crate::test_json::Rng::new(29);
    for round in 0..400 {
        let mut bytes = inputs[round % inputs.len()].clone();
        match rng.next(4) {
            0 => {
                for _ in 0..1 + rng.next(6) {
                    let at = rng.next(bytes.len() as u64) as usize;
                    let noise = b"{}[]\":,\n\\x0";
                    bytes[at] = noise[rng.next(noise.len() as u64) as usize];
                }
            }
            1 => bytes.truncate(rng.next(bytes.len() as u64) as usize),
            2 => {
                let other = &inputs[rng.next(inputs.len() as u64) as usize];
                let at = rng.next(other.len() as u64) as usize;
                bytes.extend_from_slice(&other[at..]);
            }
            _ => {
                let at = rng.next(bytes.len() as u64) as usize;
                let len = rng.next(200) as usize;
                bytes.drain(at..(at + len).min(bytes.len()));
            }
        }
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (a, b) = rest.split_at((1 + rng.next(64) as usize).min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        run("m", &chunks);
    }
}

#[test]
fn tool_arguments_that_make_no_object_fail_the_answer() {
    let (_, end) = run(
        "m",
        &[
            b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n",
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
        ],
    );
    let End::Error(e) = end else {
        panic!("{end:?}")
    };
    assert!(
        e["message"].as_str().unwrap().contains("`get_weather`"),
        "{e}"
    );
}
