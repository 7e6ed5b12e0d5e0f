//! Every known failure case of earlier OpenAI-to-Triton routers (shared/notes/triton.md).

use super::*;

fn run(mode: StreamText, echo: Option<&str>, stops: &[&str], pieces: &[&[u8]]) -> Vec<String> {
    let mut a = TextAssembler::new(
        mode,
        echo.map(str::to_string),
        stops.iter().map(|s| s.to_string()).collect(),
    );
    let mut out: Vec<String> = pieces.iter().map(|p| a.push(p)).collect();
    out.push(a.finish());
    out
}

fn joined(v: &[String]) -> String {
    v.concat()
}

#[test]
fn repeated_delta_pieces_are_kept() {
    for mode in [StreamText::Delta, StreamText::Auto] {
        assert_eq!(joined(&run(mode, None, &[], &[b".", b".", b"."])), "...");
        assert_eq!(
            joined(&run(mode, None, &[], &[b"the", b" these"])),
            "the these"
        );
    }
}

#[test]
fn cumulative_text_becomes_deltas() {
    for mode in [StreamText::Cumulative, StreamText::Auto] {
        let out = run(mode, None, &[], &[b"Hel", b"Hello", b"Hello wor"]);
        assert_eq!(out, ["Hel", "lo", " wor", ""]);
    }
}

#[test]
fn prompt_echo_never_reaches_the_client() {
    let prompt = "user: hi\nassistant:";
    // Echo in one piece with the answer, and echo split across pieces.
    assert_eq!(
        joined(&run(
            StreamText::Delta,
            Some(prompt),
            &[],
            &[b"user: hi\nassistant: Hello"]
        )),
        " Hello"
    );
    assert_eq!(
        joined(&run(
            StreamText::Delta,
            Some(prompt),
            &[],
            &[b"user: ", b"hi\nassistant:", b" Yo"]
        )),
        " Yo"
    );
    // No echo: the first piece is released as soon as it departs from the prompt.
    let out = run(StreamText::Delta, Some(prompt), &[], &[b"Sure", b"!"]);
    assert_eq!(out, ["Sure", "!", ""]);
    // Cumulative with echo.
    assert_eq!(
        joined(&run(
            StreamText::Cumulative,
            Some(prompt),
            &[],
            &[
                b"user: hi\nassistant:",
                b"user: hi\nassistant: A",
                b"user: hi\nassistant: AB"
            ]
        )),
        " AB"
    );
}

#[test]
fn end_markers_are_removed_only_at_the_end() {
    assert_eq!(
        joined(&run(
            StreamText::Delta,
            None,
            &["</s>"],
            &[b"done", b"</s>"]
        )),
        "done"
    );
    assert_eq!(
        joined(&run(
            StreamText::Delta,
            None,
            &["</s>"],
            &[b"done</", b"s>"]
        )),
        "done"
    );
    // Mid-text the marker is content.
    assert_eq!(
        joined(&run(StreamText::Delta, None, &["</s>"], &[b"a</s>", b"b"])),
        "a</s>b"
    );
    // A partial marker that turns out not to be one is released.
    let out = run(StreamText::Delta, None, &["<|eot_id|>"], &[b"x <|", b"no"]);
    assert_eq!(out, ["x ", "<|no", ""]);
}

#[test]
fn utf8_split_across_pieces_is_reassembled() {
    let emoji = "\u{1f600}".as_bytes();
    let out = run(
        StreamText::Delta,
        None,
        &[],
        &[&emoji[..2], &emoji[2..], b" ok"],
    );
    assert_eq!(out, ["", "\u{1f600}", " ok", ""]);
    // Invalid bytes are replaced, not held forever.
    assert_eq!(
        joined(&run(StreamText::Delta, None, &[], &[b"a\xff", b"b"])),
        "a\u{fffd}b"
    );
}

#[test]
fn empty_pieces_and_output_less_finals_are_harmless() {
    let out = run(
        StreamText::Auto,
        None,
        &["</s>"],
        &[b"", b"Hi", b"", b" there"],
    );
    assert_eq!(joined(&out), "Hi there");
    let mut a = TextAssembler::new(StreamText::Delta, None, vec![]);
    a.push(b"x");
    a.push(b"");
    assert_eq!(a.pieces(), 1);
}
