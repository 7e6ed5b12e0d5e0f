//! The SSE rewriter fed every split point of sample streams: the output must not depend on where
//! the chunks were cut.

use super::*;

const CHAT: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"llama-3-backend\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"llama-3-backend\",\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600} \u{4e16}\u{754c}\"}}]}\n\n",
    ": keep-alive comment\n\n",
    "event: message\r\ndata: {\"model\":\"llama-3-backend\",\r\ndata: \"x\":\"llama-3-backend\"}\r\n\r\n",
    "data:{\"model\":\"llama-3-backend\",\"usage\":{\"total_tokens\":9}}\r\r",
    "data: [DONE]\n\n",
);

const EXPECTED: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"my-chat\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"model\":\"my-chat\",\"choices\":[{\"delta\":{\"content\":\"h\u{e9}llo \u{1f600} \u{4e16}\u{754c}\"}}]}\n\n",
    ": keep-alive comment\n\n",
    "event: message\r\ndata: {\"model\":\"my-chat\",\r\ndata: \"x\":\"my-chat\"}\r\n\r\n",
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
