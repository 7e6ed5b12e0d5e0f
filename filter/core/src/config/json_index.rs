//! Where each key of the configuration's JSON form is written, so that an error found in the TOML
//! document the JSON maps to ([`super::json`]) is reported at the JSON file's own line and
//! column, and a key written twice in one object is refused (JSON parsers keep the last, TOML
//! refuses it: both forms must refuse what one does).
//!
//! Paths are spelled as the configuration's errors spell keys: `listener.port`,
//! `models[0].target.backend`. The text has already parsed as JSON ([`serde_json`] checks the
//! syntax and bounds the nesting), so the scan here only finds offsets.

use serde_json::Value;

/// Every key and array item of a JSON document with the byte offset where it is written.
#[derive(Debug, Default)]
pub(crate) struct JsonIndex {
    entries: Vec<(String, usize)>,
}

/// A key written twice in one object: its path and the offset of the second.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub path: String,
    pub offset: usize,
}

impl JsonIndex {
    /// The offset of `path`, or of its nearest ancestor that is written (a key the plan needs
    /// but the file lacks is reported at its table); `None` when nothing of it is.
    pub fn offset_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some((_, at)) = self.entries.iter().find(|(p, _)| p == path) {
                return Some(*at);
            }
            let cut = path.rfind(['.', '['])?;
            path = path.get(..cut)?;
        }
    }
}

/// Indexes `text`, a JSON object that parsed; the first duplicate key refuses it.
pub(crate) fn index(text: &str) -> Result<JsonIndex, Duplicate> {
    let mut scan = Scan {
        bytes: text.as_bytes(),
        text,
        at: 0,
        index: JsonIndex::default(),
    };
    scan.value("")?;
    Ok(scan.index)
}

struct Scan<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    index: JsonIndex,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The value at the cursor, whose path is `path`.
    fn value(&mut self, path: &str) -> Result<(), Duplicate> {
        self.skip_blank();
        match self.peek() {
            Some(b'{') => self.object(path),
            Some(b'[') => self.array(path),
            Some(b'"') => {
                self.string();
                Ok(())
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
                Ok(())
            }
        }
    }

    fn object(&mut self, path: &str) -> Result<(), Duplicate> {
        self.at += 1;
        let mut seen: Vec<String> = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                Some(b'"') => {}
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                _ => {
                    // `}` (or the end, which a parsed text never reaches here).
                    self.at += 1;
                    return Ok(());
                }
            }
            let key_at = self.at;
            let key = self.string();
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if seen.contains(&key) {
                return Err(Duplicate {
                    path: full,
                    offset: key_at,
                });
            }
            seen.push(key);
            self.index.entries.push((full.clone(), key_at));
            self.skip_blank();
            if self.peek() == Some(b':') {
                self.at += 1;
            }
            self.value(&full)?;
        }
    }

    fn array(&mut self, path: &str) -> Result<(), Duplicate> {
        self.at += 1;
        let mut i = 0usize;
        loop {
            self.skip_blank();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                Some(b']') | None => {
                    self.at += 1;
                    return Ok(());
                }
                Some(_) => {}
            }
            let item = format!("{path}[{i}]");
            let start = self.at;
            self.index.entries.push((item.clone(), start));
            self.value(&item)?;
            if self.at == start {
                // Not JSON (a parsed text never gets here): stop rather than loop.
                return Ok(());
            }
            i += 1;
        }
    }

    /// The string at the cursor (its opening quote), decoded; the cursor moves past it.
    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => break,
                _ => {}
            }
        }
        let raw = self
            .text
            .get(start..self.at.min(self.text.len()))
            .unwrap_or("");
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(s)) => s,
            _ => raw.trim_matches('"').to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "listener": {"port": 8080},
  "models": [
    {"name": "a", "target": {"backend": "x"}},
    {"name": "b.c", "target": {"backend": "y"}}
  ],
  "backends": {"x": {"url": "http://\"q\"", "tags": [1, [2, 3]]}}
}"#;

    fn at(path: &str) -> usize {
        index(DOC).unwrap().offset_of(path).unwrap()
    }

    #[test]
    fn keys_and_items_are_found_where_written() {
        assert!(DOC[at("listener.port")..].starts_with("\"port\""));
        assert!(DOC[at("models[1].target.backend")..].starts_with("\"backend\": \"y\""));
        assert!(DOC[at("models[1].name")..].starts_with("\"name\": \"b.c\""));
        assert!(DOC[at("backends.x.tags[1]")..].starts_with("[2, 3]"));
        assert!(DOC[at("backends.x.url")..].starts_with("\"url\""));
    }

    #[test]
    fn a_missing_key_is_found_at_its_nearest_written_ancestor() {
        assert_eq!(at("models[0].target.weight"), at("models[0].target"));
        assert_eq!(at("listener.address"), at("listener"));
        assert_eq!(index(DOC).unwrap().offset_of("admin.port"), None);
    }

    #[test]
    fn a_key_written_twice_in_one_object_is_refused() {
        let text = r#"{"listener": {"port": 8080, "address": "a", "port": 9090}}"#;
        let dup = index(text).unwrap_err();
        assert_eq!(dup.path, "listener.port");
        assert!(text[dup.offset..].starts_with("\"port\": 9090"));
        // The same key in two objects is not a duplicate; nor is an escaped spelling of
        // another key.
        assert!(index(r#"{"a": {"k": 1}, "b": {"k": 2}, "c": {"k\"": 1, "k": 2}}"#).is_ok());
        let escaped = r#"{"k": 1, "\u006b": 2}"#;
        assert_eq!(index(escaped).unwrap_err().path, "k");
    }
}
