//! A route's edits of the client's request body, made in place on its bytes
//! ([`crate::json_edit`]): every member not edited reaches the route's model as sent.
//!
//! In order:
//! 1. The system prompt (chat only: a legacy completions `prompt` has no roles): the route's
//!    prompt, its date and time placeholders filled from the route's clock; with a clock and no
//!    such placeholder, `Current date and time: …` is appended to it (or is the whole prompt
//!    when the route has none). `prepend` puts it in a system message of its own before the
//!    client's messages; `merge` puts it at the start of the client's first message when that
//!    is a `system` or `developer` one (a blank line between; a part of its own when the
//!    content is a list of parts), and prepends otherwise.
//! 2. `max_tokens` and `max_completion_tokens`: raised to the route's floor when the client set
//!    a lower integer (a client that set none keeps the backend's default, which a floor would
//!    lower), or removed. Every key a parser reads as one of them is edited.
//! 3. `set`: each parameter replaces the client's (every key a parser reads as it) or is added.

use std::borrow::Cow;

use super::clock::Clock;
use super::template::{Slot, Template};
use super::turns::{messages_member, ReadError};
use crate::api::Api;
use crate::json_body::quoted;
use crate::json_edit::{self, Edits, Object};
use crate::text::concat;

/// How a route's system prompt meets the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPromptMode {
    Prepend,
    Merge,
}

/// What a route does to `max_tokens` and `max_completion_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokens {
    Keep,
    /// Raised to at least this.
    Floor(u32),
    Remove,
}

/// A route's edits, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Transforms {
    /// The route's system prompt (placeholders: [`Slot::CLOCK`]).
    pub system_prompt: Option<Template>,
    pub mode: SystemPromptMode,
    /// The route's time zone, when it injects the date and time.
    pub clock: Option<Clock>,
    pub max_tokens: MaxTokens,
    /// Parameters set: (key, JSON value), in the configuration's order.
    pub set: Vec<(String, String)>,
}

impl Transforms {
    /// No edit at all.
    pub fn none() -> Transforms {
        Transforms {
            system_prompt: None,
            mode: SystemPromptMode::Prepend,
            clock: None,
            max_tokens: MaxTokens::Keep,
            set: Vec::new(),
        }
    }

    /// The system prompt's text at `now_ms`, when the route has one (or a clock).
    pub fn system_text(&self, now_ms: u64) -> Option<String> {
        let local = self.clock.as_ref().map(|c| (c.zone(), c.at(now_ms)));
        let value = |slot: Slot| -> Cow<'_, str> {
            let Some((zone, t)) = &local else {
                return Cow::Borrowed("");
            };
            Cow::Owned(match slot {
                Slot::Date => t.date.clone(),
                Slot::Time => t.time.clone(),
                Slot::Weekday => t.weekday.to_string(),
                Slot::TimeZone => zone.to_string(),
                Slot::DateTime => t.datetime.clone(),
                _ => String::new(),
            })
        };
        let now_line = local
            .as_ref()
            .map(|(_, t)| concat(&["Current date and time: ", &t.datetime]));
        match (&self.system_prompt, now_line) {
            (Some(p), Some(line)) if !p.uses_any(&Slot::CLOCK) => {
                Some(concat(&[&p.render(&value), "\n\n", &line]))
            }
            (Some(p), _) => Some(p.render(&value)),
            (None, line) => line,
        }
    }

    /// `body` (a client's chat or completions request, already checked to be a JSON object)
    /// with the route's edits made at `now_ms`; borrowed when nothing changes.
    pub fn apply<'b>(
        &self,
        api: Api,
        body: &'b [u8],
        now_ms: u64,
    ) -> Result<Cow<'b, [u8]>, ReadError> {
        let text = std::str::from_utf8(body).map_err(|_| ReadError::NotAnObject)?;
        let top = json_edit::object(text, 0).ok_or(ReadError::NotAnObject)?;
        let mut edits = Edits::default();
        if api == Api::Chat {
            if let Some(prompt) = self.system_text(now_ms) {
                let messages = messages_member(&top)?;
                add_system_prompt(text, messages.value.clone(), &prompt, self.mode, &mut edits)?;
            }
        }
        self.edit_max_tokens(body, &top, &mut edits);
        let mut added: Vec<(&str, &str)> = Vec::new();
        for (key, value) in &self.set {
            let mut found = false;
            for m in top.read_as(key) {
                edits.replace(m.value.clone(), value.clone());
                found = true;
            }
            if !found {
                added.push((key, value));
            }
        }
        top.append(&mut edits, &added);
        Ok(if edits.is_empty() {
            Cow::Borrowed(body)
        } else {
            Cow::Owned(edits.apply(body))
        })
    }

    fn edit_max_tokens(&self, body: &[u8], top: &Object, edits: &mut Edits) {
        let is_max = |key: &str| {
            crate::json_body::may_read_as(key, "max_tokens")
                || crate::json_body::may_read_as(key, "max_completion_tokens")
        };
        match self.max_tokens {
            MaxTokens::Keep => {}
            MaxTokens::Remove => top.remove_where(body, edits, |m| is_max(&m.key)),
            MaxTokens::Floor(floor) => {
                for m in top.members.iter().filter(|m| is_max(&m.key)) {
                    let value = body.get(m.value.clone()).unwrap_or(&[]);
                    if below_floor(value, floor) {
                        edits.replace(m.value.clone(), floor.to_string());
                    }
                }
            }
        }
    }
}

/// Whether a max-tokens value (raw JSON) must be raised to `floor`: anything but `null` (no
/// limit) and a number at or above it. Servers read `1000.0` as 1000, `"5"` as 5 and `-1` as
/// no limit at all, so every spelling below the floor is raised, not only plain integers.
fn below_floor(value: &[u8], floor: u32) -> bool {
    let text = std::str::from_utf8(value).unwrap_or_default().trim();
    if text == "null" {
        return false;
    }
    match text.parse::<f64>() {
        Ok(n) => n.is_nan() || n < f64::from(floor),
        Err(_) => true,
    }
}

/// Collects the edits putting `prompt` into the `messages` array at `span` of `text`.
fn add_system_prompt(
    text: &str,
    span: std::ops::Range<usize>,
    prompt: &str,
    mode: SystemPromptMode,
    edits: &mut Edits,
) -> Result<(), ReadError> {
    let raw = text.get(span.clone()).ok_or(ReadError::NoConversation)?;
    let messages = json_edit::array(raw, span.start).ok_or(ReadError::NoConversation)?;
    if mode == SystemPromptMode::Merge {
        if let Some(first) = messages.elements.first() {
            if merge_into(text, first.clone(), prompt, edits) {
                return Ok(());
            }
        }
    }
    let message = concat(&[r#"{"role":"system","content":"#, &quoted(prompt), "}"]);
    let sep = if messages.elements.is_empty() {
        ""
    } else {
        ","
    };
    edits.insert(messages.open + 1, concat(&[&message, sep]));
    Ok(())
}

/// Puts `prompt` at the start of the message at `span` when it is a system or developer
/// message with text content; whether it did.
fn merge_into(text: &str, span: std::ops::Range<usize>, prompt: &str, edits: &mut Edits) -> bool {
    let Some(message) = text
        .get(span.clone())
        .and_then(|raw| json_edit::object(raw, span.start))
    else {
        return false;
    };
    let exact = |field: &'static str| {
        let mut found = message.read_as(field);
        match (found.next(), found.next()) {
            (Some(m), None) if m.key == field && !m.escaped => Some(m.value.clone()),
            _ => None,
        }
    };
    let role = exact("role").and_then(|r| serde_json::from_str::<String>(text.get(r)?).ok());
    if !matches!(role.as_deref(), Some("system" | "developer")) {
        return false;
    }
    let Some(content) = exact("content") else {
        return false;
    };
    let raw = text.get(content.clone()).unwrap_or("");
    if let Ok(theirs) = serde_json::from_str::<String>(raw) {
        let merged = concat(&[prompt, "\n\n", &theirs]);
        edits.replace(content, quoted(&merged));
        return true;
    }
    let Some(parts) = json_edit::array(raw, content.start) else {
        return false;
    };
    let part = concat(&[r#"{"type":"text","text":"#, &quoted(prompt), "}"]);
    let sep = if parts.elements.is_empty() { "" } else { "," };
    edits.insert(parts.open + 1, concat(&[&part, sep]));
    true
}

#[cfg(test)]
mod tests;
