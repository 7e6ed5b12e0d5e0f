//! What of the conversation the classifier sees, within its context budget: the latest user
//! turn always, then prior turns of the dialogue (user and assistant) newest first while they
//! fit, so the oldest are the ones cut. System, developer and tool messages are left out (they
//! are the client's instructions and tools' output, not what the user asks), and so are empty
//! turns. Each turn's `<details>` blocks are dropped first; images never were text.
//!
//! The budget is in tokens estimated as everywhere else in the product: a quarter of the
//! text's UTF-8 bytes (`filter/core/src/global_limits.rs`), so a budget of `n` tokens holds
//! `4 n` bytes of turn text (the role names and the template's own text are not counted).
//! A turn fits when it fits whole: exactly at the budget fits, one byte over does not, and the
//! turns older than the first that does not fit are cut with it (the history stays contiguous).
//!
//! A latest turn larger than the whole budget is cut to it keeping both ends, with `…` between
//! them: a request's task is as often at its start ("Summarise this: …") as at its end
//! ("… Why does this fail?"), and a classifier needs the task, not the middle of a paste.

use std::borrow::Cow;

use super::turns::{strip_details, Turn};

/// What is put between the kept ends of a latest turn cut to the budget.
pub const CUT_MARK: &str = "\n…\n";

/// The conversation as the classifier sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The latest user turn's text, cut to the budget when it is larger.
    pub latest: String,
    /// Whether `latest` was cut.
    pub latest_cut: bool,
    /// Prior dialogue turns that fit, oldest first: (role, text).
    pub history: Vec<(String, String)>,
    /// Prior dialogue turns left out for the budget.
    pub dropped: usize,
    /// Bytes of turn text kept (at most the budget's).
    pub bytes: usize,
}

/// The bytes of text a budget of `tokens` holds.
pub fn budget_bytes(tokens: u32) -> usize {
    (tokens as usize).saturating_mul(4)
}

/// The classifier's view of `turns` within `budget_tokens`; `None` without a user turn.
pub fn build(turns: &[Turn], budget_tokens: u32) -> Option<Context> {
    let budget = budget_bytes(budget_tokens);
    let last_user = turns.iter().rposition(Turn::is_user)?;
    let latest_text = strip_details(&turns.get(last_user)?.text).into_owned();
    let (latest, latest_cut) = match cut_to(&latest_text, budget) {
        Cow::Borrowed(_) => (latest_text, false),
        Cow::Owned(cut) => (cut, true),
    };
    let mut left = budget.saturating_sub(latest.len());
    let mut history = Vec::new();
    let mut prior = turns
        .get(..last_user)
        .unwrap_or(&[])
        .iter()
        .rev()
        .filter(|t| t.is_dialogue())
        .map(|t| (t, strip_details(&t.text)))
        .filter(|(_, text)| !text.trim().is_empty());
    let mut dropped = 0;
    for (turn, text) in prior.by_ref() {
        if text.len() > left {
            dropped = 1;
            break;
        }
        left -= text.len();
        history.push((turn.role.clone(), text.into_owned()));
    }
    dropped += prior.count();
    history.reverse();
    Some(Context {
        bytes: budget - left,
        latest,
        latest_cut,
        history,
        dropped,
    })
}

/// `text` when it fits `budget` bytes; else its start and its end around [`CUT_MARK`], at
/// most `budget` bytes in all, cut at character boundaries.
pub fn cut_to(text: &str, budget: usize) -> Cow<'_, str> {
    if text.len() <= budget {
        return Cow::Borrowed(text);
    }
    if budget < CUT_MARK.len() + 2 {
        return Cow::Owned(
            text.get(..floor_boundary(text, budget))
                .unwrap_or("")
                .to_string(),
        );
    }
    let room = budget - CUT_MARK.len();
    let head = floor_boundary(text, room / 2);
    let tail_len = room - room / 2;
    let tail = ceil_boundary(text, text.len() - tail_len);
    let mut out = String::with_capacity(budget);
    out.push_str(text.get(..head).unwrap_or(""));
    out.push_str(CUT_MARK);
    out.push_str(text.get(tail..).unwrap_or(""));
    Cow::Owned(out)
}

/// The largest character boundary of `text` at or below `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The smallest character boundary of `text` at or above `at`.
fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The history as the `{{history}}` placeholder shows it: one `role: text` block per turn,
/// oldest first, separated by blank lines; `(none)` when there is none.
pub fn render_history(history: &[(String, String)]) -> String {
    if history.is_empty() {
        return "(none)".into();
    }
    let blocks: Vec<String> = history
        .iter()
        .map(|(role, text)| crate::text::concat(&[role, ": ", text]))
        .collect();
    blocks.join("\n\n")
}

#[cfg(test)]
mod tests;
