//! Golden translations of recorded-shape Anthropic answers (`testdata/anthropic/backend/`):
//! streams (also cut at every byte and fed a byte at a time), JSON answers and error bodies,
//! each against what the OpenAI client must get; streams also read back as an OpenAI client
//! would, to check they are well-formed.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::*;

/// The `created` every golden output carries.
pub(super) const CREATED: u64 = 1_700_000_000;

/// One case of `cases.toml`.
#[derive(serde::Deserialize)]
struct Case {
    kind: String,
    file: String,
    /// A stream's usage: prompt, completion, cached, cache writes.
    usage: Option<[u64; 4]>,
    status: Option<u16>,
    expected_status: Option<u16>,
}

/// A chunk stream read back as an OpenAI client reads it.
#[derive(Debug, Default)]
pub(super) struct Assembled {
    pub content: String,
    pub reasoning: String,
    /// Each tool call's id, name and arguments, by index.
    pub tools: Vec<(String, String, String)>,
    pub finish: Option<String>,
    pub usage: Option<Value>,
    pub error: Option<Value>,
    pub done: bool,
}

/// Reads `sse` (what a [`ChunkStream`] wrote) as OpenAI's client would, asserting it is
/// well-formed: `data:` events only, JSON or `[DONE]`; the role first; one id, model and
/// object throughout; tool calls opened in index order before their arguments; nothing after
/// `[DONE]` or an error; the arguments JSON once done.
pub(super) fn assemble(sse: &[u8]) -> Assembled {
    let text = std::str::from_utf8(sse).unwrap();
    let mut a = Assembled::default();
    let mut head: Option<(Value, Value)> = None;
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text}");
    for event in text.split_terminator("\n\n") {
        assert!(
            !a.done && a.error.is_none(),
            "an event after the end: {event}"
        );
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{event}"));
        assert!(!data.contains('\n'), "{event}");
        if data == "[DONE]" {
            a.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(err) = chunk.get("error") {
            a.error = Some(err.clone());
            continue;
        }
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["created"], CREATED);
        let this = (chunk["id"].clone(), chunk["model"].clone());
        let first = head.is_none();
        assert_eq!(head.get_or_insert(this.clone()), &this);
        let choices = chunk["choices"].as_array().unwrap();
        if choices.is_empty() {
            assert!(a.usage.is_none());
            a.usage = Some(chunk["usage"].clone());
            continue;
        }
        assert_eq!(choices.len(), 1);
        assert!(a.usage.is_none(), "a choice after the usage chunk");
        let delta = &choices[0]["delta"];
        assert_eq!(
            delta.get("role").is_some(),
            first,
            "the role comes first, once: {data}"
        );
        a.content += delta["content"].as_str().unwrap_or("");
        a.reasoning += delta["reasoning_content"].as_str().unwrap_or("");
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            let args = call["function"]["arguments"].as_str().unwrap();
            if let Some(id) = call.get("id") {
                assert_eq!(index, a.tools.len(), "tool calls open in order");
                assert_eq!(call["type"], "function");
                let name = call["function"]["name"].as_str().unwrap().to_string();
                a.tools
                    .push((id.as_str().unwrap().to_string(), name, args.to_string()));
            } else {
                a.tools[index].2 += args;
            }
        }
        if let Some(reason) = choices[0]["finish_reason"].as_str() {
            assert!(a.finish.is_none(), "one finish_reason");
            a.finish = Some(reason.to_string());
        }
    }
    if a.done {
        for (_, _, args) in &a.tools {
            let args: Value = serde_json::from_str(args).unwrap();
            assert!(args.is_object());
        }
    }
    a
}

/// `input` through a fresh [`ChunkStream`] in `chunks`: what the client gets, and the usage.
fn run_stream(chunks: &[&[u8]]) -> (Vec<u8>, Option<Usage>) {
    let mut s = ChunkStream::new(CREATED);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.feed(c));
    }
    out.extend(s.finish());
    (out, s.usage())
}

#[test]
fn golden_anthropic_backend() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic/backend");
    let cases: BTreeMap<String, Case> =
        toml::from_str(&std::fs::read_to_string(dir.join("cases.toml")).unwrap()).unwrap();
    assert!(cases.len() >= 10);
    let bless = std::env::var_os("AIROUTER_BLESS").is_some();
    for (name, case) in cases {
        let input = std::fs::read(dir.join(&case.file)).unwrap();
        let (out, ext) = match case.kind.as_str() {
            "stream" => {
                let (out, usage) = run_stream(&[&input]);
                for cut in 0..=input.len() {
                    let (a, b) = input.split_at(cut);
                    assert_eq!(
                        run_stream(&[a, b]),
                        (out.clone(), usage),
                        "{name} cut at {cut}"
                    );
                }
                let bytes: Vec<&[u8]> = input.chunks(1).collect();
                assert_eq!(
                    run_stream(&bytes),
                    (out.clone(), usage),
                    "{name} byte by byte"
                );
                let usage = usage.map(|u| {
                    [
                        u.prompt_tokens,
                        u.completion_tokens,
                        u.cached_tokens,
                        u.cache_creation_tokens,
                    ]
                });
                assert_eq!(usage, case.usage, "{name}");
                assemble(&out);
                (out, "sse")
            }
            "message" => (chat_completion(&input, CREATED).unwrap(), "json"),
            "error" => {
                let (status, out) = openai_error(case.status.unwrap(), &input);
                assert_eq!(Some(status), case.expected_status, "{name}");
                (out, "json")
            }
            other => panic!("{name}: unknown kind {other}"),
        };
        let stem = case.file.rsplit_once('.').unwrap().0;
        let expected_path = dir.join(format!("{stem}.expected.{ext}"));
        let out = String::from_utf8(out).unwrap();
        if bless {
            std::fs::write(&expected_path, &out).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{name}: no {}", expected_path.display()));
        assert_eq!(out, expected, "{name}");
    }
}

/// What the goldens say, read as a client reads them.
#[test]
fn golden_streams_say_what_their_backend_said() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic/backend");
    let read = |file: &str| assemble(&run_stream(&[&std::fs::read(dir.join(file)).unwrap()]).0);
    let text = read("text.sse");
    assert_eq!(text.content, "Hello, wörld 👋 — 世界!\nSecond \"line\".");
    assert_eq!((text.finish.as_deref(), text.done), (Some("stop"), true));
    assert_eq!(text.usage.unwrap()["total_tokens"], 40);
    let tools = read("tool_use.sse");
    assert_eq!(tools.content, "Let me check both cities and the time.");
    assert_eq!(tools.finish.as_deref(), Some("tool_calls"));
    let args: Vec<&str> = tools.tools.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(
        args,
        [
            r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#,
            r#"{"location": "Paris, FR"}"#,
            "{}"
        ]
    );
    assert_eq!(tools.tools[2].1, "get_time");
    let thinking = read("thinking.sse");
    assert!(thinking.reasoning.starts_with("I need to find 27 * 453."));
    assert!(thinking.reasoning.ends_with("= 12231"));
    assert_eq!(thinking.content, "27 * 453 = 12,231");
    assert_eq!(thinking.finish.as_deref(), Some("length"));
    let error = read("error.sse");
    assert_eq!(error.content, "Partial ans");
    assert!(!error.done && error.usage.is_none());
    assert_eq!(error.error.unwrap()["code"], "overloaded");
    let cache = read("cache_usage.sse");
    assert_eq!(cache.content, "From the cached document: the answer is 42.");
    assert_eq!(
        cache.usage.unwrap()["prompt_tokens_details"]["cached_tokens"],
        20000
    );
}

/// The answers and error bodies with bytes changed, and cut anywhere: a chat completion (valid
/// JSON) or none, and always an OpenAI envelope; never a panic.
#[test]
fn changed_answers_and_errors_give_json_or_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic/backend");
    let mut rng = crate::test_json::Rng::new(0xbad);
    const BYTES: &[u8] = b"{}[]\":,\\ 0a\xc3\xff";
    for file in [
        "message_tool_use.json",
        "message_text.json",
        "error_overloaded.json",
    ] {
        let input = std::fs::read(dir.join(file)).unwrap();
        let mut bodies: Vec<Vec<u8>> = (0..input.len()).map(|cut| input[..cut].to_vec()).collect();
        for _ in 0..1500 {
            let mut body = input.clone();
            for _ in 0..1 + rng.next(3) {
                let at = rng.next(body.len() as u64) as usize;
                body[at] = BYTES[rng.next(BYTES.len() as u64) as usize];
            }
            bodies.push(body);
        }
        for body in bodies {
            if let Some(out) = chat_completion(&body, CREATED) {
                let v: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(v["object"], "chat.completion");
            }
            let (status, out) = openai_error(529, &body);
            assert_eq!(status, 503);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }
}
