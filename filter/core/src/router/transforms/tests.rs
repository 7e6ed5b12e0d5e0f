//! Golden edits: each transform on a client body, byte for byte, with a fixed clock.

use super::*;
use crate::router::clock::tests::{kolkata, FIXED_NOW_MS};

fn clock() -> Clock {
    Clock::new("Asia/Kolkata", kolkata()).unwrap()
}

fn prompt(text: &str) -> Option<Template> {
    Some(Template::parse(text, &Slot::CLOCK).unwrap())
}

fn apply(t: &Transforms, body: &str) -> String {
    let out = t.apply(Api::Chat, body.as_bytes(), FIXED_NOW_MS).unwrap();
    String::from_utf8(out.into_owned()).unwrap()
}

const BODY: &str = r#"{"model":"ai-router", "messages": [ {"role":"system","content":"Be terse."},{"role":"user","content":"hi"} ],"max_tokens":100,"x_unknown":{"keep":[1.50,"\u00e9"]}}"#;

#[test]
fn prepend_puts_a_system_message_first_with_the_date_appended() {
    let t = Transforms {
        system_prompt: prompt("You are the router's complex model."),
        clock: Some(clock()),
        ..Transforms::none()
    };
    assert_eq!(
        apply(&t, BODY),
        r#"{"model":"ai-router", "messages": [{"role":"system","content":"You are the router's complex model.\n\nCurrent date and time: Friday, 2025-03-14 09:26 IST (Asia/Kolkata, UTC+05:30)"}, {"role":"system","content":"Be terse."},{"role":"user","content":"hi"} ],"max_tokens":100,"x_unknown":{"keep":[1.50,"\u00e9"]}}"#
    );
}

#[test]
fn merge_joins_the_clients_system_message_and_fills_placeholders() {
    let t = Transforms {
        system_prompt: prompt("Today is {{weekday}} {{date}}, {{time}} in {{time_zone}}."),
        mode: SystemPromptMode::Merge,
        clock: Some(clock()),
        ..Transforms::none()
    };
    assert_eq!(
        apply(&t, BODY),
        r#"{"model":"ai-router", "messages": [ {"role":"system","content":"Today is Friday 2025-03-14, 09:26 in Asia/Kolkata.\n\nBe terse."},{"role":"user","content":"hi"} ],"max_tokens":100,"x_unknown":{"keep":[1.50,"\u00e9"]}}"#
    );
    // Content as parts: a part of its own, first.
    let parts = r#"{"messages":[{"role":"developer","content":[{"type":"text","text":"a"}]}]}"#;
    assert_eq!(
        apply(&t, parts),
        r#"{"messages":[{"role":"developer","content":[{"type":"text","text":"Today is Friday 2025-03-14, 09:26 in Asia/Kolkata."},{"type":"text","text":"a"}]}]}"#
    );
    // No system message to merge with: prepended.
    let t = Transforms {
        system_prompt: prompt("P"),
        mode: SystemPromptMode::Merge,
        ..Transforms::none()
    };
    assert_eq!(
        apply(&t, r#"{"messages":[{"role":"user","content":"q"}]}"#),
        r#"{"messages":[{"role":"system","content":"P"},{"role":"user","content":"q"}]}"#
    );
    assert_eq!(
        apply(&t, r#"{"messages":[]}"#),
        r#"{"messages":[{"role":"system","content":"P"}]}"#
    );
}

#[test]
fn a_clock_without_a_prompt_is_the_whole_prompt() {
    let t = Transforms {
        clock: Some(clock()),
        ..Transforms::none()
    };
    assert_eq!(
        apply(&t, r#"{"messages":[{"role":"user","content":"q"}]}"#),
        r#"{"messages":[{"role":"system","content":"Current date and time: Friday, 2025-03-14 09:26 IST (Asia/Kolkata, UTC+05:30)"},{"role":"user","content":"q"}]}"#
    );
}

#[test]
fn max_tokens_are_raised_to_the_floor_or_removed() {
    let floor = Transforms {
        max_tokens: MaxTokens::Floor(4096),
        ..Transforms::none()
    };
    assert_eq!(
        apply(
            &floor,
            r#"{"max_tokens":100,"max_completion_tokens": 8000,"MAX_TOKENS":5,"n":1}"#
        ),
        r#"{"max_tokens":4096,"max_completion_tokens": 8000,"MAX_TOKENS":4096,"n":1}"#
    );
    // Every spelling a server reads as a number below the floor (or as no limit) is raised.
    for spelling in [
        "1000.0", "5.5", "-1", "\"5\"", "\"1000\"", "1e3", "true", "[]",
    ] {
        assert_eq!(
            apply(&floor, &format!(r#"{{"max_tokens":{spelling}}}"#)),
            r#"{"max_tokens":4096}"#,
            "{spelling}"
        );
    }
    assert_eq!(
        apply(&floor, r#"{"max_tokens":5000.0}"#),
        r#"{"max_tokens":5000.0}"#
    );
    let unset = r#"{"messages":[],"max_tokens":null}"#;
    assert_eq!(
        apply(&floor, unset),
        unset,
        "none set: the backend's default stays"
    );
    let remove = Transforms {
        max_tokens: MaxTokens::Remove,
        ..Transforms::none()
    };
    assert_eq!(
        apply(
            &remove,
            r#"{"max_tokens":100, "model":"m" ,"max_completion_tokens":7}"#
        ),
        r#"{"model":"m"}"#
    );
    assert_eq!(apply(&remove, r#"{ "max_tokens" : 1 }"#), r#"{  }"#);
}

#[test]
fn set_replaces_or_adds_parameters() {
    let t = Transforms {
        set: vec![
            ("temperature".into(), "0.2".into()),
            ("reasoning_effort".into(), "\"high\"".into()),
        ],
        ..Transforms::none()
    };
    assert_eq!(
        apply(&t, r#"{"model":"m","Temperature":1,"temperature":0.9}"#),
        r#"{"model":"m","Temperature":0.2,"temperature":0.2,"reasoning_effort":"high"}"#
    );
}

#[test]
fn nothing_to_do_borrows_and_completions_get_no_system_prompt() {
    let t = Transforms::none();
    assert!(matches!(
        t.apply(Api::Chat, BODY.as_bytes(), 0).unwrap(),
        Cow::Borrowed(_)
    ));
    let t = Transforms {
        system_prompt: prompt("P"),
        max_tokens: MaxTokens::Floor(10),
        ..Transforms::none()
    };
    let out = t
        .apply(Api::Completions, br#"{"prompt":"x","max_tokens":1}"#, 0)
        .unwrap();
    assert_eq!(&*out, br#"{"prompt":"x","max_tokens":10}"#);
    assert_eq!(
        t.apply(Api::Chat, br#"{"messages":[],"MESSAGES":[]}"#, 0),
        Err(ReadError::AmbiguousMessages)
    );
}
