//! The strict multipart reading: what SDKs send is read, what parsers could read differently is
//! refused.

use super::*;

const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x01--X\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ\r\ncontent-disposition: form-data; name=language\r\n\r\nen\r\n--XyZ--\r\n";

fn model(body: &[u8]) -> Result<Option<String>, FormError> {
    find_field(body, "XyZ", "model").map(|f| f.map(|f| f.value))
}

/// A body of `parts` (each headers, CRLF CRLF, content) with boundary `XyZ`.
fn form(parts: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for p in parts {
        out.push_str("--XyZ\r\n");
        out.push_str(p);
        out.push_str("\r\n");
    }
    out.push_str("--XyZ--\r\n");
    out.into_bytes()
}

fn refused(body: &[u8]) -> bool {
    matches!(model(body), Err(FormError::Malformed(_)))
}

#[test]
fn reads_the_boundary() {
    assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Ok("XyZ"));
    assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b\""), Ok("a b"));
    assert_eq!(
        boundary("multipart/form-data; charset=utf-8; boundary=----formdata-undici-0123"),
        Ok("----formdata-undici-0123")
    );
    assert!(boundary("application/json").is_err());
}

#[test]
fn content_types_read_differently_are_refused() {
    for ct in [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=A; boundary=B",
        "multipart/form-data; boundary=A; BOUNDARY=B",
        "multipart/form-data; boundary*=utf-8''A",
        "multipart/form-data; boundary*0=A; boundary*1=B",
        "multipart/form-data; boundary=\"A\\\"B\"",
        "multipart/form-data; boundary=\"A;boundary=B\"",
        "multipart/form-data; boundary=\"A",
        "multipart/form-data; boundary = A",
        "multipart/form-data; boundary=A,multipart/form-data; boundary=B",
        "multipart/form-data; boundary=A junk",
        "multipart/form-data; boundary=A;",
        "multipart/form-data; boundary=\"a b \"",
        "multipart/form-data; boundary=\"a\u{e9}\"",
        "multipart/form-data; boundary=\"a\tb\"",
    ] {
        assert!(boundary(ct).is_err(), "{ct}");
    }
    let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
    assert!(boundary(&long).is_err());
    let many: String = (0..20).map(|i| format!("; p{i}=x")).collect();
    assert!(boundary(&format!("multipart/form-data{many}; boundary=A")).is_err());
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
    // An empty form, and a form without the field.
    assert_eq!(model(b"--XyZ--\r\n"), Ok(None));
    assert_eq!(
        model(&form(&["Content-Disposition: form-data; name=a\r\n\r\nx"])),
        Ok(None)
    );
}

/// The forms real clients send are read.
#[test]
fn what_sdks_send_is_read() {
    let bodies = [
        // httpx (the openai Python SDK)
        form(&[
            "Content-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1",
            "Content-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF",
        ]),
        // OkHttp adds a length; Apache HttpClient a charset and a transfer encoding
        form(&[
            "Content-Disposition: form-data; name=\"model\"\r\nContent-Length: 9\r\n\r\nwhisper-1",
        ]),
        form(&[
            "Content-Disposition: form-data; name=\"model\"\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nwhisper-1",
        ]),
        // Unicode filenames, unquoted names, a `[]` field, a UTF-8 charset field
        form(&[
            "Content-Disposition: form-data; name=\"file\"; filename=\"r\u{e9}union \u{1f680}.wav\"\r\n\r\nRIFF",
            "Content-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword",
            "Content-Disposition: form-data; name=_charset_\r\n\r\nUTF-8",
            "content-disposition:form-data;name=model\r\n\r\nwhisper-1",
        ]),
    ];
    for body in bodies {
        assert_eq!(
            model(&body),
            Ok(Some("whisper-1".into())),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // Without the trailing CRLF after the close delimiter.
    let mut body = form(&["Content-Disposition: form-data; name=model\r\n\r\nm"]);
    body.truncate(body.len() - 2);
    assert_eq!(model(&body), Ok(Some("m".into())));
}

/// Issue 14's example: two `model` parts, Starlette reading the last.
#[test]
fn a_repeated_field_is_refused() {
    let two = form(&[
        "Content-Disposition: form-data; name=\"model\"\r\n\r\nallowed",
        "Content-Disposition: form-data; name=\"model\"\r\n\r\nforbidden",
    ]);
    assert_eq!(model(&two), Err(FormError::Repeated));
    let two_spellings = form(&[
        "Content-Disposition: form-data; name=\"model\"\r\n\r\nallowed",
        "Content-Disposition: form-data; NAME=model; filename=\"x\"\r\n\r\nforbidden",
    ]);
    assert!(model(&two_spellings).is_err());
}

/// Found by the multipart fuzz target: a parameter name in another case (`nAme`) or an
/// unquoted value with characters some parsers read as RFC 2231 syntax (`l'-x`) made the
/// filter and another parser disagree on which part is `model`.
#[test]
fn parameter_spellings_parsers_disagree_on_are_refused() {
    for disposition in [
        "form-data; nAme=\"model\"",
        "form-data; name=\"file\";&filename=\"a.wav\"",
        "form-data; name=l'-XyZge",
        "form-data; name=\"x\"; size=\"3\"",
    ] {
        let body = form(&[
            &format!("Content-Disposition: {disposition}\r\n\r\nv"),
            "Content-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1",
        ]);
        assert!(
            matches!(model(&body), Err(FormError::Malformed(_))),
            "{disposition}"
        );
    }
}

#[test]
fn parts_read_differently_are_refused() {
    let cases = [
        // two Content-Disposition headers in one part
        "Content-Disposition: form-data; name=\"file\"\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx",
        // two name parameters, in any case
        "Content-Disposition: form-data; name=\"file\"; name=\"model\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"file\"; Name=\"model\"\r\n\r\nx",
        // RFC 2231/5987 extended and continued names (Go and Python decode them)
        "Content-Disposition: form-data; name*=utf-8''model\r\n\r\nx",
        "Content-Disposition: form-data; name=\"file\"; name*=utf-8''model\r\n\r\nx",
        "Content-Disposition: form-data; name*0=\"mo\"; name*1=\"del\"\r\n\r\nx",
        // escapes Go and Python unquote differently
        "Content-Disposition: form-data; name=\"mo\\del\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"file\"; filename=\"a\\\"; name=\\\"model\"\r\n\r\nx",
        // a `; name=` hidden in quotes from parsers that split on `;`
        "Content-Disposition: form-data; name=\"file\"; filename=\"a; name=model; b\"\r\n\r\nx",
        // header folding (Go unfolds)
        "Content-Disposition: form-data;\r\n name=\"model\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"file\"\r\n\tname=\"model\"\r\n\r\nx",
        // bare LF or CR inside the headers (Go reads LF-only lines)
        "Content-Disposition: form-data; name=\"file\"\n\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"model\"\rX: y\r\n\r\nx",
        // control characters, whitespace before the colon, no colon, no name
        "Content-Disposition: form-data; name=\"mod\0el\"\r\n\r\nx",
        "Content-Disposition : form-data; name=\"model\"\r\n\r\nx",
        "Content-Disposition form-data; name=\"model\"\r\n\r\nx",
        "Content-Disposition: form-data\r\n\r\nx",
        "Content-Type: text/plain\r\n\r\nx",
        "\r\nx",
        // not form-data, spaces around '=', trailing text or ';'
        "Content-Disposition: attachment; name=\"model\"\r\n\r\nx",
        "Content-Disposition: form-data; name = \"model\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"model\" x\r\n\r\nx",
        "Content-Disposition: form-data; name=\"model\";\r\n\r\nx",
        "Content-Disposition: form-data; name=\"model\r\n\r\nx",
        // the model part decoded differently: charsets, transfer encodings, _charset_
        "Content-Disposition: form-data; name=\"model\"\r\nContent-Type: text/plain; charset=utf-16\r\n\r\nx",
        "Content-Disposition: form-data; name=\"model\"\r\nContent-Type: text/plain; charset=latin1\r\n\r\n\u{e9}",
        "Content-Disposition: form-data; name=\"model\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=65",
        "Content-Disposition: form-data; name=\"model\"\r\nContent-Transfer-Encoding: base64\r\n\r\nbW9kZWw=",
        "Content-Disposition: form-data; name=\"model\"\r\nContent-Type: text/plain\r\nContent-Type: text/plain; charset=utf-16\r\n\r\nx",
        "Content-Disposition: form-data; name=\"_charset_\"\r\n\r\nutf-16",
    ];
    for part in cases {
        let body = form(&[part]);
        assert!(refused(&body), "{part:?}: {:?}", model(&body));
    }
}

#[test]
fn framing_read_differently_is_refused() {
    let bodies: [&[u8]; 16] = [
        // a preamble, in which Go and busboy skip a boundary-looking line
        b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ--\r\n",
        b"\r\n--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ--\r\n",
        b"a--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ--\r\n",
        // LF-only delimiters (Go switches to them), padding after a delimiter
        b"--XyZ\nContent-Disposition: form-data; name=model\n\nx\n--XyZ--\n",
        b"--XyZ \r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ--\r\n",
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ \r\nContent-Disposition: form-data; name=model\r\n\r\ny\r\n--XyZ--\r\n",
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ\t\r\nContent-Disposition: form-data; name=model\r\n\r\ny\r\n--XyZ--\r\n",
        b"--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ--  \r\n",
        // a longer boundary starting with ours inside a part
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZW\r\ny\r\n--XyZ--\r\n",
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ-\r\n--XyZ--\r\n",
        // no close delimiter, or a cut one
        b"--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n",
        b"--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--XyZ",
        b"--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\nx",
        // parts after the close delimiter, for parsers that split on the boundary
        b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--\r\n--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\ny\r\n--XyZ--\r\n",
        b"--XyZ--\r\n\r\n",
        b"garbage",
    ];
    for body in bodies {
        assert!(
            refused(body),
            "{:?}: {:?}",
            String::from_utf8_lossy(body),
            model(body)
        );
    }
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    for cut in 0..BODY.len() {
        let _ = find_field(&BODY[..cut], "XyZ", "model");
    }
    // Every cut short of the whole body lacks the close delimiter.
    for cut in 0..BODY.len() - 2 {
        assert!(
            find_field(&BODY[..cut], "XyZ", "language").is_err(),
            "{cut}"
        );
    }
}
