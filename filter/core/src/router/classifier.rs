//! The classifier call: the OpenAI chat request the filter sends to the classifier model, and
//! the answer's text read from its reply.
//!
//! The request is two messages: the router's classification prompt as the system message, and
//! the conversation (within the budget, see [`super::context`]) shown through the router's
//! template as one user message; one user message, rather than the turns themselves, so the
//! classifier reads the conversation as something to label rather than to answer. It asks for
//! no stream, temperature 0 (the same conversation gets the same label) and the router's
//! `max_tokens`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;

use super::context::{render_history, Context};
use super::template::{Slot, Template};

/// The default template: the conversation so far, then the latest user message.
pub const DEFAULT_TEMPLATE: &str =
    "Conversation so far, oldest first:\n{{history}}\n\nLatest user message:\n{{latest}}";

/// The slots a classification prompt may use.
pub const PROMPT_SLOTS: [Slot; 1] = [Slot::Labels];
/// The slots a classifier template may use.
pub const TEMPLATE_SLOTS: [Slot; 3] = [Slot::Labels, Slot::History, Slot::Latest];

/// The classifier's OpenAI chat request body: `backend_model` (the classifier model's name at
/// the backend the call goes to), the prompt and template rendered with `labels` and `context`.
pub fn request_body(
    backend_model: &str,
    prompt: &Template,
    template: &Template,
    labels: &[&str],
    context: &Context,
    max_tokens: u32,
) -> Vec<u8> {
    let labels = labels.join(", ");
    let history = render_history(&context.history);
    let value = |slot: Slot| -> Cow<'_, str> {
        match slot {
            Slot::Labels => Cow::Borrowed(labels.as_str()),
            Slot::History => Cow::Borrowed(history.as_str()),
            Slot::Latest => Cow::Borrowed(context.latest.as_str()),
            _ => Cow::Borrowed(""),
        }
    };
    let body = json!({
        "model": backend_model,
        "messages": [
            {"role": "system", "content": prompt.render(&value)},
            {"role": "user", "content": template.render(&value)},
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": false,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Why a classifier reply had no answer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// Not a chat completion (`choices[0].message.content` a string).
    NotAChatCompletion,
    /// The reply is larger than [`MAX_REPLY_BODY_BYTES`].
    TooLarge,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::NotAChatCompletion => {
                f.write_str("the classifier's reply is not a chat completion with a text answer")
            }
            ReplyError::TooLarge => write!(
                f,
                "the classifier's reply is over {MAX_REPLY_BODY_BYTES} bytes"
            ),
        }
    }
}

/// The largest classifier reply body read (the answer's own cap,
/// [`super::label::MAX_REPLY_BYTES`], applies to its text).
pub const MAX_REPLY_BODY_BYTES: usize = 256 * 1024;

/// The answer of a chat completion: `choices[0].message.content`.
pub fn reply_text(body: &[u8]) -> Result<String, ReplyError> {
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
    }
    if body.len() > MAX_REPLY_BODY_BYTES {
        return Err(ReplyError::TooLarge);
    }
    let completion: Completion =
        serde_json::from_slice(body).map_err(|_| ReplyError::NotAChatCompletion)?;
    completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or(ReplyError::NotAChatCompletion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::context::build;
    use crate::router::turns::read_chat;

    /// Golden: the whole request for a three-turn conversation.
    #[test]
    fn the_request_body_is_exactly_this() {
        let body = br#"{"model":"ai-router","messages":[
            {"role":"system","content":"client system prompt, not shown"},
            {"role":"user","content":"What is Rust?"},
            {"role":"assistant","content":"A language.<details>tool</details>"},
            {"role":"user","content":[{"type":"text","text":"Prove it is memory safe."},{"type":"image_url","image_url":{"url":"data:,"}}]}
        ]}"#;
        let turns = read_chat(body).unwrap();
        let context = build(&turns, 1000).unwrap();
        let prompt = Template::parse(
            "Classify the request as one of: {{labels}}. Answer with the label only.",
            &PROMPT_SLOTS,
        )
        .unwrap();
        let template = Template::parse(DEFAULT_TEMPLATE, &TEMPLATE_SLOTS).unwrap();
        let out = request_body(
            "qwen3-0.6b",
            &prompt,
            &template,
            &["SIMPLE", "COMPLEX"],
            &context,
            16,
        );
        let want = concat!(
            r#"{"max_tokens":16,"messages":["#,
            r#"{"content":"Classify the request as one of: SIMPLE, COMPLEX. Answer with the label only.","role":"system"},"#,
            r#"{"content":"Conversation so far, oldest first:\nuser: What is Rust?\n\nassistant: A language.\n\nLatest user message:\nProve it is memory safe.","role":"user"}],"#,
            r#""model":"qwen3-0.6b","stream":false,"temperature":0}"#
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn the_answer_is_the_first_choice_content() {
        let ok = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"<think>hm</think>SIMPLE"},"finish_reason":"stop"}],"usage":{"total_tokens":9}}"#;
        assert_eq!(reply_text(ok).unwrap(), "<think>hm</think>SIMPLE");
        for bad in [
            &br#"{"choices":[]}"#[..],
            br#"{"choices":[{"message":{"content":null}}]}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            b"<html>502</html>",
        ] {
            assert_eq!(reply_text(bad), Err(ReplyError::NotAChatCompletion));
        }
        let huge = vec![b' '; MAX_REPLY_BODY_BYTES + 1];
        assert_eq!(reply_text(&huge), Err(ReplyError::TooLarge));
    }
}
