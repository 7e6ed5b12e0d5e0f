//! The golden cases of `testdata/anthropic/front/`: recorded-shape OpenAI chat streams and
//! answers, and a Messages request, against what the client (or the backend) must get. Every
//! stream is also fed cut at every byte and one byte at a time, must give the same events, and
//! must pass Anthropic's stream grammar (`grammar`).

use std::collections::BTreeMap;
use std::path::Path;

use super::grammar::{check, End};
use super::*;

#[derive(serde::Deserialize)]
struct Case {
    file: String,
    kind: String,
    end: Option<String>,
}

fn run(chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = EventStream::new("my-claude", 21);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.feed(c));
    }
    out.extend(s.finish());
    // Once ended, a stream stays ended.
    assert!(s.feed(b"data: [DONE]\n\n").is_empty());
    assert!(s.finish().is_empty());
    out
}

fn stream_case(name: &str, case: &Case, input: &[u8]) -> Vec<u8> {
    let whole = run(&[input]);
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(run(&[a, b]), whole, "{name} cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "{name} byte at a time");
    let end = check(&whole).unwrap_or_else(|e| panic!("{name}: {e}"));
    match (case.end.as_deref(), &end) {
        (Some("message"), End::Message(_)) | (Some("error"), End::Error(_)) => {}
        other => panic!("{name}: ended as {other:?}"),
    }
    whole
}

/// Compact JSON laid out one member a line, its bytes and order otherwise as written.
fn pretty(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = String::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' if matches!(chars.peek(), Some('}' | ']')) => {
                out.push(c);
                out.extend(chars.next());
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out.push('\n');
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::from_slice::<serde_json::Value>(body).unwrap()
    );
    out.into_bytes()
}

#[test]
fn golden_front_translations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic/front");
    let cases: BTreeMap<String, Case> =
        toml::from_str(&std::fs::read_to_string(dir.join("cases.toml")).unwrap()).unwrap();
    assert!(cases.len() >= 17);
    let bless = std::env::var_os("AIROUTER_BLESS").is_some();
    for (name, case) in cases {
        let input = std::fs::read(dir.join(&case.file)).unwrap();
        let out = match case.kind.as_str() {
            "stream" => stream_case(&name, &case, &input),
            "message" => pretty(&message(&input).unwrap_or_else(|| panic!("{name}: no message"))),
            "request" => pretty(&chat_request(&input).unwrap().body),
            other => panic!("{name}: unknown kind {other}"),
        };
        let (stem, ext) = case.file.rsplit_once('.').unwrap();
        let expected_path = dir.join(format!("{stem}.expected.{ext}"));
        let out = String::from_utf8(out).unwrap();
        if bless {
            std::fs::write(&expected_path, &out).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{name}: {e} (bless with AIROUTER_BLESS=1)"));
        assert_eq!(out, expected, "{name}");
    }
}
