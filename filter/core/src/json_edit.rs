//! Edits of a JSON text made on its original bytes, the way [`crate::json_body`] replaces the
//! `model`: an object's members and an array's elements are located (with serde_json's
//! borrowed `RawValue`s, so the text is validated strictly), the edits are collected as byte
//! splices against those locations, and applied in one pass. Every byte no edit touches
//! reaches the backend as the client sent it: unknown fields, number spellings, whitespace,
//! key order and escapes.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json_scan::skip_whitespace;

/// One member of an object: its key decoded, its value's byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    /// The key is written with escapes (`"m\u0065ssages"`): some parsers read it otherwise.
    pub escaped: bool,
    pub value: Range<usize>,
}

/// An object's members in the order written (duplicates kept), with the positions of its
/// braces; ranges are offsets into the text given to [`object`] plus its `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The offset of `{`.
    pub open: usize,
    pub members: Vec<Member>,
}

/// An array's elements' byte ranges, and the offset of its `[`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    pub open: usize,
    pub elements: Vec<Range<usize>>,
}

/// Where `part`, a slice borrowed from `text`, lies in it.
fn span_in(text: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    start..start.saturating_add(part.len())
}

struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    out.push((key.0, map.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key, borrowed when written without escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The members of the JSON object `text` (strict JSON, whitespace around it allowed), with
/// ranges offset by `base` (where `text` starts in the body). `None` when `text` is not one.
pub fn object(text: &str, base: usize) -> Option<Object> {
    let Entries(entries) = serde_json::from_str(text).ok()?;
    let open = skip_whitespace(text.as_bytes(), 0);
    let members = entries
        .into_iter()
        .map(|(key, raw)| {
            let span = span_in(text, raw.get());
            Member {
                escaped: matches!(key, Cow::Owned(_)),
                key: key.into_owned(),
                value: span.start + base..span.end + base,
            }
        })
        .collect();
    Some(Object {
        open: open + base,
        members,
    })
}

/// The elements of the JSON array `text`, ranges offset by `base`. `None` when it is not one.
pub fn array(text: &str, base: usize) -> Option<Array> {
    struct Elements<'a>(Vec<&'a RawValue>);
    impl<'de> Deserialize<'de> for Elements<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Elements<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON array")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some(v) = seq.next_element()? {
                        out.push(v);
                    }
                    Ok(Elements(out))
                }
            }
            d.deserialize_seq(V)
        }
    }
    let Elements(raws) = serde_json::from_str(text).ok()?;
    let open = skip_whitespace(text.as_bytes(), 0);
    let elements = raws
        .into_iter()
        .map(|raw| {
            let span = span_in(text, raw.get());
            span.start + base..span.end + base
        })
        .collect();
    Some(Array {
        open: open + base,
        elements,
    })
}

/// Splices collected against one text, applied together by [`Edits::apply`]. Ranges must not
/// overlap; insertions at one offset keep the order they were added in.
#[derive(Debug, Default)]
pub struct Edits {
    splices: Vec<(Range<usize>, String)>,
}

impl Edits {
    /// Replaces the bytes of `span` with `with`.
    pub fn replace(&mut self, span: Range<usize>, with: String) {
        self.splices.push((span, with));
    }

    /// Inserts `text` at offset `at`.
    pub fn insert(&mut self, at: usize, text: String) {
        self.splices.push((at..at, text));
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.splices.is_empty()
    }

    /// `body` with every splice made. A splice overlapping an earlier one (a bug of the caller)
    /// is dropped rather than corrupting the text.
    pub fn apply(mut self, body: &[u8]) -> Vec<u8> {
        self.splices.sort_by_key(|(r, _)| r.start);
        let added: usize = self.splices.iter().map(|(_, t)| t.len()).sum();
        let mut out = Vec::with_capacity(body.len() + added);
        let mut cursor = 0;
        for (range, text) in self.splices {
            if range.start < cursor || range.end < range.start {
                continue;
            }
            out.extend_from_slice(body.get(cursor..range.start).unwrap_or(&[]));
            out.extend_from_slice(text.as_bytes());
            cursor = range.end;
        }
        out.extend_from_slice(body.get(cursor..).unwrap_or(&[]));
        out
    }
}

impl Object {
    /// The offset where member `i`'s key starts in `body` (the first `"` after the `{` or after
    /// the comma ending member `i - 1`).
    fn key_start(&self, body: &[u8], i: usize) -> usize {
        let from = match i.checked_sub(1).and_then(|p| self.members.get(p)) {
            None => self.open + 1,
            Some(prev) => {
                let comma = skip_whitespace(body, prev.value.end);
                comma + 1
            }
        };
        skip_whitespace(body, from)
    }

    /// Collects the removal of the members for which `remove` holds, with the commas and
    /// whitespace between them, so the object stays well-formed.
    pub fn remove_where(&self, body: &[u8], edits: &mut Edits, remove: impl Fn(&Member) -> bool) {
        let n = self.members.len();
        let mut i = 0;
        while i < n {
            if !self.members.get(i).is_some_and(&remove) {
                i += 1;
                continue;
            }
            let first = i;
            while i < n && self.members.get(i).is_some_and(&remove) {
                i += 1;
            }
            let last_end = self.members.get(i - 1).map_or(0, |m| m.value.end);
            let span = if i < n {
                // A kept member follows: up to its key, the separator after the run included.
                self.key_start(body, first)..self.key_start(body, i)
            } else if let Some(prev) = first.checked_sub(1).and_then(|p| self.members.get(p)) {
                // The run ends the object: from the end of the kept member before it.
                prev.value.end..last_end
            } else {
                self.key_start(body, first)..last_end
            };
            edits.replace(span, String::new());
        }
    }

    /// Collects the addition of `members` (keys, and values already JSON) at the object's end,
    /// in order, as one insertion.
    pub fn append(&self, edits: &mut Edits, members: &[(&str, &str)]) {
        let mut text = String::new();
        for (i, (key, value)) in members.iter().enumerate() {
            if i > 0 || !self.members.is_empty() {
                text.push(',');
            }
            text.push_str(&crate::json_body::quoted(key));
            text.push(':');
            text.push_str(value);
        }
        if text.is_empty() {
            return;
        }
        match self.members.last() {
            Some(last) => edits.insert(last.value.end, text),
            None => edits.insert(self.open + 1, text),
        }
    }

    /// The members whose key some parser reads as `field` (as `json_body::may_read_as` decides).
    pub fn read_as<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .iter()
            .filter(move |m| crate::json_body::may_read_as(&m.key, field))
    }
}

#[cfg(test)]
mod tests;
