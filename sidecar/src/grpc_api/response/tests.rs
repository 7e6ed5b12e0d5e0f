//! Answers read: whole chat and completion answers, streams cut at every byte, error events,
//! streams that stop.

use tonic::Code;

use super::*;

#[test]
fn a_whole_chat_answer_and_a_whole_completion() {
    let chat = br#"{"id":"c","object":"chat.completion","model":"demo-chat","choices":[{"index":0,"message":{"role":"assistant","content":"You said: hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#;
    let r = whole(chat).unwrap();
    assert_eq!(
        (
            r.content.as_str(),
            r.model.as_str(),
            r.finish_reason.as_str()
        ),
        ("You said: hi", "demo-chat", "stop")
    );
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            total_tokens: 8
        })
    );
    let completion = br#"{"model":"writer","choices":[{"index":0,"text":" echo: Once","finish_reason":"length"}]}"#;
    let r = whole(completion).unwrap();
    assert_eq!(
        (r.content.as_str(), r.finish_reason.as_str()),
        (" echo: Once", "length")
    );
    assert_eq!(r.usage, None);
    let refusal = br#"{"model":"m","choices":[{"index":0,"message":{"content":null,"refusal":"I can't."},"finish_reason":"stop"}]}"#;
    assert_eq!(whole(refusal).unwrap().content, "I can't.");
    let huge = br#"{"model":"m","choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1e300,"total_tokens":100000000000000000000000000000}}"#;
    let usage = whole(huge).unwrap().usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (u32::MAX, u32::MAX, u32::MAX)
    );
    let floats = br#"{"model":"m","choices":[{"index":0,"text":"x","finish_reason":"stop"}],"usage":{"prompt_tokens":5.0,"completion_tokens":null}}"#;
    let usage = whole(floats).unwrap().usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 0));
    assert_eq!(whole(b"<html>").unwrap_err().code(), Code::Internal);
}

#[test]
fn a_success_that_is_not_a_completion_is_internal_never_ok_and_empty() {
    let long_reason = format!(
        r#"{{"model":"m","choices":[{{"index":0,"text":"x","finish_reason":"{}"}}]}}"#,
        "x".repeat(MAX_FINISH_REASON_BYTES + 1)
    );
    let long_model = format!(
        r#"{{"model":"{}","choices":[{{"index":0,"text":"x","finish_reason":"stop"}}]}}"#,
        "m".repeat(MAX_MODEL_NAME_BYTES + 1)
    );
    let bad: [&[u8]; 10] = [
        br#"{"foo":"bar"}"#,
        br#"{"model":"m","choices":[]}"#,
        br#"{"model":"m","choices":[{"index":1,"text":"x","finish_reason":"stop"}]}"#,
        br#"{"model":"m","choices":[{"index":0,"text":"x"}]}"#,
        br#"{"model":"m","choices":[{"index":0,"text":"x","finish_reason":"st
op"}]}"#,
        br#"{"model":"m","choices":[{"index":0,"text":"x","finish_reason":"stop"}]}"#,
        br#"{"model":"m","choices":[{"index":0,"text":"x","finish_reason":"stop"}],"usage":{"prompt_tokens":-1}}"#,
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
        long_reason.as_bytes(),
        long_model.as_bytes(),
    ];
    for body in bad {
        let err = whole(body).unwrap_err();
        assert_eq!(
            err.code(),
            Code::Internal,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(err
            .message()
            .starts_with("the router's answer could not be read: "));
        assert!(err.message().len() < 120, "{}", err.message());
    }
    // A finish reason OpenAI does not name, but plain: passed on.
    let custom = br#"{"model":"m","choices":[{"index":0,"text":"x","finish_reason":"eos_token"}]}"#;
    assert_eq!(whole(custom).unwrap().finish_reason, "eos_token");
}

#[test]
fn a_stream_without_a_choice_or_a_finish_reason_ends_internal() {
    let no_choice =
        b"data: {\"model\":\"m\",\"choices\":[]}\n\ndata: {\"foo\":1}\n\ndata: [DONE]\n\n";
    let out = read_all(&mut StreamReader::default(), &[no_choice]);
    assert_eq!(out.len(), 1);
    let err = out[0].as_ref().unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("no choice"), "{}", err.message());
    let no_finish = b"data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
    let out = read_all(&mut StreamReader::default(), &[no_finish]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().content, "x");
    assert_eq!(out[1].as_ref().unwrap_err().code(), Code::Internal);
    let weird_finish = b"data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"STOP NOW\"}]}\n\ndata: [DONE]\n\n";
    let out = read_all(&mut StreamReader::default(), &[weird_finish]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().code(), Code::Internal);
}

const CHAT_STREAM: &str = concat!(
    "data: {\"model\":\"demo-chat\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    ": a comment\n\n",
    "data: {\"model\":\"demo-chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"You\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"model\":\"demo-chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" said\"},\"finish_reason\":null}]}\r\r",
    "data: {\"model\":\"demo-chat\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"model\":\"demo-chat\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
    "data: [DONE]\n\n",
);

fn read_all(
    reader: &mut StreamReader,
    chunks: &[&[u8]],
) -> Vec<Result<GenerationResponse, Status>> {
    let mut out: Vec<_> = chunks.iter().flat_map(|c| reader.push(c)).collect();
    out.extend(reader.finish());
    out
}

#[test]
fn a_stream_is_its_pieces_then_the_end_wherever_it_is_cut() {
    let bytes = CHAT_STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        let out = read_all(&mut StreamReader::default(), &[a, b]);
        let out: Vec<GenerationResponse> = out.into_iter().map(Result::unwrap).collect();
        let texts: Vec<&str> = out.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(texts, ["You", " said", ""], "cut at {cut}");
        assert!(out.iter().all(|r| r.model == "demo-chat"));
        let last = out.last().unwrap();
        assert_eq!(last.finish_reason, "stop");
        assert_eq!(last.usage.as_ref().unwrap().total_tokens, 7);
        assert!(out[..2]
            .iter()
            .all(|r| r.finish_reason.is_empty() && r.usage.is_none()));
    }
}

#[test]
fn a_completion_stream_reads_its_text() {
    let s = b"data: {\"model\":\"w\",\"choices\":[{\"index\":0,\"text\":\" echo: Once\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let out = read_all(&mut StreamReader::default(), &[s]);
    let out: Vec<GenerationResponse> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(out[0].content, " echo: Once");
    assert_eq!(
        (out[1].content.as_str(), out[1].finish_reason.as_str()),
        ("", "stop")
    );
}

#[test]
fn an_error_event_ends_the_stream_with_its_status() {
    let s = concat!(
        "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"The backend's stream ended before the answer was complete.\",\"type\":\"server_error\",\"param\":null,\"code\":\"stream_truncated\"}}\n\n",
        "data: [DONE]\n\n",
    );
    let out = read_all(&mut StreamReader::default(), &[s.as_bytes()]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().content, "partial");
    let err = out[1].as_ref().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("ended before"));
}

#[test]
fn a_stream_that_stops_or_cannot_be_read() {
    let s =
        b"data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
    let out = read_all(&mut StreamReader::default(), &[s]);
    assert_eq!(out[1].as_ref().unwrap_err().code(), Code::Unavailable);
    let out = read_all(&mut StreamReader::default(), &[b"data: {not json\n\n"]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().code(), Code::Internal);
    let multi = b"data: {\"model\":\"m\",\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\ndata: [DONE]\n\n";
    let out = read_all(&mut StreamReader::default(), &[multi]);
    assert_eq!(
        out[0].as_ref().unwrap().content,
        "y",
        "data lines join with LF"
    );
}
