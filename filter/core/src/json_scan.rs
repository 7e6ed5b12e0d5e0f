//! Finds things in JSON texts by walking their structure instead of parsing them: strings are
//! skipped at memchr speed and nothing is decoded or allocated. For reading a field or two of a
//! response the router passes on as it is; it does not validate (a malformed text may yield
//! `None` or a value found before the fault).

use memchr::{memchr2, memchr3};

/// Index of the closing quote of the string opening at `open`.
pub(crate) fn string_end(input: &[u8], open: usize) -> Option<usize> {
    let mut i = open.checked_add(1)?;
    loop {
        let off = memchr2(b'"', b'\\', input.get(i..)?)?;
        let at = i + off;
        if input.get(at) == Some(&b'"') {
            return Some(at);
        }
        i = at + 2;
    }
}

fn skip_whitespace(input: &[u8], mut i: usize) -> usize {
    while matches!(input.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// Index just past the value starting at `start` (no leading whitespace).
fn value_end(input: &[u8], start: usize) -> Option<usize> {
    let (open, close) = match input.get(start)? {
        b'"' => return Some(string_end(input, start)? + 1),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => {
            let len = input
                .get(start..)?
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(input.len() - start);
            return (len > 0).then_some(start + len);
        }
    };
    // Only this kind of bracket is counted: in well-formed JSON the other kind nests inside it
    // balanced, and brackets inside strings are skipped with the strings.
    let mut depth = 0usize;
    let mut i = start;
    loop {
        let at = i + memchr3(b'"', open, close, input.get(i..)?)?;
        match input.get(at)? {
            b'"' => {
                i = string_end(input, at)? + 1;
                continue;
            }
            b if *b == open => depth += 1,
            _ => depth = depth.checked_sub(1)?,
        }
        i = at + 1;
        if depth == 0 {
            return Some(i);
        }
    }
}

/// The value of the member `key` of the object `object` (leading whitespace allowed), as written;
/// the first one when the key repeats. Keys are compared as written, escapes undecoded.
pub fn member<'a>(object: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut i = skip_whitespace(object, 0);
    if object.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_whitespace(object, i + 1);
    if object.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        if object.get(i) != Some(&b'"') {
            return None;
        }
        let name_end = string_end(object, i)?;
        let name = object.get(i + 1..name_end)?;
        i = skip_whitespace(object, name_end + 1);
        if object.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_whitespace(object, i + 1);
        let end = value_end(object, start)?;
        if name == key {
            return object.get(start..end);
        }
        i = skip_whitespace(object, end);
        if object.get(i) != Some(&b',') {
            return None;
        }
        i = skip_whitespace(object, i + 1);
    }
}

/// A JSON number that is a non-negative integer within `u64`.
pub fn as_u64(value: &[u8]) -> Option<u64> {
    let leading_zero = value.len() > 1 && value.first() == Some(&b'0');
    if value.is_empty() || leading_zero || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(json: &'a str, key: &str) -> Option<&'a str> {
        member(json.as_bytes(), key.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn finds_top_level_members_of_any_kind() {
        let json =
            r#" { "a" : "x\"}{" , "b":{"c":[1,{"d":"]"}]},"e":[[],{}], "f":-1.5e3 ,"g":null}"#;
        assert_eq!(get(json, "a"), Some(r#""x\"}{""#));
        assert_eq!(get(json, "b"), Some(r#"{"c":[1,{"d":"]"}]}"#));
        assert_eq!(get(json, "e"), Some("[[],{}]"));
        assert_eq!(get(json, "f"), Some("-1.5e3"));
        assert_eq!(get(json, "g"), Some("null"));
        // Nested keys are not members of the top level.
        assert_eq!(get(json, "c"), None);
        assert_eq!(get(json, "d"), None);
        assert_eq!(get(json, "zz"), None);
    }

    #[test]
    fn keys_inside_strings_are_not_keys() {
        let json = r#"{"content":"\"usage\":{\"total_tokens\":5}","usage":{"total_tokens":7}}"#;
        assert_eq!(get(json, "usage"), Some(r#"{"total_tokens":7}"#));
        assert_eq!(get(r#"{"x":"a\\","usage":1}"#, "usage"), Some("1"));
    }

    #[test]
    fn anything_but_an_object_or_a_cut_text_has_no_members() {
        for json in [
            "",
            "[]",
            "{}",
            r#""usage""#,
            r#"{"usage""#,
            r#"{"usage":"#,
            r#"{"usage":{"total_tokens":1"#,
            r#"{"a":"unterminated, "usage":1}"#,
            r#"{"a":1 "usage":2}"#,
            r#"{"a":}"#,
        ] {
            assert_eq!(get(json, "usage"), None, "{json}");
        }
        assert_eq!(get(r#"{"usage":1"#, "usage"), Some("1"));
    }

    #[test]
    fn integers_only() {
        assert_eq!(as_u64(b"270"), Some(270));
        assert_eq!(as_u64(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"-1",
            b"1.0",
            b"1e3",
            b"01",
            b"+1",
            b"null",
            b"\"5\"",
            b"99999999999999999999",
        ] {
            assert_eq!(as_u64(bad), None, "{bad:?}");
        }
    }
}
