//! OpenAI answers read as the API's [`GenerationResponse`]s: a whole answer (chat's
//! `choices[0].message.content`, a completion's `choices[0].text`), or a stream of SSE events cut
//! by the core's framer (`airouter_core::sse::SseFramer`: events split anywhere, LF, CRLF or CR)
//! whose chunks become one response per piece of text, then a last one with the finish reason
//! and usage once `[DONE]` arrives. An error event ends the stream with its status
//! ([`super::status::from_stream_error`]); a stream that stops before `[DONE]` ends `UNAVAILABLE`.

use airouter_core::sse::SseFramer;
use serde::Deserialize;
use tonic::Status;

use super::proto::{GenerationResponse, Usage};
use super::status::{self, Envelope};

/// An OpenAI answer or stream chunk (chat or legacy completions), as far as the API reads it.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    /// Chat, whole.
    #[serde(default)]
    message: Option<Text>,
    /// Chat, streamed.
    #[serde(default)]
    delta: Option<Text>,
    /// Legacy completions, whole or streamed.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Text {
    #[serde(default)]
    content: Option<String>,
    /// What a model says instead when it declines (OpenAI's structured refusals).
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Usage {
            prompt_tokens: clamp(u.prompt_tokens),
            completion_tokens: clamp(u.completion_tokens),
            total_tokens: clamp(u.total_tokens),
        }
    }
}

impl Choice {
    /// The text this choice carries (whole or a piece), if any.
    fn text(self) -> Option<String> {
        let from = |t: Text| t.content.filter(|c| !c.is_empty()).or(t.refusal);
        self.text
            .or_else(|| self.message.and_then(from))
            .or_else(|| self.delta.and_then(from))
    }
}

/// The first choice of `choices` (index 0), taken out.
fn first(choices: Vec<Choice>) -> Option<Choice> {
    choices.into_iter().find(|c| c.index == 0)
}

/// A whole answer (HTTP 200, JSON) as the unary call's response; `INTERNAL` when it is not one.
pub fn whole(body: &[u8]) -> Result<GenerationResponse, Status> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| Status::internal("the router's answer could not be read"))?;
    let usage = answer.usage.map(Usage::from);
    let (content, finish_reason) = match first(answer.choices) {
        Some(mut c) => {
            let reason = c.finish_reason.take().unwrap_or_default();
            (c.text().unwrap_or_default(), reason)
        }
        None => (String::new(), String::new()),
    };
    Ok(GenerationResponse {
        content,
        model: answer.model.unwrap_or_default(),
        finish_reason,
        usage,
    })
}

/// Reads a streamed answer (SSE) as it arrives.
#[derive(Debug, Default)]
pub struct StreamReader {
    framer: SseFramer,
    /// The model the chunks name (each names it; the last one seen).
    model: String,
    finish_reason: String,
    usage: Option<Usage>,
    /// `[DONE]` or an error event went by: nothing more is read.
    ended: bool,
}

impl StreamReader {
    /// Reads `chunk`: the responses it completes, in order; an `Err` is the stream's last.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<GenerationResponse, Status>> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let mut events = Vec::new();
        self.framer
            .push(chunk, &mut |event| events.push(data(event)));
        for data in events {
            if self.ended {
                break;
            }
            if let Some(r) = self.event(&data) {
                self.ended |= r.is_err();
                out.push(r);
            }
        }
        if self.framer.overflowed() && !self.ended {
            self.ended = true;
            out.push(Err(Status::internal(
                "the answer's stream carried an event too large to read",
            )));
        }
        out
    }

    /// The stream's end (no more bytes): `UNAVAILABLE` unless it ended as OpenAI streams do.
    pub fn finish(&mut self) -> Option<Result<GenerationResponse, Status>> {
        if self.ended {
            return None;
        }
        self.ended = true;
        tracing::warn!("grpc_api: an answer's stream stopped before [DONE]");
        Some(Err(Status::unavailable(
            "the answer's stream stopped before it was complete",
        )))
    }

    /// Whether the stream has ended (`[DONE]`, an error, its end or [`Self::abandon`]).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Reads no more: the stream broke off and its caller reports that.
    pub fn abandon(&mut self) {
        self.ended = true;
    }

    /// One event's data: a response to send, an error, or nothing (role-only chunks, comments).
    fn event(&mut self, data: &[u8]) -> Option<Result<GenerationResponse, Status>> {
        if data.is_empty() {
            return None;
        }
        if data.trim_ascii() == b"[DONE]" {
            self.ended = true;
            return Some(Ok(GenerationResponse {
                content: String::new(),
                model: self.model.clone(),
                finish_reason: std::mem::take(&mut self.finish_reason),
                usage: self.usage.take(),
            }));
        }
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(data) {
            return Some(Err(status::from_stream_error(&error)));
        }
        let Ok(chunk) = serde_json::from_slice::<Answer>(data) else {
            return Some(Err(Status::internal(
                "the answer's stream could not be read",
            )));
        };
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into());
        }
        let mut choice = first(chunk.choices)?;
        if let Some(reason) = choice.finish_reason.take() {
            self.finish_reason = reason;
        }
        let content = choice.text().filter(|t| !t.is_empty())?;
        Some(Ok(GenerationResponse {
            content,
            model: self.model.clone(),
            finish_reason: String::new(),
            usage: None,
        }))
    }
}

/// An event's data: its `data:` lines (one leading space off each) joined with LF.
fn data(event: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut first = true;
    for line in event.split(|b| *b == b'\n' || *b == b'\r') {
        if let Some(value) = line.strip_prefix(b"data:") {
            if !first {
                out.push(b'\n');
            }
            first = false;
            out.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        let huge = br#"{"model":"m","choices":[],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":0,"total_tokens":18446744073709551615}}"#;
        assert_eq!(whole(huge).unwrap().usage.unwrap().total_tokens, u32::MAX);
        assert_eq!(whole(b"<html>").unwrap_err().code(), Code::Internal);
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
        let s = b"data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
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
}
