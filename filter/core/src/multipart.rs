//! `multipart/form-data` bodies (audio transcriptions and translations): find the `model` part's
//! value so it can be replaced in place, leaving the audio bytes untouched.

use std::ops::Range;

use memchr::memmem;

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty() && v.len() <= 70).then_some(v)
    })
}

/// A part's content range and its decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormValue {
    pub span: Range<usize>,
    pub value: String,
}

/// Finds the form field `field` in a multipart body.
pub fn find_field(
    body: &[u8],
    boundary: &str,
    field: &str,
) -> Result<Option<FormValue>, &'static str> {
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let first = memmem::find(body, delim.as_bytes()).ok_or("no boundary line found")?;
    let mut pos = first + delim.len();
    loop {
        let rest = body.get(pos..).ok_or("truncated body")?;
        if rest.starts_with(b"--") {
            return Ok(None);
        }
        let headers_start = pos + line_end_len(rest).ok_or("malformed boundary line")?;
        let head_rest = body.get(headers_start..).ok_or("truncated body")?;
        let head_len = memmem::find(head_rest, b"\r\n\r\n").ok_or("a part has no header end")?;
        let headers = head_rest.get(..head_len).unwrap_or(&[]);
        let content_start = headers_start + head_len + 4;
        let content_len = memmem::find(
            body.get(content_start..).unwrap_or(&[]),
            next_delim.as_bytes(),
        )
        .ok_or("a part has no closing boundary")?;
        let content_end = content_start + content_len;
        if part_name(headers).as_deref() == Some(field) {
            let raw = body.get(content_start..content_end).unwrap_or(&[]);
            let value = std::str::from_utf8(raw).map_err(|_| "the model field is not UTF-8")?;
            return Ok(Some(FormValue {
                span: content_start..content_end,
                value: value.to_string(),
            }));
        }
        pos = content_end + next_delim.len();
    }
}

/// Length of the CRLF (or LF) that ends a boundary line, allowing trailing spaces.
fn line_end_len(rest: &[u8]) -> Option<usize> {
    let spaces = rest
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    match rest.get(spaces..)? {
        [b'\r', b'\n', ..] => Some(spaces + 2),
        [b'\n', ..] => Some(spaces + 1),
        _ => None,
    }
}

/// The `name` parameter of a part's `Content-Disposition: form-data` header.
fn part_name(headers: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(headers).ok()?;
    let disp = text.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    disp.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("name") {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x01--X\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ\r\ncontent-disposition: form-data; name=language\r\n\r\nen\r\n--XyZ--\r\n";

    #[test]
    fn reads_the_boundary() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Some("XyZ"));
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn finds_fields_among_binary_parts() {
        let m = find_field(BODY, "XyZ", "model").unwrap().unwrap();
        assert_eq!(m.value, "whisper-1");
        assert_eq!(&BODY[m.span.clone()], b"whisper-1");
        assert_eq!(
            find_field(BODY, "XyZ", "language").unwrap().unwrap().value,
            "en"
        );
        assert_eq!(find_field(BODY, "XyZ", "prompt").unwrap(), None);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(find_field(b"garbage", "XyZ", "model").is_err());
        for cut in 0..BODY.len() {
            let _ = find_field(&BODY[..cut], "XyZ", "model");
        }
    }
}
