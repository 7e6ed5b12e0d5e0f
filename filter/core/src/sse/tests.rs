//! The SSE rewriter fed every split point of sample streams: the output must not depend on where
//! the chunks were cut.

use super::*;

const CHAT: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"llama-3-backend\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"llama-3-backend\",\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600} \u{4e16}\u{754c}\"}}]}\n\n",
    ": keep-alive comment from llama-3-backend\n\n",
    "event: message\r\ndata: {\"model\":\"llama-3-backend\",\r\ndata: \"x\":\"llama-3-backend\"}\r\n\r\n",
    "event: llama-3-backend\nid: llama-3-backend/7\ndata: {\"error\":{\"message\":\"llama-3-backend is down\",\"code\":400,\"url\":\"http://h\"}}\n\n",
    "data: llama-3-backend says: \u{e9}t\u{e9}\n\n",
    "data:{\"model\":\"llama-3-backend\",\"usage\":{\"total_tokens\":9}}\r\r",
    "data: [DONE]\n\n",
);

const EXPECTED: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"my-chat\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"my-chat\",\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600} \u{4e16}\u{754c}\"}}]}\n\n",
    ":\n\n",
    "event: message\r\ndata: {\"model\":\"my-chat\",\r\ndata: \"x\":\"my-chat\"}\r\n\r\n",
    "event: my-chat\nid: my-chat/7\ndata: {\"error\":{\"message\":\"my-chat is down\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"400\"}}\n\n",
    "data: my-chat says: \u{e9}t\u{e9}\n\n",
    "data:{\"model\":\"my-chat\",\"usage\":{\"total_tokens\":9}}\r\r",
    "data: [DONE]\n\n",
);

fn run(chunks: &[&[u8]]) -> Vec<u8> {
    let mut r = SseModelRewriter::new(NameRewriter::new("my-chat", "llama-3-backend"));
    let mut out = Vec::new();
    for c in chunks {
        out.extend(r.feed(c));
    }
    out.extend(r.finish());
    out
}

#[test]
fn whole_stream_is_rewritten() {
    assert_eq!(
        String::from_utf8(run(&[CHAT.as_bytes()])).unwrap(),
        EXPECTED
    );
}

#[test]
fn every_single_split_point_gives_the_same_output() {
    let bytes = CHAT.as_bytes();
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(run(&[a, b]), EXPECTED.as_bytes(), "split at byte {cut}");
    }
}

#[test]
fn every_pair_of_split_points_gives_the_same_output() {
    let bytes = CHAT.as_bytes();
    for i in (0..=bytes.len()).step_by(7) {
        for j in i..=bytes.len() {
            let out = run(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
            assert_eq!(out, EXPECTED.as_bytes(), "split at {i} and {j}");
        }
    }
}

#[test]
fn byte_at_a_time_works() {
    let chunks: Vec<&[u8]> = CHAT.as_bytes().chunks(1).collect();
    assert_eq!(run(&chunks), EXPECTED.as_bytes());
}

/// Comments keep only their colon (still a keep-alive), fields the spec ignores go, and the
/// fields clients read are renamed.
#[test]
fn lines_clients_ignore_carry_nothing() {
    let mut r = SseModelRewriter::new(NameRewriter::new("a", "b-1"));
    let out =
        r.feed(b": ping\r\n\n:\n\nx-backend: http://b-1\nretry: 10\ndata\nevent: b-1\n\n: b\n\n");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        ":\r\n\n:\n\nretry: 10\ndata\nevent: a\n\n:\n\n"
    );
}

#[test]
fn complete_events_are_emitted_without_waiting() {
    let mut r = SseModelRewriter::new(NameRewriter::new("a", "b"));
    assert_eq!(
        r.feed(b"data: {\"model\":\"b\"}\n\ndata: {\"mo"),
        b"data: {\"model\":\"a\"}\n\n"
    );
    assert_eq!(r.feed(b"del\":\"b\"}\n\n"), b"data: {\"model\":\"a\"}\n\n");
}

#[test]
fn a_trailing_unterminated_event_is_flushed_at_the_end() {
    assert_eq!(
        run(&[b"data: {\"model\":\"llama-3-backend\"}"]),
        b"data: {\"model\":\"my-chat\"}"
    );
}

#[test]
fn event_end_handles_each_line_ending() {
    assert_eq!(event_end(b"data: x\n\nrest"), Some(9));
    assert_eq!(event_end(b"data: x\r\n\r\n"), Some(11));
    assert_eq!(event_end(b"data: x\r\rd"), Some(9));
    assert_eq!(event_end(b"data: x\r\r"), None);
    assert_eq!(event_end(b"data: x\r"), None);
    assert_eq!(event_end(b"data: x\n"), None);
}

#[test]
fn done_is_noticed_wherever_the_stream_was_cut() {
    let bytes = CHAT.as_bytes();
    for cut in 0..=bytes.len() {
        let mut r = SseModelRewriter::new(NameRewriter::new("a", "b"));
        r.feed(&bytes[..cut]);
        r.feed(&bytes[cut..]);
        r.finish();
        assert!(r.saw_done(), "cut at {cut}");
    }
    let mut r = SseModelRewriter::new(NameRewriter::new("a", "b"));
    r.feed(b"data: {\"x\":1}\n\n");
    r.finish();
    assert!(!r.saw_done());
}

/// One event sent as 64-byte lines with no end in sight, in 64-byte chunks: the framer looks
/// at each byte about once (it was quadratic: 2 MiB cost seconds of a worker).
#[test]
fn an_endless_event_costs_work_linear_in_its_bytes() {
    let line = [b"data: ".as_slice(), &[b'x'; 57], b"\n"].concat();
    assert_eq!(line.len(), 64);
    let total = 2 * 1024 * 1024;
    let mut framer = SseFramer::default();
    let mut events = 0;
    for _ in 0..total / 64 {
        framer.push(&line, &mut |_| events += 1);
    }
    assert_eq!(events, 0);
    assert!(!framer.overflowed());
    assert!(framer.work() <= total as u64 + 64, "{}", framer.work());
    // The same bytes cut anywhere, even one at a time, still cost one look each (a CR at a
    // chunk's end is looked at twice).
    let stream = b"data: a\r\ndata: b\r\r\ndata: c\n\n".repeat(1000);
    for size in [1, 2, 3, 7, 64] {
        let mut framer = SseFramer::default();
        let mut events = 0;
        for chunk in stream.chunks(size) {
            framer.push(chunk, &mut |_| events += 1);
        }
        assert_eq!(events, 2000, "chunks of {size}");
        assert!(
            framer.work() <= 2 * stream.len() as u64,
            "chunks of {size}: {}",
            framer.work()
        );
    }
}

/// An event over the limit ends the stream well-formed: the events before it, an error event,
/// `[DONE]` where the API ends with it, and nothing of what follows.
#[test]
fn an_event_over_the_limit_ends_the_stream() {
    let big = vec![b'x'; 256 * 1024];
    for done in [true, false] {
        let mut r = SseModelRewriter::new(NameRewriter::new("a", "b")).ending_with_done(done);
        let mut out = r.feed(b"data: {\"model\":\"b\"}\n\ndata: ");
        for _ in 0..MAX_EVENT_BYTES / big.len() + 1 {
            out.extend(r.feed(&big));
        }
        assert!(r.overflowed());
        assert!(r.saw_done());
        out.extend(r.feed(b"\n\ndata: {\"after\":1}\n\ndata: [DONE]\n\n"));
        out.extend(r.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("data: {\"model\":\"a\"}\n\n"), "{text}");
        assert!(!text.contains("xxx") && !text.contains("after"), "{text}");
        if done {
            assert!(text.ends_with("\"code\":\"stream_event_too_large\"}}\n\ndata: [DONE]\n\n"));
        } else {
            assert!(text.contains("event: error\ndata: {"), "{text}");
            assert!(
                text.ends_with("}\n\n") && !text.contains("[DONE]"),
                "{text}"
            );
            let data = text.rsplit("data: ").next().unwrap().trim_end();
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["code"], "stream_event_too_large");
        }
    }
    // A complete event over the limit, in one chunk, ends it too.
    let mut r = SseModelRewriter::new(NameRewriter::new("a", "b"));
    let mut event = b"data: ".to_vec();
    event.resize(MAX_EVENT_BYTES + 10, b'y');
    event.extend_from_slice(b"\n\n");
    let out = r.feed(&event);
    assert!(out.starts_with(b"data: {\"error\""));
}

#[test]
fn truncated_endings_are_well_formed_events() {
    let text = String::from_utf8(truncated_stream_ending(false)).unwrap();
    assert!(text.starts_with("\n\ndata: {\"error\""));
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
}

#[test]
fn usage_is_read_and_the_usage_only_chunk_removed_when_asked() {
    let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"total_tokens\":7}}\n\ndata: [DONE]\n\n";
    let mut r = SseModelRewriter::stripping_usage(NameRewriter::new("a", "b"));
    let mut out = r.feed(&stream[..40]);
    out.extend(r.feed(&stream[40..]));
    out.extend(r.finish());
    assert_eq!(r.usage_tokens(), Some(7));
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("total_tokens"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    // Without stripping, the client keeps the chunk it asked for.
    let mut r = SseModelRewriter::new(NameRewriter::new("a", "b"));
    let out = r.feed(stream);
    assert_eq!(out, stream.to_vec());
    assert_eq!(r.usage_tokens(), Some(7));
}

/// One golden case of `testdata/dialects/cases.toml`.
#[derive(serde::Deserialize)]
struct GoldenCase {
    file: String,
    tokens: Option<u64>,
    #[serde(default)]
    done: bool,
}

/// A stream through the rewriter in the given chunks: what the client gets, and the tokens.
fn run_golden(done: bool, chunks: &[&[u8]]) -> (Vec<u8>, Option<u64>) {
    let names = NameRewriter::with_backends("my-chat", &["acme-llama-3", "acme-llama-3-70b"]);
    let mut r = SseModelRewriter::new(names).ending_with_done(done);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(r.feed(c));
    }
    out.extend(r.finish());
    (out, r.usage_tokens())
}

/// Every dialect's backend body against what the client must get and the tokens counted;
/// streams also cut at every byte.
#[test]
fn golden_dialects() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let cases: std::collections::BTreeMap<String, GoldenCase> =
        toml::from_str(&std::fs::read_to_string(dir.join("cases.toml")).unwrap()).unwrap();
    assert!(cases.len() >= 12);
    let bless = std::env::var_os("AIROUTER_BLESS").is_some();
    for (name, case) in cases {
        let input = std::fs::read(dir.join(&case.file)).unwrap();
        let (out, tokens) = if case.file.ends_with(".sse") {
            let whole = run_golden(case.done, &[&input]);
            for cut in 0..=input.len() {
                let (a, b) = input.split_at(cut);
                assert_eq!(run_golden(case.done, &[a, b]), whole, "{name} cut at {cut}");
            }
            whole
        } else {
            let names =
                NameRewriter::with_backends("my-chat", &["acme-llama-3", "acme-llama-3-70b"]);
            let out = names.rewrite_document(&input).unwrap_or(input.clone());
            (out, crate::json_body::total_tokens(&input))
        };
        let (stem, ext) = case.file.rsplit_once('.').unwrap();
        let expected_path = dir.join(format!("{stem}.expected.{ext}"));
        let out = String::from_utf8(out).unwrap();
        if bless {
            std::fs::write(&expected_path, &out).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        assert_eq!(out, expected, "{name}");
        assert_eq!(tokens, case.tokens, "{name}");
        assert!(!out.contains("acme-"), "{name}: {out}");
    }
}

/// Names spelled with JSON escapes or in another case, in `data:` JSON and in text lines, are
/// renamed as a client's parser reads them.
#[test]
fn escaped_and_case_changed_names_are_renamed_in_events() {
    let mut r = SseModelRewriter::new(NameRewriter::with_backends(
        "chat",
        &["zeta-secret-7b", "acme/zeta-slash-1"],
    ));
    let out = r.feed(
        b"data: {\"model\":\"acme\\/zeta-slash-1\",\"choices\":[{\"delta\":{\"content\":\"I am zeta\\u002dsecret-7b and ACME\\/Zeta-Slash-1\"}}]}\n\nevent: ZETA-SECRET-7B\ndata: I am Zeta-Secret-7b\n\n",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: {\"model\":\"chat\",\"choices\":[{\"delta\":{\"content\":\"I am chat and chat\"}}]}\n\nevent: chat\ndata: I am chat\n\n"
    );
}
