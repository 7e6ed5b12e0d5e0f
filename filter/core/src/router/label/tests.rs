//! The label parser on the replies classifiers really give, and on random ones.

use super::*;
use crate::test_json::Rng;

const LABELS: [&str; 4] = ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH"];

fn label(reply: &str) -> Result<&'static str, Unknown> {
    parse(reply, &LABELS, None).map(|p| LABELS[p.label])
}

#[test]
fn one_label_however_it_is_dressed() {
    for reply in [
        "COMPLEX",
        "complex",
        " Complex.\n",
        "\"COMPLEX\"",
        "'complex'",
        "**COMPLEX**",
        "*COMPLEX*!",
        "`COMPLEX`",
        "“COMPLEX”",
        "<think>The user asks for a proof. SIMPLE? No.</think>\nCOMPLEX",
        "<THINK>\nmulti\nline\n</THINK>COMPLEX",
        "reasoning whose opening tag was in the prompt</think>\n\nCOMPLEX",
        "<think>a</think>COMPLEX<think>unclosed trailing thoughts",
        "```\nCOMPLEX\n```",
    ] {
        assert_eq!(label(reply), Ok("COMPLEX"), "{reply:?}");
    }
}

#[test]
fn json_with_a_label_and_a_confidence() {
    let p = parse(
        r#"{"label": "enrich", "confidence": 0.9}"#,
        &LABELS,
        Some(0.5),
    )
    .unwrap();
    assert_eq!((p.label, p.confidence), (3, Some(0.9)));
    let p = parse("```json\n{\"label\":\"SIMPLE\"}\n```", &LABELS, Some(0.5)).unwrap();
    assert_eq!(
        (p.label, p.confidence),
        (0, None),
        "no confidence: the threshold does not apply"
    );
    let cases = [
        (
            r#"{"label":"SIMPLE","confidence":0.2}"#,
            Unknown::LowConfidence(0.2),
        ),
        (
            r#"{"label":"SIMPLE","confidence":1.5}"#,
            Unknown::BadConfidence,
        ),
        (
            r#"{"label":"SIMPLE","confidence":-0.1}"#,
            Unknown::BadConfidence,
        ),
        (
            r#"{"label":"SIMPLE","confidence":"high"}"#,
            Unknown::BadJson,
        ),
        (r#"{"label":"SIMPLE","why":"x"}"#, Unknown::BadJson),
        (r#"{"label":7}"#, Unknown::BadJson),
        (r#"{"label":"SIMPLE""#, Unknown::BadJson),
        (r#"{"label":"HARD"}"#, Unknown::NotALabel),
        (r#"{"label":"SIMPLE or COMPLEX"}"#, Unknown::SeveralLabels),
    ];
    for (reply, why) in cases {
        assert_eq!(parse(reply, &LABELS, Some(0.5)), Err(why), "{reply}");
    }
}

#[test]
fn anything_else_is_unknown_with_a_reason() {
    let cases = [
        ("", Unknown::Empty),
        ("   \n", Unknown::Empty),
        ("<think>only thinking</think>", Unknown::Empty),
        ("<think>never finished", Unknown::Empty),
        ("**", Unknown::Empty),
        ("HARD", Unknown::NotALabel),
        ("The label is COMPLEX", Unknown::NotALabel),
        ("COMPLEX\nbecause it needs a proof", Unknown::NotALabel),
        ("SIMPLE or COMPLEX", Unknown::SeveralLabels),
        ("SIMPLE, COMPLEX", Unknown::SeveralLabels),
        ("COMPLEXITY", Unknown::NotALabel),
    ];
    for (reply, why) in cases {
        assert_eq!(label(reply), Err(why), "{reply:?}");
    }
    let huge = "COMPLEX ".repeat(MAX_REPLY_BYTES / 8 + 1);
    assert_eq!(label(&huge), Err(Unknown::TooLong));
    assert_eq!(
        label(&format!("<think>{}</think>SIMPLE", "x".repeat(60_000))),
        Ok("SIMPLE")
    );
}

#[test]
fn random_replies_are_either_one_label_or_a_reason() {
    let pieces = [
        "SIMPLE",
        "complex",
        "Enrich",
        "<think>",
        "</think>",
        "**",
        "\"",
        " ",
        "\n",
        ".",
        "{",
        "}",
        "\"label\"",
        ":",
        "0.7",
        ",",
        "```",
        "json",
        "é",
        "x",
        "<",
        "OTHER",
    ];
    let mut rng = Rng::new(0x0001_abe1);
    for _ in 0..20_000 {
        let reply: String = (0..rng.next(14))
            .map(|_| pieces[rng.next(pieces.len() as u64) as usize])
            .collect();
        match parse(&reply, &LABELS, Some(0.5)) {
            Ok(p) => {
                // A label found is in the reply's answer, and no other label is.
                let answer = strip_reasoning(&reply).to_ascii_uppercase();
                assert!(answer.contains(LABELS[p.label]), "{reply:?}");
            }
            Err(why) => assert!(!why.to_string().is_empty()),
        }
    }
}

#[test]
fn random_bytes_and_long_replies_take_bounded_work() {
    let mut rng = Rng::new(0xb0_0b);
    for _ in 0..40 {
        let len = rng.next(2 * MAX_REPLY_BYTES as u64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next(128) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let started = std::time::Instant::now();
        let _ = parse(&text, &LABELS, None);
        assert!(started.elapsed().as_millis() < 500, "{len} bytes");
    }
}
