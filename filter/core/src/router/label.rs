//! The classifier's reply read as a label, strictly: one known label, or JSON naming one. The
//! reply's reasoning is dropped first (`<think>…</think>` blocks, an unclosed one to the end,
//! and everything before a lone `</think>`, which models whose template opens the block in the
//! prompt write). Then the answer must be:
//!
//! - exactly one label, compared without regard to case, possibly wrapped in quotes, markdown
//!   emphasis or code ticks, and followed or preceded by punctuation (`**COMPLEX**.`); or
//! - a JSON object `{"label": "...", "confidence": 0.0..=1.0}` (confidence optional), possibly
//!   in a ```` ```json ```` fence.
//!
//! Anything else is no label, with a [`Unknown`] reason: empty, two labels, an unknown word, a
//! sentence, malformed JSON, a confidence out of range or under the router's `min_confidence`.
//! The request then takes the default route. Work is linear in the reply, and a reply over
//! [`MAX_REPLY_BYTES`] is not read at all.

use std::fmt;

use serde::Deserialize;

use super::turns::strip_blocks;

/// The longest classifier reply read (reasoning included); a longer one is no label.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// A label the reply named: the index of the label in the list given, and the confidence when
/// the reply gave one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parsed {
    pub label: usize,
    pub confidence: Option<f64>,
}

/// Why a reply named no label.
#[derive(Debug, Clone, PartialEq)]
pub enum Unknown {
    Empty,
    TooLong,
    /// The answer is not one of the labels.
    NotALabel,
    /// The answer names several labels.
    SeveralLabels,
    /// JSON that is not `{"label": string, "confidence"?: number}`.
    BadJson,
    /// A confidence outside 0..=1.
    BadConfidence,
    /// A confidence under the router's `min_confidence`.
    LowConfidence(f64),
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Empty => f.write_str("the classifier's answer is empty"),
            Unknown::TooLong => write!(f, "the classifier's reply is over {MAX_REPLY_BYTES} bytes"),
            Unknown::NotALabel => f.write_str("the classifier's answer is not a known label"),
            Unknown::SeveralLabels => f.write_str("the classifier's answer names several labels"),
            Unknown::BadJson => f.write_str(
                "the classifier's JSON is not {\"label\": string, \"confidence\": number}",
            ),
            Unknown::BadConfidence => f.write_str("the classifier's confidence is not within 0..1"),
            Unknown::LowConfidence(c) => {
                write!(f, "the classifier's confidence {c} is under min_confidence")
            }
        }
    }
}

/// The reply's answer with its reasoning dropped (see the module doc).
pub fn strip_reasoning(reply: &str) -> &str {
    // A lone closing tag: what comes before it is reasoning whose opening tag was the prompt's.
    let lower_close = find_ascii_ci(reply, "</think>");
    match (find_ascii_ci(reply, "<think"), lower_close) {
        (None, Some(close)) => reply.get(close + "</think>".len()..).unwrap_or(""),
        (Some(open), Some(close)) if close < open => {
            reply.get(close + "</think>".len()..).unwrap_or("")
        }
        _ => reply,
    }
}

/// Byte offset of `needle` (ASCII, lower case) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.len();
    hay.as_bytes()
        .windows(n)
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Reads `reply` as one of `labels` (matched without regard to ASCII case), holding a
/// confidence to `min_confidence` when the reply gives one.
pub fn parse(reply: &str, labels: &[&str], min_confidence: Option<f64>) -> Result<Parsed, Unknown> {
    if reply.len() > MAX_REPLY_BYTES {
        return Err(Unknown::TooLong);
    }
    let answer = strip_reasoning(reply);
    let answer = strip_blocks(answer, "<think", "</think>");
    let answer = unfence(answer.trim());
    if answer.is_empty() {
        return Err(Unknown::Empty);
    }
    let parsed = if answer.starts_with('{') {
        parse_json(answer, labels)?
    } else {
        Parsed {
            label: parse_word(answer, labels)?,
            confidence: None,
        }
    };
    match (parsed.confidence, min_confidence) {
        (Some(c), Some(min)) if c < min => Err(Unknown::LowConfidence(c)),
        _ => Ok(parsed),
    }
}

/// The text inside a markdown code fence (```` ```json ... ``` ````), or the text itself.
fn unfence(text: &str) -> &str {
    let Some(inner) = text.strip_prefix("```") else {
        return text;
    };
    let Some(inner) = inner.strip_suffix("```") else {
        return text;
    };
    let inner = inner.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    inner.trim()
}

fn parse_json(answer: &str, labels: &[&str]) -> Result<Parsed, Unknown> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reply {
        label: String,
        #[serde(default)]
        confidence: Option<f64>,
    }
    let reply: Reply = serde_json::from_str(answer).map_err(|_| Unknown::BadJson)?;
    if let Some(c) = reply.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(Unknown::BadConfidence);
        }
    }
    Ok(Parsed {
        label: parse_word(&reply.label, labels)?,
        confidence: reply.confidence,
    })
}

/// Characters allowed around the label: quotes, emphasis, code ticks, brackets, punctuation.
fn is_decoration(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '`'
                | '*'
                | '_'
                | '~'
                | '.'
                | ','
                | ';'
                | ':'
                | '!'
                | '?'
                | '('
                | ')'
                | '['
                | ']'
                | '<'
                | '>'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '«'
                | '»'
        )
}

/// The one label `word` is, once decorations are trimmed from its ends.
fn parse_word(word: &str, labels: &[&str]) -> Result<usize, Unknown> {
    let core = word.trim_matches(is_decoration);
    if core.is_empty() {
        return Err(Unknown::Empty);
    }
    if let Some(i) = labels.iter().position(|l| l.eq_ignore_ascii_case(core)) {
        return Ok(i);
    }
    // Not one label: say whether it names several (a frequent failure worth telling apart).
    let named = core
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| labels.iter().any(|l| l.eq_ignore_ascii_case(w)))
        .count();
    Err(if named > 1 {
        Unknown::SeveralLabels
    } else {
        Unknown::NotALabel
    })
}

#[cfg(test)]
mod tests;
