//! Finding backend names in a text: each name's case-insensitive searcher, and the test of
//! whether a match stands as a word (see the module doc of [`super`]), JSON escapes included.

use std::ops::Range;

use memchr::memmem::Finder;

use crate::json_scan::is_escaped;

/// One backend name and its searcher for any ASCII case: memmem for the lower-cased name in
/// the lower-cased text (positions and lengths are the same in both). One pass to lower a text
/// serves every name; memmem keeps the search linear and at memchr speed, which a search for the
/// first byte followed by a comparison would not be on a text of near misses.
#[derive(Debug, Clone)]
pub(super) struct CiName {
    /// The name as written.
    pub(super) needle: Vec<u8>,
    lower: Finder<'static>,
}

impl CiName {
    pub(super) fn new(needle: &[u8]) -> Self {
        CiName {
            needle: needle.to_vec(),
            lower: Finder::new(&needle.to_ascii_lowercase()).into_owned(),
        }
    }

    /// Where the name starts in the text whose lower-cased copy is `lower`, in any case,
    /// without overlaps, in order.
    pub(super) fn find_iter<'a>(&'a self, lower: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        self.lower.find_iter(lower)
    }

    /// Whether `text` is the name, in any ASCII case.
    pub(super) fn is(&self, text: &[u8]) -> bool {
        self.needle.eq_ignore_ascii_case(text)
    }
}

/// Where `names` stand as words in `hay` (see the module doc), in any ASCII case, a longer name
/// winning over a shorter one it contains; in order, without overlaps. `lower` is `hay`
/// lower-cased. `json`: `hay` is JSON text, whose escapes end words. Linear in `hay` per name,
/// plus a sort: a backend repeating a name a million times costs no more than its bytes.
pub(super) fn word_spans(
    names: &[CiName],
    hay: &[u8],
    lower: &[u8],
    json: bool,
) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    for finder in names {
        let name = &finder.needle;
        // Spans of longer names so far, sorted and disjoint, to test overlaps by bisection.
        let taken = spans.len();
        for at in finder.find_iter(lower) {
            let span = at..at + name.len();
            let earlier = spans.get(..taken).unwrap_or(&[]);
            let after = earlier.partition_point(|s| s.end <= span.start);
            let overlaps = earlier.get(after).is_some_and(|s| s.start < span.end);
            if !overlaps && is_word_at(hay, span.clone(), json) {
                spans.push(span);
            }
        }
        spans.sort_unstable_by_key(|s| s.start);
    }
    spans
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the name at `span` is to be renamed: any name with a non-word byte is; a plain one
/// only where it stands as a word, not continuing a word before or after it.
pub(super) fn is_word_at(hay: &[u8], span: Range<usize>, json: bool) -> bool {
    if !hay
        .get(span.clone())
        .is_some_and(|name| name.iter().all(|b| is_word_byte(*b)))
    {
        return true;
    }
    let first = hay.get(span.start).copied().is_some_and(is_word_byte);
    let last = span
        .end
        .checked_sub(1)
        .and_then(|i| hay.get(i))
        .copied()
        .is_some_and(is_word_byte);
    (!first || starts_word(hay, span.start, json)) && (!last || ends_word(hay, span.end))
}

fn starts_word(hay: &[u8], at: usize, json: bool) -> bool {
    let byte = |i: Option<usize>| i.and_then(|i| hay.get(i)).copied();
    let Some(prev) = byte(at.checked_sub(1)) else {
        return true;
    };
    if prev == b'.' {
        return !byte(at.checked_sub(2)).is_some_and(is_word_byte);
    }
    if !is_word_byte(prev) {
        return true;
    }
    // In JSON a letter or digit may be the end of an escape: `\n`, `\u00e9`.
    json && (matches!(prev, b'b' | b'f' | b'n' | b'r' | b't') && is_escaped(hay, at - 1)
        || at >= 6
            && hay.get(at - 5) == Some(&b'u')
            && is_escaped(hay, at - 5)
            && hay
                .get(at - 4..at)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

fn ends_word(hay: &[u8], end: usize) -> bool {
    match hay.get(end) {
        None => true,
        Some(b'.') => !hay.get(end + 1).copied().is_some_and(is_word_byte),
        Some(next) => !is_word_byte(*next),
    }
}
