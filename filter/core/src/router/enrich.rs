//! ENRICH: before a route's model serves, an enrichment model (one with live search tools, such
//! as `web_search` or xAI's `x_search`) is asked about the conversation through the Responses
//! API; its answer is put into the client's request as context, from the route's template,
//! just before the last user turn. If the call fails or times out, the route's model serves
//! the request as the client sent it, and the decision records why.
//!
//! - [`request_body`]: the Responses API request: the conversation within the enrichment's
//!   budget (the classifier's context rules, [`super::context`]) as `input` messages, the tools
//!   as `{"type": name}`, the optional instructions, `store: false` (the provider keeps
//!   nothing), no stream.
//! - [`answer`]: the answer of a Responses API reply: the `output_text` parts of its `message`
//!   output items (search calls and reasoning items are skipped), at most
//!   [`MAX_ANSWER_BYTES`]; a reply that failed or has no text is a [`Failure`].
//! - [`inject`]: the client's body with the answer added, as a system message before the last
//!   user message ([`Inject::Message`]) or at the start of that message's own content
//!   ([`Inject::UserTurn`], for chat templates that take a system message only first).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::context::{cut_to, Context};
use super::template::{Slot, Template};
use super::turns::{messages_member, ReadError};
use crate::json_body::quoted;
use crate::json_edit::{self, Edits};
use crate::text::concat;

/// The slots an enrichment template may use.
pub const TEMPLATE_SLOTS: [Slot; 1] = [Slot::Answer];

/// The default enrichment template.
pub const DEFAULT_TEMPLATE: &str = "Context from a live search, for the user's last message (use what is relevant; it may be incomplete):\n\n{{answer}}";

/// The longest answer injected; a longer one is cut (at a character boundary, both ends kept).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// The largest Responses API reply read.
pub const MAX_REPLY_BODY_BYTES: usize = 1024 * 1024;

/// Where the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// A system message of its own, just before the last user message.
    Message,
    /// The start of the last user message's content, a blank line before the user's text.
    UserTurn,
}

/// The enrichment model's Responses API request body.
pub fn request_body(
    backend_model: &str,
    instructions: Option<&str>,
    tools: &[String],
    context: &Context,
    max_output_tokens: Option<u32>,
) -> Vec<u8> {
    let mut input: Vec<Value> = context
        .history
        .iter()
        .map(|(role, text)| json!({"role": role, "content": text}))
        .collect();
    input.push(json!({"role": "user", "content": context.latest}));
    let tools: Vec<Value> = tools.iter().map(|t| json!({"type": t})).collect();
    let mut body = json!({
        "model": backend_model,
        "input": input,
        "tools": tools,
        "store": false,
        "stream": false,
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(i) = instructions {
            obj.insert("instructions".into(), json!(i));
        }
        if let Some(n) = max_output_tokens {
            obj.insert("max_output_tokens".into(), json!(n));
        }
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Why an enrichment gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    TooLarge,
    /// Not a Responses API response object.
    NotAResponse,
    /// The response reports an error or a `failed`/`cancelled` status.
    Failed(String),
    /// No `output_text` in its `message` items.
    NoText,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TooLarge => write!(
                f,
                "the enrichment reply is over {MAX_REPLY_BODY_BYTES} bytes"
            ),
            Failure::NotAResponse => {
                f.write_str("the enrichment reply is not a Responses API response")
            }
            Failure::Failed(status) => write!(f, "the enrichment response {status}"),
            Failure::NoText => f.write_str("the enrichment response has no output text"),
        }
    }
}

/// An answer read from a reply: its text, and whether it was cut to [`MAX_ANSWER_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub cut: bool,
}

/// The answer of a Responses API reply body (see the module doc).
pub fn answer(body: &[u8]) -> Result<Answer, Failure> {
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        text: Option<String>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        content: Option<Vec<Part>>,
    }
    #[derive(Deserialize)]
    struct Response {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        error: Option<Value>,
        output: Vec<Item>,
    }
    if body.len() > MAX_REPLY_BODY_BYTES {
        return Err(Failure::TooLarge);
    }
    let response: Response = serde_json::from_slice(body).map_err(|_| Failure::NotAResponse)?;
    if let Some(err) = response.error.filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(|m| cut_to(m, 200).into_owned())
            .unwrap_or_default();
        return Err(Failure::Failed(concat(&["reports an error: ", &message])));
    }
    if let Some(status) = response.status.as_deref() {
        if matches!(status, "failed" | "cancelled") {
            return Err(Failure::Failed(concat(&["is ", status])));
        }
    }
    let texts: Vec<String> = response
        .output
        .into_iter()
        .filter(|item| item.kind == "message")
        .map(|item| {
            item.content
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.kind == "output_text")
                .filter_map(|p| p.text)
                .collect::<String>()
        })
        .filter(|t| !t.trim().is_empty())
        .collect();
    if texts.is_empty() {
        return Err(Failure::NoText);
    }
    let joined = texts.join("\n\n");
    Ok(match cut_to(&joined, MAX_ANSWER_BYTES) {
        Cow::Borrowed(_) => Answer {
            text: joined,
            cut: false,
        },
        Cow::Owned(text) => Answer { text, cut: true },
    })
}

/// The client's chat `body` with `answer` put in through `template` before its last user
/// message (see [`Inject`]).
pub fn inject(
    body: &[u8],
    template: &Template,
    answer: &str,
    how: Inject,
) -> Result<Vec<u8>, ReadError> {
    let text = std::str::from_utf8(body).map_err(|_| ReadError::NotAnObject)?;
    let top = json_edit::object(text, 0).ok_or(ReadError::NotAnObject)?;
    let span = messages_member(&top)?.value.clone();
    let raw = text.get(span.clone()).ok_or(ReadError::NoConversation)?;
    let messages = json_edit::array(raw, span.start).ok_or(ReadError::NoConversation)?;
    let context = template.render(&|slot| match slot {
        Slot::Answer => Cow::Borrowed(answer),
        _ => Cow::Borrowed(""),
    });
    let last_user = messages.elements.iter().rev().find_map(|el| {
        let obj = json_edit::object(text.get(el.clone())?, el.start)?;
        let role = obj.members.iter().find(|m| m.key == "role")?;
        let role: String = serde_json::from_str(text.get(role.value.clone())?).ok()?;
        (role == "user").then_some((el.clone(), obj))
    });
    let (element, message) = last_user.ok_or(ReadError::NoConversation)?;
    let mut edits = Edits::default();
    let content = message
        .members
        .iter()
        .find(|m| m.key == "content")
        .map(|m| m.value.clone());
    let as_string = content
        .clone()
        .and_then(|c| serde_json::from_str::<String>(text.get(c)?).ok());
    let as_parts = content
        .clone()
        .and_then(|c| json_edit::array(text.get(c.clone())?, c.start));
    match (how, content, as_string, as_parts) {
        (Inject::UserTurn, Some(span), Some(theirs), _) => {
            edits.replace(span, quoted(&concat(&[&context, "\n\n", &theirs])));
        }
        (Inject::UserTurn, Some(_), None, Some(parts)) => {
            let part = concat(&[r#"{"type":"text","text":"#, &quoted(&context), "}"]);
            let sep = if parts.elements.is_empty() { "" } else { "," };
            edits.insert(parts.open + 1, concat(&[&part, sep]));
        }
        _ => {
            let message = concat(&[r#"{"role":"system","content":"#, &quoted(&context), "},"]);
            edits.insert(element.start, message);
        }
    }
    Ok(edits.apply(body))
}

#[cfg(test)]
mod tests;
