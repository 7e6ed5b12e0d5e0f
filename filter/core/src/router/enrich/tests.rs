//! The Responses API request and reply, and the answer put into the client's body: golden.

use super::*;
use crate::router::context::build;
use crate::router::turns::read_chat;

#[test]
fn the_request_body_is_exactly_this() {
    let body = br#"{"messages":[
        {"role":"system","content":"ignored"},
        {"role":"user","content":"Who won yesterday?"},
        {"role":"assistant","content":"Which game?"},
        {"role":"user","content":"The cup final."}
    ]}"#;
    let context = build(&read_chat(body).unwrap(), 500).unwrap();
    let out = request_body(
        "grok-4-fast",
        Some("Search, then report facts with dates."),
        &["web_search".to_string(), "x_search".to_string()],
        &context,
        Some(800),
    );
    let want = concat!(
        r#"{"input":[{"content":"Who won yesterday?","role":"user"},"#,
        r#"{"content":"Which game?","role":"assistant"},"#,
        r#"{"content":"The cup final.","role":"user"}],"#,
        r#""instructions":"Search, then report facts with dates.","max_output_tokens":800,"#,
        r#""model":"grok-4-fast","store":false,"stream":false,"#,
        r#""tools":[{"type":"web_search"},{"type":"x_search"}]}"#
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
    let bare = request_body("m", None, &[], &context, None);
    let v: serde_json::Value = serde_json::from_slice(&bare).unwrap();
    assert!(v.get("instructions").is_none() && v.get("max_output_tokens").is_none());
}

#[test]
fn the_answer_is_the_message_items_output_text() {
    let reply = br#"{"id":"resp_1","object":"response","status":"completed","output":[
        {"type":"reasoning","summary":[]},
        {"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"cup final"}},
        {"type":"message","role":"assistant","content":[
            {"type":"output_text","text":"City won 2-1.","annotations":[{"type":"url_citation","url":"https://example.com"}]},
            {"type":"output_text","text":" Final on 24 May."}
        ]},
        {"type":"message","role":"assistant","content":[{"type":"refusal","refusal":"no"}]}
    ],"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}"#;
    assert_eq!(
        answer(reply),
        Ok(Answer {
            text: "City won 2-1. Final on 24 May.".into(),
            cut: false
        })
    );
    let long = format!(
        r#"{{"output":[{{"type":"message","content":[{{"type":"output_text","text":"{}"}}]}}]}}"#,
        "a".repeat(MAX_ANSWER_BYTES + 10)
    );
    let cut = answer(long.as_bytes()).unwrap();
    assert!(cut.cut && cut.text.len() <= MAX_ANSWER_BYTES);
}

#[test]
fn replies_without_an_answer_fail_with_a_reason() {
    let cases: [(&[u8], Failure); 6] = [
        (b"not json", Failure::NotAResponse),
        (br#"{"choices":[]}"#, Failure::NotAResponse),
        (
            br#"{"status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#,
            Failure::Failed("reports an error: boom".into()),
        ),
        (
            br#"{"status":"cancelled","output":[]}"#,
            Failure::Failed("is cancelled".into()),
        ),
        (
            br#"{"status":"completed","output":[{"type":"web_search_call"}]}"#,
            Failure::NoText,
        ),
        (
            br#"{"output":[{"type":"message","content":[{"type":"output_text","text":"  "}]}]}"#,
            Failure::NoText,
        ),
    ];
    for (reply, want) in cases {
        assert_eq!(
            answer(reply),
            Err(want.clone()),
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(
        answer(&vec![b' '; MAX_REPLY_BODY_BYTES + 1]),
        Err(Failure::TooLarge)
    );
}

#[test]
fn the_answer_goes_before_the_last_user_turn() {
    let template = Template::parse("Search results:\n{{answer}}", &TEMPLATE_SLOTS).unwrap();
    let body = br#"{"model":"ai-router","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"Who won?"}],"stream":true}"#;
    let out = inject(body, &template, "City, 2-1.", Inject::Message).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"ai-router","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"system","content":"Search results:\nCity, 2-1."},{"role":"user","content":"Who won?"}],"stream":true}"#
    );
    let out = inject(body, &template, "City, 2-1.", Inject::UserTurn).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"ai-router","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"Search results:\nCity, 2-1.\n\nWho won?"}],"stream":true}"#
    );
    let parts = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Who?"}]}]}"#;
    let out = inject(parts, &template, "x", Inject::UserTurn).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"Search results:\nx"},{"type":"text","text":"Who?"}]}]}"#
    );
    assert_eq!(
        inject(
            br#"{"messages":[{"role":"system","content":"s"}]}"#,
            &template,
            "x",
            Inject::Message
        ),
        Err(ReadError::NoConversation)
    );
}
