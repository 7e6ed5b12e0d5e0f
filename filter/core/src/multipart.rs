//! `multipart/form-data` bodies (audio transcriptions and translations): find the `model` part's
//! value so it can be replaced in place, leaving the audio bytes untouched.
//!
//! # One reading for every parser
//!
//! The filter checks one `model` part and the backend reads one; they must be the same part. The
//! parsers backends use (python-multipart under Starlette/FastAPI and so vLLM, Go's
//! `mime/multipart`, Node's busboy, cpp-httplib under llama.cpp) differ on everything RFC 7578
//! leaves loose, so the filter accepts only the one form every SDK sends (the openai SDKs, httpx,
//! undici, curl, Go's writer, OkHttp) and refuses the rest as a 400:
//!
//! - Content type: `multipart/form-data` and `;`-separated `name=value` parameters, a token or a
//!   quoted string without backslashes or `;`; no parameter twice (any case), no RFC 2231/5987
//!   extended or continued parameter (`boundary*=`, `name*0=`), no other text. The boundary is
//!   1-70 of RFC 2046's characters.
//! - Delimiters: the body starts with `--boundary` CRLF (no preamble, no leading blank line);
//!   every `CRLF--boundary` in the body is a delimiter and is followed by exactly CRLF (next part)
//!   or `--` (the end), so no transport padding, no LF-only lines, no longer boundary that starts
//!   with ours; the close delimiter is required and only an empty epilogue or one CRLF may follow.
//! - Part headers: `Name: value` lines ending in CRLF, names of token characters, no bare CR or
//!   LF, no folded (continued) lines, no control characters, UTF-8.
//! - Each part has exactly one `Content-Disposition`, of type `form-data`, with a `name`
//!   parameter, in the parameter grammar above (so `NAME=`, `name*=`, two `name`s, and a quoted
//!   value hiding `; name=` from a parser that splits on `;` are all refused).
//! - The sought field (`model`) is in at most one part; that part's `Content-Type` charset, if
//!   any, reads ASCII the same as UTF-8 does, and it has no `Content-Transfer-Encoding` but
//!   `7bit`, `8bit` or `binary` (Go decodes quoted-printable parts). A `_charset_` field, which
//!   some servers apply to every other field, must name UTF-8 or US-ASCII.

use std::ops::Range;

use memchr::memmem;

/// RFC 2046's limit on a boundary's length.
pub const MAX_BOUNDARY_LEN: usize = 70;

/// Parameters accepted on one header value: more are refused rather than compared pairwise.
const MAX_PARAMS: usize = 16;

/// Why a form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// The body or a header is not in the one accepted form; the text says how.
    Malformed(&'static str),
    /// The sought field is given in more than one part.
    Repeated,
}

/// One `name=value` parameter of a header value; `value` is unquoted (it holds no escapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Param<'a> {
    name: &'a str,
    value: &'a str,
    /// Written as a quoted string.
    quoted: bool,
}

/// The `boundary` parameter of a `multipart/form-data` content type (grammar in the module doc).
pub fn boundary(content_type: &str) -> Result<&str, &'static str> {
    let (mime, params) = header_params(content_type)?;
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err("the content type must be multipart/form-data");
    }
    let b = params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("boundary"))
        .map(|p| p.value)
        .ok_or("the content type has no boundary")?;
    let valid = !b.is_empty()
        && b.len() <= MAX_BOUNDARY_LEN
        && !b.ends_with(' ')
        && b.bytes().all(is_bchar);
    if !valid {
        return Err("the boundary must be 1-70 letters, digits or '()+_,-./:=? (RFC 2046)");
    }
    Ok(b)
}

/// A part's content range and its decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormValue {
    pub span: Range<usize>,
    pub value: String,
}

/// What the headers of one part say.
struct PartHead<'a> {
    name: &'a str,
    /// The `charset` of its `Content-Type`, if it names one.
    charset: Option<&'a str>,
    /// Its `Content-Transfer-Encoding`, if any.
    transfer_encoding: Option<&'a str>,
}

/// Finds the form field `field` in a multipart body, reading every part (grammar in the module
/// doc): `None` when no part has that name.
pub fn find_field(
    body: &[u8],
    boundary: &str,
    field: &str,
) -> Result<Option<FormValue>, FormError> {
    use FormError::Malformed;
    let first = concat_bytes(b"--", boundary.as_bytes());
    let rest = body
        .strip_prefix(first.as_slice())
        .ok_or(Malformed("the body must start with the boundary line"))?;
    let mut pos = first.len();
    if rest.starts_with(b"--") {
        epilogue(body, pos + 2)?;
        return Ok(None);
    }
    if !rest.starts_with(b"\r\n") {
        return Err(Malformed("a boundary line must end with CRLF"));
    }
    pos += 2;
    let delimiter = concat_bytes(b"\r\n--", boundary.as_bytes());
    let finder = memmem::Finder::new(&delimiter);
    let mut found = None;
    loop {
        let (head, content_start) = part_head(body, pos)?;
        let content = body.get(content_start..).unwrap_or(&[]);
        let content_end = content_start
            + finder
                .find(content)
                .ok_or(Malformed("a part has no closing boundary"))?;
        let after = content_end + delimiter.len();
        let last = match body.get(after..).unwrap_or(&[]) {
            [b'\r', b'\n', ..] => false,
            [b'-', b'-', ..] => true,
            _ => {
                return Err(Malformed(
                    "a boundary must be followed by CRLF or -- (no padding, and the boundary may not appear inside a part)",
                ))
            }
        };
        let raw = body.get(content_start..content_end).unwrap_or(&[]);
        if head.name == "_charset_" && !is_utf8_charset(raw) {
            return Err(Malformed("the _charset_ field must be UTF-8 or US-ASCII"));
        }
        if head.name == field {
            if found.is_some() {
                return Err(FormError::Repeated);
            }
            let value =
                std::str::from_utf8(raw).map_err(|_| Malformed("the field is not UTF-8"))?;
            check_text_part(&head, value)?;
            found = Some(FormValue {
                span: content_start..content_end,
                value: value.to_string(),
            });
        }
        if last {
            epilogue(body, after + 2)?;
            return Ok(found);
        }
        pos = after + 2;
    }
}

/// After the close delimiter: nothing, or one CRLF (what every SDK sends); parsers that split on
/// the boundary would read parts in anything more.
fn epilogue(body: &[u8], at: usize) -> Result<(), FormError> {
    match body.get(at..).unwrap_or(&[]) {
        b"" | b"\r\n" => Ok(()),
        _ => Err(FormError::Malformed(
            "nothing but CRLF may follow the closing boundary",
        )),
    }
}

/// The headers of the part starting at `pos`, and where its content starts.
fn part_head(body: &[u8], mut pos: usize) -> Result<(PartHead<'_>, usize), FormError> {
    use FormError::Malformed;
    let mut disposition = None;
    let mut content_type = None;
    let mut transfer_encoding = None;
    loop {
        let rest = body.get(pos..).unwrap_or(&[]);
        let eol = memmem::find(rest, b"\r\n").ok_or(Malformed("a part's headers have no end"))?;
        let line = rest.get(..eol).unwrap_or(&[]);
        pos += eol + 2;
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(Malformed("folded header lines are not accepted"));
        }
        if line
            .iter()
            .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
        {
            return Err(Malformed(
                "a part header holds a control character or a bare CR or LF",
            ));
        }
        let line =
            std::str::from_utf8(line).map_err(|_| Malformed("a part header is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or(Malformed("a part header has no colon"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(Malformed("a part header's name is not a token"));
        }
        let value = value.trim_matches([' ', '\t']);
        let slot = if name.eq_ignore_ascii_case("content-disposition") {
            &mut disposition
        } else if name.eq_ignore_ascii_case("content-type") {
            &mut content_type
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            &mut transfer_encoding
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(Malformed(
                "a part repeats its Content-Disposition, Content-Type or Content-Transfer-Encoding",
            ));
        }
    }
    let disposition = disposition.ok_or(Malformed("a part has no Content-Disposition"))?;
    let (kind, params) = header_params(disposition).map_err(Malformed)?;
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(Malformed("a part's Content-Disposition is not form-data"));
    }
    // Parsers disagree on parameter names in other cases (`nAme`) and on unquoted values with
    // odd characters (`name=l'-x`, read by some as RFC 2231 language tags): only `name` and
    // `filename`, in lower case, quoted or made of letters, digits, `_`, `-` and `.`.
    let plain = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    if params
        .iter()
        .any(|p| !matches!(p.name, "name" | "filename") || !(p.quoted || plain(p.value)))
    {
        return Err(Malformed(
            "a part's Content-Disposition may only have `name` and `filename`, in lower case, quoted or plain",
        ));
    }
    let name = params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("name"))
        .ok_or(Malformed("a part has no name"))?
        .value;
    let charset = match content_type {
        Some(ct) => {
            let (_, params) = header_params(ct).map_err(Malformed)?;
            params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case("charset"))
                .map(|p| p.value)
        }
        None => None,
    };
    let head = PartHead {
        name,
        charset,
        transfer_encoding,
    };
    Ok((head, pos))
}

/// The found field's part must read the same in every parser: a charset that reads its bytes as
/// UTF-8 does, no transfer encoding a parser would decode.
fn check_text_part(head: &PartHead<'_>, value: &str) -> Result<(), FormError> {
    if let Some(cs) = head.charset {
        let latin = ["iso-8859-1", "latin1", "windows-1252"]
            .iter()
            .any(|l| cs.eq_ignore_ascii_case(l));
        if !(is_utf8_charset(cs.as_bytes()) || (latin && value.is_ascii())) {
            return Err(FormError::Malformed(
                "the field's charset must be UTF-8 or US-ASCII",
            ));
        }
    }
    if let Some(te) = head.transfer_encoding {
        if !["7bit", "8bit", "binary"]
            .iter()
            .any(|t| te.eq_ignore_ascii_case(t))
        {
            return Err(FormError::Malformed(
                "the field may not have a Content-Transfer-Encoding",
            ));
        }
    }
    Ok(())
}

fn is_utf8_charset(name: &[u8]) -> bool {
    [&b"utf-8"[..], b"utf8", b"us-ascii", b"ascii"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// A header value `first *( OWS ";" OWS name "=" value ) OWS`, strictly (see the module doc):
/// `first` trimmed, and the parameters.
fn header_params(value: &str) -> Result<(&str, Vec<Param<'_>>), &'static str> {
    let (first, mut rest) = match value.find(';') {
        Some(i) => (value.get(..i).unwrap_or(""), value.get(i..).unwrap_or("")),
        None => (value, ""),
    };
    let mut params: Vec<Param<'_>> = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let Some(after) = rest.strip_prefix(';') else {
            if rest.is_empty() {
                break;
            }
            return Err("a header has text after its parameters");
        };
        let after = after.trim_start_matches([' ', '\t']);
        let name_len = after.bytes().take_while(|b| is_tchar(*b)).count();
        let (name, after) = after.split_at(name_len);
        if name.is_empty() {
            return Err("a header has an empty parameter name");
        }
        if name.contains('*') {
            return Err("extended or continued parameters (name*=) are not accepted");
        }
        let after = after
            .strip_prefix('=')
            .ok_or("a header parameter has no '=' right after its name")?;
        let quoted = after.starts_with('"');
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or("a quoted parameter has no end")?;
            let inner = quoted.get(..end).unwrap_or("");
            if inner.contains(['\\', ';']) {
                return Err("a quoted parameter may not hold a backslash or ';'");
            }
            (inner, quoted.get(end + 1..).unwrap_or(""))
        } else {
            let len = after.bytes().take_while(|b| is_tchar(*b)).count();
            if len == 0 {
                return Err("a header parameter has no value");
            }
            after.split_at(len)
        };
        if params.len() >= MAX_PARAMS {
            return Err("a header has too many parameters");
        }
        if params.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err("a header parameter appears twice");
        }
        params.push(Param {
            name,
            value,
            quoted,
        });
        rest = after;
    }
    Ok((first.trim_matches([' ', '\t']), params))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 2046 `bchars`.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

fn concat_bytes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

#[cfg(test)]
mod tests;
