//! A header map read from the host in one call and kept for the callbacks that follow, so that
//! lookups cost no host call and edits that would change nothing are never sent. Also the
//! proxy-wasm wire form of header lists, both ways.
//!
//! Wire form: a little-endian `u32` count, then a `u32` name length and a `u32` value length per
//! pair, then every name and value in order, each followed by a NUL byte.

use std::borrow::Cow;
use std::ops::Range;

/// The headers of one map as they stand: the host's bytes, indexed once, with the edits made
/// since laid over them. Names are matched exactly: Envoy hands them over in lower case, and the
/// filter asks in lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSnapshot {
    wire: Vec<u8>,
    /// Byte ranges of each name and value in `wire`, in order.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Headers set (`Some`) or removed (`None`) since, each name once.
    edits: Vec<(String, Option<String>)>,
}

impl HeaderSnapshot {
    /// A snapshot of the wire form; `None` when the bytes are not one.
    pub fn from_wire(wire: Vec<u8>) -> Option<Self> {
        let entries = index_pairs(&wire)?;
        Some(HeaderSnapshot {
            wire,
            entries,
            edits: Vec::new(),
        })
    }

    fn edit(&self, name: &str) -> Option<Option<&str>> {
        self.edits
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    /// The host's values of `name`, in order. Names are compared by length first: most
    /// entries differ in it, and a lookup runs for every header the filter reads or edits.
    fn host_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.entries
            .iter()
            .filter(move |(k, _)| {
                k.len() == name.len() && self.wire.get(k.clone()) == Some(name.as_bytes())
            })
            .map(move |(_, v)| self.wire.get(v.clone()).unwrap_or(&[]))
    }

    /// The first value of `name`; bytes that are not UTF-8 become U+FFFD.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.edit(name) {
            Some(edited) => edited.map(Cow::Borrowed),
            None => self.host_values(name).next().map(String::from_utf8_lossy),
        }
    }

    /// Whether setting `name` to `value` (`None`: removing it) would change the map.
    pub fn changes(&self, name: &str, value: Option<&str>) -> bool {
        if let Some(edited) = self.edit(name) {
            return edited != value;
        }
        let mut values = self.host_values(name);
        match value {
            None => values.next().is_some(),
            // Unchanged only when the host holds exactly this one value.
            Some(want) => values.next() != Some(want.as_bytes()) || values.next().is_some(),
        }
    }

    /// The names present now (host entries not removed since, and headers set since) that
    /// start with `prefix`, each once, in host order then edit order. Allocates nothing when
    /// none matches, the common case for the internal-header sweep on every request.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let host_names = self
            .entries
            .iter()
            .filter_map(|(k, _)| self.wire.get(k.clone()))
            .filter(|k| k.starts_with(prefix.as_bytes()))
            .map(String::from_utf8_lossy);
        for name in host_names {
            let removed = self.edit(&name) == Some(None);
            if !removed && !names.iter().any(|n| *n == name) {
                names.push(name.into_owned());
            }
        }
        for (name, value) in &self.edits {
            if value.is_some() && name.starts_with(prefix) && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The names in the map as it stands (edits included), each once, in the host's order with
    /// added names last.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::with_capacity(self.entries.len());
        let host = self
            .entries
            .iter()
            .filter_map(|(k, _)| std::str::from_utf8(self.wire.get(k.clone())?).ok());
        let added = self
            .edits
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.as_str());
        for name in host.chain(added) {
            if !names.contains(&name) && self.get(name).is_some() {
                names.push(name);
            }
        }
        names
    }

    /// Records an edit the host has made: every value of `name` replaced by `value`, or removed.
    pub fn apply(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self.edits.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.edits.push((name.to_string(), value)),
        }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Where each name and value of a header list lies; `None` when the bytes are truncated or
/// their lengths disagree.
fn index_pairs(bytes: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    let mut text = count.checked_mul(8)?.checked_add(4)?;
    if text > bytes.len() {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let key_len = read_u32(bytes, 4 + i * 8)?;
        let value_len = read_u32(bytes, 8 + i * 8)?;
        let key = text..text.checked_add(key_len)?;
        let value = key.end + 1..key.end + 1 + value_len;
        if value.end > bytes.len() {
            return None;
        }
        text = value.end + 1;
        entries.push((key, value));
    }
    Some(entries)
}

/// Decodes a header list; `None` when the bytes are not one. Bytes that are not UTF-8 become
/// U+FFFD.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let text = |r: &Range<usize>| String::from_utf8_lossy(bytes.get(r.clone()).unwrap_or(&[]));
    let entries = index_pairs(bytes)?;
    Some(
        entries
            .iter()
            .map(|(k, v)| (text(k).into_owned(), text(v).into_owned()))
            .collect(),
    )
}

/// Encodes a header list for the host (lengths beyond `u32` are not headers and are cut).
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(&'static str, &'static str)> {
        vec![
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("authorization", "Bearer sk-1"),
            ("x-empty", ""),
            ("accept", "a"),
            ("accept", "b"),
        ]
    }

    #[test]
    fn wire_form_round_trips() {
        let wire = encode_pairs(&sample());
        let decoded = decode_pairs(&wire).unwrap();
        let expect: Vec<(String, String)> = sample()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(decoded, expect);
        assert_eq!(decode_pairs(&encode_pairs(&[])).unwrap(), vec![]);
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        let wire = encode_pairs(&sample());
        for cut in 1..wire.len() - 1 {
            assert_eq!(decode_pairs(&wire[..cut]), None, "cut at {cut}");
        }
        // A count far beyond the bytes.
        assert_eq!(decode_pairs(&u32::MAX.to_le_bytes()), None);
    }

    fn snapshot() -> HeaderSnapshot {
        HeaderSnapshot::from_wire(encode_pairs(&sample())).unwrap()
    }

    #[test]
    fn lookups_take_the_first_value() {
        let snap = snapshot();
        assert_eq!(snap.get("authorization").as_deref(), Some("Bearer sk-1"));
        assert_eq!(snap.get("accept").as_deref(), Some("a"));
        assert_eq!(snap.get("x-empty").as_deref(), Some(""));
        assert_eq!(snap.get("x-missing"), None);
        let mut wire = encode_pairs(&[("x", "a?b")]);
        let at = wire.len() - 3;
        wire[at] = 0xff;
        let odd = HeaderSnapshot::from_wire(wire).unwrap();
        assert_eq!(odd.get("x").as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn only_edits_that_change_the_map_are_changes() {
        let snap = snapshot();
        assert!(!snap.changes("x-missing", None));
        assert!(!snap.changes(":path", Some("/v1/chat/completions")));
        assert!(snap.changes(":path", Some("/v2/chat/completions")));
        assert!(snap.changes("authorization", None));
        assert!(snap.changes("x-missing", Some("1")));
        // Two values becoming one is a change even when the first already matches.
        assert!(snap.changes("accept", Some("a")));
        assert!(!snap.changes("x-empty", Some("")));
    }

    #[test]
    fn names_with_prefix_follow_the_edits() {
        let mut s = HeaderSnapshot::from_wire(encode_pairs(&[
            ("x-airouter-backend", "a"),
            ("accept", "*/*"),
            ("x-airouter-backend", "b"),
            ("x-airouter-triton-model", "m"),
        ]))
        .unwrap();
        assert_eq!(
            s.names_with_prefix("x-airouter-"),
            ["x-airouter-backend", "x-airouter-triton-model"]
        );
        s.apply("x-airouter-backend", None);
        s.apply("x-airouter-attempt", Some("1"));
        assert_eq!(
            s.names_with_prefix("x-airouter-"),
            ["x-airouter-triton-model", "x-airouter-attempt"]
        );
        assert!(s.names_with_prefix("x-other-").is_empty());
    }

    #[test]
    fn names_follow_the_edits() {
        let mut snap = snapshot();
        snap.apply("authorization", None);
        snap.apply("x-new", Some("1"));
        snap.apply("x-gone", None);
        assert_eq!(
            snap.names(),
            [":method", ":path", "x-empty", "accept", "x-new"]
        );
    }

    #[test]
    fn edits_are_seen_by_later_lookups() {
        let mut snap = snapshot();
        snap.apply("accept", Some("c"));
        snap.apply("authorization", None);
        snap.apply("x-new", Some("1"));
        snap.apply("x-new", Some("2"));
        assert_eq!(snap.get("accept").as_deref(), Some("c"));
        assert!(!snap.changes("accept", Some("c")));
        assert_eq!(snap.get("authorization"), None);
        assert!(!snap.changes("authorization", None));
        assert!(snap.changes("authorization", Some("Bearer sk-1")));
        assert_eq!(snap.get("x-new").as_deref(), Some("2"));
        assert_eq!(snap.get(":method").as_deref(), Some("POST"));
    }
}
