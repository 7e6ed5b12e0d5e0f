//! Blocks written one after another, whatever the order their pieces come in.

use super::*;

/// The events written, as `name index detail` lines.
fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data: serde_json::Value =
                serde_json::from_str(e.split_once("data: ").unwrap().1).unwrap();
            let detail = match data["type"].as_str().unwrap() {
                "content_block_start" => {
                    let b = &data["content_block"];
                    format!(
                        "{} {}",
                        b["type"].as_str().unwrap(),
                        b["id"].as_str().unwrap_or("")
                    )
                }
                "content_block_delta" => {
                    let d = &data["delta"];
                    let text = ["text", "thinking", "partial_json"]
                        .iter()
                        .find_map(|k| d[k].as_str())
                        .unwrap();
                    text.to_string()
                }
                _ => String::new(),
            };
            format!(
                "{} {} {}",
                data["type"].as_str().unwrap(),
                data["index"],
                detail
            )
            .trim_end()
            .to_string()
        })
        .collect()
}

#[test]
fn prose_changes_open_new_blocks() {
    let mut b = Blocks::default();
    let mut out = Vec::new();
    b.thinking("hm", &mut out);
    b.thinking("", &mut out);
    b.text("a", &mut out);
    b.text("b", &mut out);
    b.thinking("again", &mut out);
    b.close_all(&mut out);
    assert_eq!(
        lines(&out),
        [
            "content_block_start 0 thinking",
            "content_block_delta 0 hm",
            "content_block_stop 0",
            "content_block_start 1 text",
            "content_block_delta 1 a",
            "content_block_delta 1 b",
            "content_block_stop 1",
            "content_block_start 2 thinking",
            "content_block_delta 2 again",
            "content_block_stop 2",
        ]
    );
}

#[test]
fn an_open_tool_block_holds_everything_else_until_the_end() {
    let mut b = Blocks::default();
    let mut out = Vec::new();
    b.text("Let me", &mut out);
    b.tool(3, Some("call_a"), Some("f"), "{\"x\":", &mut out);
    b.tool(5, Some("call_b"), Some("g"), "", &mut out);
    b.text("meanwhile", &mut out);
    b.tool(5, None, None, "{}", &mut out);
    b.tool(3, None, None, "1}", &mut out);
    b.text(" more", &mut out);
    b.tool(7, None, Some("h"), "", &mut out);
    b.close_all(&mut out);
    assert_eq!(
        lines(&out),
        [
            "content_block_start 0 text",
            "content_block_delta 0 Let me",
            "content_block_stop 0",
            "content_block_start 1 tool_use call_a",
            "content_block_delta 1 {\"x\":",
            "content_block_delta 1 1}",
            "content_block_stop 1",
            "content_block_start 2 tool_use call_b",
            "content_block_delta 2 {}",
            "content_block_stop 2",
            "content_block_start 3 text",
            "content_block_delta 3 meanwhile more",
            "content_block_stop 3",
            "content_block_start 4 tool_use toolu_7",
            "content_block_stop 4",
        ]
    );
    // After the end, blocks start from the next index again.
    let mut out = Vec::new();
    b.text("x", &mut out);
    assert_eq!(lines(&out)[0], "content_block_start 5 text");
}

#[test]
fn a_failed_answer_drops_what_is_held() {
    let mut b = Blocks::default();
    let mut out = Vec::new();
    b.tool(0, Some("a"), Some("f"), "{", &mut out);
    b.tool(1, Some("b"), Some("g"), "{}", &mut out);
    b.abandon(&mut out);
    b.close_all(&mut out);
    assert_eq!(
        lines(&out),
        [
            "content_block_start 0 tool_use a",
            "content_block_delta 0 {",
            "content_block_stop 0",
        ]
    );
}

#[test]
fn held_bytes_are_bounded() {
    let mut b = Blocks::default();
    let mut out = Vec::new();
    b.tool(0, Some("a"), Some("f"), "", &mut out);
    let piece = "x".repeat(1024 * 1024);
    for _ in 0..MAX_HELD_BYTES / piece.len() {
        b.text(&piece, &mut out);
    }
    assert!(!b.overflowed());
    b.text("x", &mut out);
    assert!(b.overflowed());
    assert!(b.held.is_empty());
}

#[test]
fn tool_arguments_must_make_objects() {
    for (live, held, bad) in [
        ("{\"a\":1}", "", None),
        ("  ", "{}", None),
        ("{\"a\":", "{}", Some("f")),
        ("{}", "[1]", Some("g")),
        ("\"text\"", "{", Some("f")),
    ] {
        let mut b = Blocks::default();
        let mut out = Vec::new();
        b.tool(0, Some("a"), Some("f"), live, &mut out);
        b.tool(1, Some("b"), Some("g"), held, &mut out);
        b.close_all(&mut out);
        assert_eq!(b.malformed_tool(), bad, "{live} {held}");
    }
}
