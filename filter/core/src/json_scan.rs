//! Finds things in JSON texts by walking their structure instead of parsing them: strings are
//! skipped at memchr speed and nothing is decoded or allocated. For reading a field or two of a
//! response the router passes on as it is; it does not validate (a malformed text may yield
//! `None` or a value found before the fault).

use memchr::{memchr, memchr2, memrchr, memrchr3};

/// Index of the closing quote of the string opening at `open`.
pub(crate) fn string_end(input: &[u8], open: usize) -> Option<usize> {
    string_end_noting_escapes(input, open).map(|(end, _)| end)
}

/// [`string_end`], and whether the string holds an escape that can stand for a printable
/// character: `\uXXXX` or `\/`. Such a string reads differently once decoded, so a search of
/// its bytes is not a search of what a client reads. Costs nothing over [`string_end`], which
/// stops at every backslash anyway.
pub(crate) fn string_end_noting_escapes(input: &[u8], open: usize) -> Option<(usize, bool)> {
    let mut i = open.checked_add(1)?;
    let mut noted = false;
    loop {
        let off = memchr2(b'"', b'\\', input.get(i..)?)?;
        let at = i + off;
        if input.get(at) == Some(&b'"') {
            return Some((at, noted));
        }
        noted |= matches!(input.get(at + 1), Some(b'u' | b'/'));
        i = at + 2;
    }
}

/// Whether a JSON text holds an escape that can stand for a printable character (`\uXXXX`,
/// `\/`) anywhere: one memchr pass when it has no backslash at all.
pub(crate) fn has_printable_escape(input: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = input.get(i..).and_then(|rest| memchr(b'\\', rest)) {
        let at = i + off;
        if matches!(input.get(at + 1), Some(b'u' | b'/')) {
            return true;
        }
        i = at + 2;
    }
    false
}

/// The text of a JSON string's content (between its quotes) as a client's parser reads it:
/// escapes decoded, a lone surrogate or invalid UTF-8 read as U+FFFD (as lenient parsers do,
/// Python's among them, rather than failing); a malformed escape is kept as written.
pub(crate) fn decode_string(content: &[u8]) -> String {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(content.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    while let Some(&b) = content.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let simple = match content.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(8),
            Some(b'f') => Some(12),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let Some(unit) = (content.get(i + 1) == Some(&b'u'))
            .then(|| hex4(i + 2))
            .flatten()
        else {
            out.push(b);
            i += 1;
            continue;
        };
        i += 6;
        let mut code = unit;
        if (0xD800..0xDC00).contains(&unit) && content.get(i..i + 2) == Some(b"\\u") {
            if let Some(low) = hex4(i + 2).filter(|l| (0xDC00..0xE000).contains(l)) {
                code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
        }
        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn skip_whitespace(input: &[u8], mut i: usize) -> usize {
    while input.get(i).is_some_and(|b| is_whitespace(*b)) {
        i += 1;
    }
    i
}

/// `end` moved back over whitespace.
fn skip_whitespace_back(input: &[u8], mut end: usize) -> usize {
    while end > 0 && input.get(end - 1).is_some_and(|b| is_whitespace(*b)) {
        end -= 1;
    }
    end
}

/// Whether the byte at `at` is escaped: preceded by an odd number of backslashes. A quote that
/// is not escaped opens or closes a string, as JSON strings hold no bare quotes.
pub(crate) fn is_escaped(input: &[u8], at: usize) -> bool {
    let before = input.get(..at).unwrap_or(&[]);
    before.iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
}

/// Index of the opening quote of the string whose closing quote is at `close`: the nearest quote
/// before it that is not escaped.
fn string_start(input: &[u8], close: usize) -> Option<usize> {
    let mut end = close;
    loop {
        let at = memrchr(b'"', input.get(..end)?)?;
        if !is_escaped(input, at) {
            return Some(at);
        }
        end = at;
    }
}

/// Index of the first byte of the value that ends just before `end`.
fn value_start(input: &[u8], end: usize) -> Option<usize> {
    let last = end.checked_sub(1)?;
    let (open, close) = match input.get(last)? {
        b'"' => return string_start(input, last),
        b'}' => (b'{', b'}'),
        b']' => (b'[', b']'),
        _ => {
            let len = input
                .get(..end)?
                .iter()
                .rev()
                .position(|b| matches!(b, b',' | b':' | b'{' | b'[') || is_whitespace(*b))
                .unwrap_or(end);
            return (len > 0).then_some(end - len);
        }
    };
    // Only this kind of bracket is counted: in well-formed JSON the other kind nests inside it
    // balanced, and brackets inside strings are skipped with the strings.
    let mut depth = 0usize;
    let mut i = end;
    loop {
        let at = memrchr3(b'"', open, close, input.get(..i)?)?;
        match input.get(at)? {
            b'"' => {
                i = string_start(input, at)?;
                continue;
            }
            b if *b == close => depth += 1,
            _ => depth = depth.checked_sub(1)?,
        }
        i = at;
        if depth == 0 {
            return Some(at);
        }
    }
}

/// The value of the member `key` of the object `object`, as written, found walking back from
/// the object's end: responses carry `usage` near the end, after the long `choices` or `data`.
/// The last one when the key repeats; keys are compared as written, escapes undecoded.
pub fn member<'a>(object: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = skip_whitespace(object, 0);
    if object.get(start) != Some(&b'{') {
        return None;
    }
    let close = skip_whitespace_back(object, object.len()).checked_sub(1)?;
    if close <= start || object.get(close) != Some(&b'}') {
        return None;
    }
    let mut end = skip_whitespace_back(object, close);
    while end > start + 1 {
        let value = value_start(object, end)?;
        let colon = skip_whitespace_back(object, value).checked_sub(1)?;
        if object.get(colon) != Some(&b':') {
            return None;
        }
        let name_close = skip_whitespace_back(object, colon).checked_sub(1)?;
        if object.get(name_close) != Some(&b'"') {
            return None;
        }
        let name_open = string_start(object, name_close)?;
        if object.get(name_open + 1..name_close)? == key {
            return object.get(value..end);
        }
        let comma = skip_whitespace_back(object, name_open).checked_sub(1)?;
        if object.get(comma) != Some(&b',') {
            return None;
        }
        end = skip_whitespace_back(object, comma);
    }
    None
}

/// A JSON number that is a non-negative integer within `u64`.
pub fn as_u64(value: &[u8]) -> Option<u64> {
    let leading_zero = value.len() > 1 && value.first() == Some(&b'0');
    if value.is_empty() || leading_zero || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A count a backend reported, bounded rather than refused: a JSON integer as `u64` (saturating
/// past `u64::MAX`), a number written with a fraction or exponent (`1e30`, `7.0`) rounded down
/// and saturating, a negative one as 0. `None` for anything that is not a JSON number (and for
/// NaN or infinities, which JSON has not). Callers cap what they accept.
pub fn as_count(value: &[u8]) -> Option<u64> {
    if let Some(n) = as_u64(value) {
        return Some(n);
    }
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b))
    {
        return None;
    }
    let n: f64 = text.parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    // `as` saturates at the bounds of u64 (and takes negatives to 0).
    Some(n.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_json::{Rng, TRICKY};

    #[test]
    fn counts_are_bounded_not_refused() {
        let c = |v: &str| as_count(v.as_bytes());
        assert_eq!(c("42"), Some(42));
        assert_eq!(c("18446744073709551615"), Some(u64::MAX));
        assert_eq!(c("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(c("1e30"), Some(u64::MAX));
        assert_eq!(c("7.9"), Some(7));
        assert_eq!(c("-5"), Some(0));
        assert_eq!(c("-1e30"), Some(0));
        for not_a_number in ["\"5\"", "true", "null", "", "e5", "Infinity", "NaN", "{}"] {
            assert_eq!(c(not_a_number), None, "{not_a_number}");
        }
    }

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
        assert_eq!(get(r#"{"usage":1,"x":"a\\"}"#, "usage"), Some("1"));
        let before = r#"{"usage":{"total_tokens":7},"content":"x\"usage\":{\"total_tokens\":5}"}"#;
        assert_eq!(get(before, "usage"), Some(r#"{"total_tokens":7}"#));
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
            r#"{"usage":1"#,
            "{ }",
            r#"{"usage":1}]"#,
            r#""usage":1}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{:1}"#,
            r#"{"b":1,"a":1 "c":2}"#,
        ] {
            assert_eq!(get(json, "usage"), None, "{json}");
        }
        // Not a validator: a fault before the member goes unnoticed.
        assert_eq!(get(r#"{"a":"cut, "usage":1}"#, "usage"), Some("1"));
        assert_eq!(get(r#"{"usage":1,"usage":2}"#, "usage"), Some("2"));
    }

    /// Random documents: every top-level member is found, and is what serde_json reads there.
    #[test]
    fn agrees_with_serde_on_random_documents() {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let members: Vec<(String, String)> = (0..1 + rng.next(5))
                .map(|i| (format!("k{i}"), rng.value(&TRICKY, 0)))
                .collect();
            let doc = format!(
                " {{ {} }}\n",
                members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" : {v}"))
                    .collect::<Vec<_>>()
                    .join(" ,")
            );
            let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
            for (k, _) in &members {
                let raw =
                    member(doc.as_bytes(), k.as_bytes()).unwrap_or_else(|| panic!("{k} in {doc}"));
                let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
                assert_eq!(v, parsed[k], "{k} in {doc}");
            }
            assert_eq!(member(doc.as_bytes(), b"absent"), None, "{doc}");
        }
    }

    #[test]
    fn strings_decode_as_a_lenient_parser_reads_them() {
        for (raw, want) in [
            (r"zeta\u002dsecret", "zeta-secret"),
            (r"\u007Aeta", "zeta"),
            (r"acme\/x", "acme/x"),
            (r#"a\"b\\c\nd\te\b\f\r"#, "a\"b\\c\nd\te\u{8}\u{c}\r"),
            (r"\ud83d\ude00!", "\u{1F600}!"),
            (r"\ud800x", "\u{FFFD}x"),
            (r"\udc00", "\u{FFFD}"),
            (r"\uzzzz \q \", r"\uzzzz \q \"),
            ("caf\u{e9}", "caf\u{e9}"),
        ] {
            assert_eq!(decode_string(raw.as_bytes()), want, "{raw}");
        }
        // What serde reads of any valid string, this reads too.
        let mut rng = Rng::new(11);
        for _ in 0..500 {
            let v = rng.value(&TRICKY, 0);
            if let Ok(serde_json::Value::String(s)) = serde_json::from_str::<serde_json::Value>(&v)
            {
                assert_eq!(decode_string(&v.as_bytes()[1..v.len() - 1]), s, "{v}");
            }
        }
    }

    #[test]
    fn printable_escapes_are_noted() {
        assert!(has_printable_escape(br#"{"a":"x\u0041"}"#));
        assert!(has_printable_escape(br#"{"a":"a\/b"}"#));
        assert!(!has_printable_escape(br#"{"a":"a\nb\"c\\u0041"}"#));
        assert_eq!(
            string_end_noting_escapes(br#""a\/b" "c""#, 0),
            Some((5, true))
        );
        assert_eq!(
            string_end_noting_escapes(br#""a\\u" "#, 0),
            Some((5, false))
        );
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
