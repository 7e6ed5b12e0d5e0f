//! One SSE event read and edited: its lines and `data:` value, whether it is `[DONE]` or the
//! usage-only chunk, its token count, and the event written again with every backend name
//! renamed (an error event as OpenAI's envelope).

use std::borrow::Cow;

use memchr::{memchr, memchr2, memmem};

use crate::model_names::{NameRewriter, ScanState};

/// The value of a `data:` line (one leading space removed, the line end dropped).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data:")?;
    let value = value.strip_prefix(b" ").unwrap_or(value);
    Some(strip_line_end(value))
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// An event's data: its `data:` lines joined with LF (borrowed when there is one).
pub(crate) fn event_data(event: &[u8]) -> Cow<'_, [u8]> {
    let mut values = lines(event).filter_map(data_value);
    let Some(first) = values.next() else {
        return Cow::Borrowed(&[]);
    };
    let Some(second) = values.next() else {
        return Cow::Borrowed(first);
    };
    let mut joined = [first, second].join(&b'\n');
    for v in values {
        joined.push(b'\n');
        joined.extend_from_slice(v);
    }
    Cow::Owned(joined)
}

/// The token count of an event that carries usage (cheap test first: most do not), wherever
/// its API puts it (see [`crate::json_body::total_tokens`]).
pub(super) fn usage_of(event: &[u8]) -> Option<u64> {
    memmem::find(event, b"\"usage\"")?;
    crate::json_body::total_tokens(&event_data(event))
}

/// The final chunk OpenAI sends when asked for usage: no choices, just usage.
pub(super) fn is_usage_only(event: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<serde::de::IgnoredAny>>,
    }
    serde_json::from_slice::<Chunk>(&event_data(event))
        .is_ok_and(|c| c.choices.is_some_and(|v| v.is_empty()))
}

pub(super) fn is_done(event: &[u8]) -> bool {
    lines(event).any(|line| data_value(line).is_some_and(|v| v.trim_ascii_end() == b"[DONE]"))
}

/// Splits into lines, each with its terminator.
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match memchr2(b'\n', b'\r', rest) {
            Some(at) if rest.get(at) == Some(&b'\r') && rest.get(at + 1) == Some(&b'\n') => at + 2,
            Some(at) => at + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// Appends the event with every backend name renamed: JSON data as JSON, any other data and
/// the `event:`, `id:` and `retry:` lines as plain text after their field name; comments lose
/// their text and fields the spec ignores are dropped (see [`rewrite_field_line`]). An event
/// whose JSON data is an error object goes out as OpenAI's envelope, with only its fields (see
/// [`crate::backend_errors::trimmed`]): then `true`.
pub(super) fn rewrite_event(names: &NameRewriter, event: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let data = event_data(event);
    let is_json = matches!(data.trim_ascii_start().first(), Some(b'{' | b'[' | b'"'));
    if is_json && memmem::find(&data, b"\"error\"").is_some() {
        if let Some(envelope) = crate::backend_errors::trimmed(&data, names) {
            for line in lines(event).filter(|l| !l.starts_with(b"data:")) {
                if strip_line_end(line).is_empty() {
                    continue;
                }
                rewrite_field_line(names, line, out);
            }
            out.extend_from_slice(b"data: ");
            out.extend(envelope);
            out.extend_from_slice(b"\n\n");
            return true;
        }
    }
    let mut state = ScanState::default();
    let mut changed = false;
    for line in lines(event) {
        match line.strip_prefix(b"data:") {
            Some(value) => {
                let skip = usize::from(value.first() == Some(&b' '));
                out.extend_from_slice(line.get(..5 + skip).unwrap_or(&[]));
                let value = value.get(skip..).unwrap_or(&[]);
                changed |= if is_json {
                    names.rewrite_fragment(&mut state, value, out)
                } else {
                    names.rewrite_text(value, out)
                };
            }
            None => changed |= rewrite_field_line(names, line, out),
        }
    }
    if !changed {
        out.truncate(start);
        out.extend_from_slice(event);
    }
    false
}

/// A line other than `data:`. `event:`, `id:` and `retry:` are renamed as text after their
/// field name; a comment keeps only its colon (a keep-alive still, its text meant for no one);
/// a field the SSE spec ignores (any other name) is dropped, as clients would ignore it.
/// Returns whether the line changed.
fn rewrite_field_line(names: &NameRewriter, line: &[u8], out: &mut Vec<u8>) -> bool {
    let content = strip_line_end(line);
    let ending = line.get(content.len()..).unwrap_or(&[]);
    let colon = memchr(b':', content);
    let field = content.get(..colon.unwrap_or(content.len())).unwrap_or(&[]);
    match (field, colon) {
        // The blank line ending the event, and a `data` field with no value.
        (b"", None) | (b"data", None) => {
            out.extend_from_slice(line);
            false
        }
        (b"", Some(_)) => {
            out.push(b':');
            out.extend_from_slice(ending);
            content.len() > 1
        }
        (b"event" | b"id" | b"retry", _) => {
            let (field, value) = line.split_at(colon.map_or(line.len(), |c| c + 1));
            out.extend_from_slice(field);
            names.rewrite_text(value, out)
        }
        _ => true,
    }
}
