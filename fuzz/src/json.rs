//! JSON as the properties see it: a document tree that keeps every object member in order,
//! duplicates included and keys decoded (what `serde_json::Value` collapses), and the check that
//! a renamed JSON text says what the original said with only model names changed.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A parsed JSON text with nothing collapsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Null,
    Bool(bool),
    /// A number as written: JSON puts no limit on range or precision, and neither does this.
    Num(String),
    Str(String),
    Arr(Vec<Tree>),
    /// Members in document order; keys decoded, duplicates kept.
    Obj(Vec<(String, Tree)>),
}

/// A JSON string decoded; escapes of lone surrogates (which JSON's grammar allows and Rust strings
/// cannot hold) become U+FFFD.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON string")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            // serde_json hands strings with lone surrogates over as WTF-8 bytes.
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Text, E> {
                Ok(Text(String::from_utf8_lossy(v).into_owned()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// An object's members as written, duplicates kept.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(Text(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl Tree {
    /// The tree of a JSON text, or `None` when serde_json's parser refuses its syntax (serde_json
    /// checks the whole text first, nesting limit included, then each level is read from its raw
    /// text, so numbers keep their digits).
    pub fn parse(text: &[u8]) -> Option<Tree> {
        let raw: Box<RawValue> = serde_json::from_slice(text).ok()?;
        Self::from_raw(raw.get())
    }

    fn from_raw(text: &str) -> Option<Tree> {
        Some(match text.as_bytes().first()? {
            b'{' => {
                let Members(members) = serde_json::from_str(text).ok()?;
                let mut out = Vec::with_capacity(members.len());
                for (k, v) in members {
                    out.push((k, Self::from_raw(v.get())?));
                }
                Tree::Obj(out)
            }
            b'[' => {
                let items: Vec<Box<RawValue>> = serde_json::from_str(text).ok()?;
                Tree::Arr(
                    items
                        .iter()
                        .map(|v| Self::from_raw(v.get()))
                        .collect::<Option<_>>()?,
                )
            }
            b'"' => Tree::Str(serde_json::from_str::<Text>(text).ok()?.0),
            b't' => Tree::Bool(true),
            b'f' => Tree::Bool(false),
            b'n' => Tree::Null,
            _ => Tree::Num(text.to_string()),
        })
    }

    /// The members of an object (empty for anything else).
    pub fn members(&self) -> &[(String, Tree)] {
        match self {
            Tree::Obj(m) => m,
            _ => &[],
        }
    }

    /// The values of every member called `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Tree> + 'a {
        self.members()
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The tree with every key and string blanked: its shape.
    pub fn shape(&self) -> Tree {
        match self {
            Tree::Str(_) => Tree::Str(String::new()),
            Tree::Arr(items) => Tree::Arr(items.iter().map(Tree::shape).collect()),
            Tree::Obj(members) => Tree::Obj(
                members
                    .iter()
                    .map(|(_, v)| (String::new(), v.shape()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Checks `renamed`, the model-name rewriter's output for the JSON text `original`: it parses, it
/// has the original's shape (same nesting, numbers, booleans and nulls, members in the same
/// order), every `model` member that holds a string holds `client`, no string (key or value)
/// equals a backend name, and a string changed only where it was a `model` value or held a
/// backend name. `what` names the input in the panic message.
pub fn assert_renamed(
    original: &Tree,
    renamed: &[u8],
    client: &str,
    backends: &[&str],
    what: &str,
) {
    let Some(out) = Tree::parse(renamed) else {
        panic!(
            "renamed JSON no longer parses\n  input: {what}\n  output: {:?}",
            String::from_utf8_lossy(renamed)
        );
    };
    if original.all("error").next().is_some() {
        // An error is rebuilt with OpenAI's four fields only (backend_errors::trimmed), so its
        // shape may change; no backend name, in any case, may remain in it.
        let text = String::from_utf8_lossy(renamed).to_ascii_lowercase();
        assert!(
            !backends
                .iter()
                .any(|b| text.contains(&b.to_ascii_lowercase())),
            "a backend name remains in a renamed error\n  input: {what}\n  output: {text:?}"
        );
        return;
    }
    assert!(
        original.shape() == out.shape(),
        "renaming changed the JSON's shape\n  input: {what}\n  output: {:?}",
        String::from_utf8_lossy(renamed)
    );
    compare(original, &out, false, client, backends, what);
}

fn compare(
    orig: &Tree,
    out: &Tree,
    model_value: bool,
    client: &str,
    backends: &[&str],
    what: &str,
) {
    match (orig, out) {
        (Tree::Str(a), Tree::Str(b)) => check_string(a, b, model_value, client, backends, what),
        (Tree::Arr(a), Tree::Arr(b)) => {
            for (x, y) in a.iter().zip(b) {
                compare(x, y, false, client, backends, what);
            }
        }
        (Tree::Obj(a), Tree::Obj(b)) => {
            for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                check_string(ka, kb, false, client, backends, what);
                compare(va, vb, kb == "model", client, backends, what);
            }
        }
        _ => {}
    }
}

fn check_string(
    orig: &str,
    out: &str,
    model_value: bool,
    client: &str,
    backends: &[&str],
    what: &str,
) {
    // Backend names are renamed in any ASCII case (model_names/words.rs), so they are compared so.
    let lower = |s: &str| s.to_ascii_lowercase();
    assert!(
        !backends.iter().any(|b| lower(b) == lower(out)),
        "a backend name reached the client: {out:?}\n  input: {what}"
    );
    if model_value {
        assert!(
            out == client,
            "a `model` value is {out:?}, not the client's name {client:?}\n  input: {what}"
        );
    } else if orig != out {
        assert!(
            backends.iter().any(|b| lower(orig).contains(&lower(b))),
            "a string holding no backend name was changed: {orig:?} -> {out:?}\n  input: {what}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_keep_duplicates_and_decode_keys() {
        let t = Tree::parse(br#"{"a":1,"a":2.5e999,"mod\u0065l":"x"}"#).unwrap();
        assert_eq!(t.all("a").count(), 2);
        assert_eq!(t.all("a").nth(1), Some(&Tree::Num("2.5e999".into())));
        assert_eq!(t.all("model").next(), Some(&Tree::Str("x".into())));
        assert_eq!(Tree::parse(b"{"), None);
        let t = Tree::parse(br#"{"a\ud800":"\udfff"}"#).unwrap();
        let [(key, Tree::Str(value))] = t.members() else {
            panic!("{t:?}")
        };
        assert!(
            key.starts_with("a\u{fffd}") && value.starts_with('\u{fffd}'),
            "{t:?}"
        );
    }

    #[test]
    fn the_renaming_check_catches_leaks_and_damage() {
        let orig = Tree::parse(br#"{"model":"b","x":["b","keep"],"n":1}"#).unwrap();
        let check = |out: &str| {
            std::panic::catch_unwind(|| assert_renamed(&orig, out.as_bytes(), "c", &["b"], "test"))
                .is_ok()
        };
        assert!(check(r#"{"model":"c","x":["c","keep"],"n":1}"#));
        // A leak, a model value left alone, a changed unrelated string, a changed number.
        assert!(!check(r#"{"model":"c","x":["b","keep"],"n":1}"#));
        assert!(!check(r#"{"model":"z","x":["c","keep"],"n":1}"#));
        assert!(!check(r#"{"model":"c","x":["c","kept"],"n":1}"#));
        assert!(!check(r#"{"model":"c","x":["c","keep"],"n":2}"#));
    }
}
