//! The response headers a client may see: an allow-list applied to every routed response, and
//! every allowed value rewritten to a known grammar.
//!
//! An allow-list rather than a deny-list of provider headers, because a deny-list is only as
//! good as the last provider its author knew: backends and their proxies invent headers
//! (`openai-model`, `x-model`, `x-vllm-*`, `anthropic-*`, `x-litellm-*`, `cf-ray`, `via`,
//! `server`, `location`, `set-cookie`, rate limits of the operator's own account), and any of
//! them may name a model, a host or a provider. What clients need of a response's headers is
//! short: how to read the body and when to retry. Everything else is removed.
//!
//! A name on the list is not enough: a value is free text too (`content-type:
//! application/json; model=qwen2`, `date: served by 10.0.0.5`). So each allowed header's value
//! is rebuilt from a closed grammar (known media types, charsets, codings and cache directives,
//! digits, an HTTP-date): what does not fit is dropped, and a header left with nothing is
//! removed. No free text of a backend survives in a header.
//!
//! Headers Envoy itself adds after this filter (`date`, `server`, `x-request-id` with
//! `always_set_request_id_in_response`, filters placed ahead of this one in `http_filters`) are
//! not affected; headers added before it on the way back (route `response_headers_to_add`, a
//! CORS filter placed after it) are, and must be added ahead of it.

use std::borrow::Cow;

use crate::host::{Headers, Host};

/// Headers that may pass, each with its value rebuilt by [`normalized`]: how to read the body,
/// Envoy's own timing, and hop-by-hop headers (Envoy's codecs own them and replace them).
/// `content-encoding` stays so that a body passed on compressed (see the flow) can be read.
pub const ALLOWED: [&str; 9] = [
    "content-type",
    "content-length",
    "content-encoding",
    "cache-control",
    "date",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "x-envoy-upstream-service-time",
];

/// Retry hints the openai SDKs act on, passed on only when their value has the form the SDKs
/// read (so they cannot carry anything else): `retry-after` as delta-seconds or an HTTP-date,
/// `retry-after-ms` as milliseconds, `x-should-retry` as a boolean.
pub const RETRY_HINTS: [&str; 3] = ["retry-after", "retry-after-ms", "x-should-retry"];

/// Media types passed as they are (lower-cased). Other types are mapped to their family (see
/// [`media_type`]).
const MEDIA_TYPES: &[&str] = &[
    "application/json",
    "text/event-stream",
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-seq",
    "application/problem+json",
    "text/plain",
    "text/html",
    "text/csv",
    "text/markdown",
    "text/vtt",
    "text/xml",
    "application/xml",
    "application/x-subrip",
    "application/x-www-form-urlencoded",
    "application/javascript",
    "application/octet-stream",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "audio/mpeg",
    "audio/mp3",
    "audio/mp4",
    "audio/aac",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "audio/opus",
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/webm",
    "audio/pcm",
    "audio/l16",
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/webm",
];

/// Charsets a `content-type` may name.
const CHARSETS: &[&str] = &[
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "utf-16",
    "utf-16le",
    "utf-16be",
    "windows-1252",
];

/// Content and transfer codings (RFC 9110 section 8.4.1, the IANA registry's common ones).
const CODINGS: &[&str] = &[
    "gzip",
    "x-gzip",
    "deflate",
    "br",
    "zstd",
    "compress",
    "x-compress",
    "chunked",
];

/// Cache-control response directives (RFC 9111 section 5.2.2, RFC 8246, RFC 5861), and whether
/// each takes delta-seconds. The others are passed without a value: `private="x"` and
/// `no-cache="x"` become the stricter `private` and `no-cache`.
const CACHE_DIRECTIVES: &[(&str, bool)] = &[
    ("no-cache", false),
    ("no-store", false),
    ("no-transform", false),
    ("must-revalidate", false),
    ("proxy-revalidate", false),
    ("must-understand", false),
    ("public", false),
    ("private", false),
    ("immutable", false),
    ("max-age", true),
    ("s-maxage", true),
    ("stale-while-revalidate", true),
    ("stale-if-error", true),
];

/// The value a response header passes with, or `None` when it is removed: pseudo-headers as
/// they are; the [`ALLOWED`] headers and [`RETRY_HINTS`] rebuilt from their grammar (borrowed
/// when already in that form); any other name removed.
pub fn normalized<'a>(name: &str, value: &'a str) -> Option<Cow<'a, str>> {
    if name.starts_with(':') {
        return Some(Cow::Borrowed(value));
    }
    let v = value.trim();
    let same = |v: &'a str| Some(Cow::Borrowed(v));
    match name {
        "content-type" => content_type(v).map(|n| keep_if_same(value, n)),
        "content-encoding" | "transfer-encoding" => codings(v).map(|n| keep_if_same(value, n)),
        "cache-control" => cache_control(v).map(|n| keep_if_same(value, n)),
        "connection" => token_list(v, &["close", "keep-alive"]).map(|n| keep_if_same(value, n)),
        "keep-alive" => keep_alive(v).map(|n| keep_if_same(value, n)),
        "date" => http_date(v).map(|n| keep_if_same(value, n)),
        "content-length" | "x-envoy-upstream-service-time" | "retry-after-ms" => {
            is_delta_seconds(v).then(|| same(v)).flatten()
        }
        "retry-after" if is_delta_seconds(v) => same(v),
        "retry-after" => http_date(v).map(|n| keep_if_same(value, n)),
        "x-should-retry" => (v == "true" || v == "false").then(|| same(v)).flatten(),
        _ => None,
    }
}

/// Whether a response header with this name and value may reach the client (in some form).
pub fn allowed(name: &str, value: &str) -> bool {
    normalized(name, value).is_some()
}

fn keep_if_same(value: &str, normal: String) -> Cow<'_, str> {
    if value == normal {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(normal)
    }
}

/// Removes every response header not [`allowed`] and rewrites those whose value is not in its
/// normal form; returns how many names were removed. A header already in form costs no call.
pub fn apply(host: &mut dyn Host) -> usize {
    let resp = Headers::Response;
    let names = host.header_names(resp);
    let mut removed = 0;
    for name in names {
        let Some(value) = host.header(resp, &name) else {
            continue;
        };
        match normalized(&name, &value) {
            Some(Cow::Borrowed(v)) if v == value => {}
            Some(v) => {
                let v = v.into_owned();
                host.set_header(resp, &name, Some(&v));
            }
            None => {
                host.set_header(resp, &name, None);
                removed += 1;
            }
        }
    }
    removed
}

/// `content-type` rebuilt: a known media type (or its family's generic type), and a known
/// charset if one was given; `None` when there is no `type/subtype`.
fn content_type(v: &str) -> Option<String> {
    let mut parts = v.split(';');
    let mime = media_type(parts.next()?.trim())?;
    let charset = parts.find_map(|p| {
        let (k, val) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let val = val.trim().trim_matches('"').to_ascii_lowercase();
        CHARSETS.iter().find(|c| **c == val).copied()
    });
    Some(match charset {
        Some(c) => crate::text::concat(&[mime, "; charset=", c]),
        None => mime.to_string(),
    })
}

/// A known media type as it is, else its family: anything JSON (`+json`, `x-json`) as
/// `application/json`, XML as `application/xml`, other text as `text/plain`, the rest as
/// `application/octet-stream`. `None` when `m` is no `type/subtype`.
fn media_type(m: &str) -> Option<&'static str> {
    let lower = m.to_ascii_lowercase();
    let (kind, sub) = lower.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    if !token(kind) || !token(sub) {
        return None;
    }
    if let Some(known) = MEDIA_TYPES.iter().find(|t| **t == lower) {
        return Some(known);
    }
    Some(if sub.contains("json") {
        "application/json"
    } else if sub.ends_with("xml") {
        "application/xml"
    } else if kind == "text" {
        "text/plain"
    } else {
        "application/octet-stream"
    })
}

/// A list of known codings, lower-cased; `identity` and unknown codings dropped (a coding no
/// one knows cannot be decoded anyway); `None` when nothing is left.
fn codings(v: &str) -> Option<String> {
    let mut out = String::new();
    for c in v.split(',') {
        let c = c.trim().to_ascii_lowercase();
        if let Some(known) = CODINGS.iter().find(|k| **k == c) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(known);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A comma-separated list of the `known` tokens, lower-cased; others dropped.
fn token_list(v: &str, known: &[&'static str]) -> Option<String> {
    let mut out = String::new();
    for t in v.split(',') {
        let t = t.trim().to_ascii_lowercase();
        if let Some(k) = known.iter().find(|k| **k == t) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(k);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `keep-alive: timeout=5, max=100` with numbers only.
fn keep_alive(v: &str) -> Option<String> {
    let mut out = String::new();
    for p in v.split(',') {
        let Some((k, n)) = p.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let n = n.trim();
        if (k == "timeout" || k == "max") && is_delta_seconds(n) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&crate::text::concat(&[&k, "=", n]));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Known cache directives, lower-cased, with a number where they take one (a directive whose
/// number is missing or malformed is dropped); `None` when none is left.
fn cache_control(v: &str) -> Option<String> {
    let mut out = String::new();
    for d in v.split(',') {
        let (k, arg) = match d.split_once('=') {
            Some((k, a)) => (k, Some(a.trim().trim_matches('"'))),
            None => (d, None),
        };
        let k = k.trim().to_ascii_lowercase();
        let Some((known, numeric)) = CACHE_DIRECTIVES.iter().find(|(n, _)| *n == k) else {
            continue;
        };
        let part = match (numeric, arg) {
            (true, Some(n)) if is_delta_seconds(n) => crate::text::concat(&[known, "=", n]),
            (true, _) => continue,
            (false, _) => known.to_string(),
        };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&part);
    }
    (!out.is_empty()).then_some(out)
}

/// An RFC 9110 HTTP-date (any of its three forms) written as an IMF-fixdate, `Sun, 06 Nov 1994
/// 08:49:37 GMT`; `None` for anything else.
fn http_date(v: &str) -> Option<String> {
    httpdate::parse_http_date(v)
        .ok()
        .map(httpdate::fmt_http_date)
}

/// A non-negative integer of at most ten digits (RFC 9110 delay-seconds, kept short).
fn is_delta_seconds(v: &str) -> bool {
    (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(k: &str, v: &str) -> Option<String> {
        normalized(k, v).map(Cow::into_owned)
    }

    #[test]
    fn what_clients_need_passes() {
        for (k, v) in [
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", "12"),
            ("content-encoding", "gzip"),
            ("cache-control", "no-cache"),
            ("cache-control", "private, max-age=0"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("retry-after", "30"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("retry-after-ms", "1500"),
            ("x-should-retry", "false"),
            ("x-envoy-upstream-service-time", "3"),
        ] {
            assert_eq!(norm(k, v).as_deref(), Some(v), "{k}: {v}");
            // Already in form: borrowed, so applying it costs no host call.
            assert!(matches!(normalized(k, v), Some(Cow::Borrowed(_))), "{k}");
        }
        assert_eq!(norm("retry-after", " 7 ").as_deref(), Some("7"));
    }

    #[test]
    fn what_names_a_backend_is_removed() {
        for (k, v) in [
            ("openai-model", "gpt-4o-2024-08-06"),
            ("openai-organization", "org-123"),
            ("openai-processing-ms", "12"),
            ("x-model", "qwen2-0.5b"),
            ("location", "http://10.0.0.5:8000/v1/x"),
            ("content-location", "/v1/x"),
            ("server", "uvicorn"),
            ("via", "1.1 vllm"),
            ("x-powered-by", "FastAPI"),
            ("set-cookie", "session=1"),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("x-ratelimit-remaining-requests", "10"),
            ("x-request-id", "req_abc"),
            ("x-envoy-ratelimited", "true"),
            ("access-control-allow-origin", "*"),
            ("retry-after", "inf"),
            ("retry-after", "1e300"),
            ("retry-after", "99999999999"),
            ("retry-after", "soon, ask qwen2-0.5b"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 qwe"),
            ("retry-after-ms", "1.5"),
            ("x-should-retry", "qwen2"),
            ("date", "served by qwen2-0.5b at 10.9.8.7"),
            ("content-length", "12 qwen2"),
            ("x-envoy-upstream-service-time", "qwen2"),
            ("content-type", "qwen2-0.5b"),
            ("content-type", "application/json qwen2"),
            ("cache-control", "x-served-by=qwen2-0.5b"),
            ("content-encoding", "x-qwen2-0.5b"),
            ("connection", "qwen2"),
            ("keep-alive", "qwen2=1"),
        ] {
            assert_eq!(norm(k, v), None, "{k}: {v}");
        }
    }

    /// Allowed headers keep only what their grammar knows: free text in a value is dropped.
    #[test]
    fn allowed_values_are_rebuilt_from_their_grammar() {
        for (k, v, want) in [
            (
                "content-type",
                "application/json; model=qwen2-0.5b",
                "application/json",
            ),
            (
                "content-type",
                "application/json;charset=UTF-8",
                "application/json; charset=utf-8",
            ),
            (
                "content-type",
                "text/plain; charset=\"qwen2\"",
                "text/plain",
            ),
            ("content-type", "TEXT/PLAIN", "text/plain"),
            (
                "content-type",
                "application/vnd.qwen2-0.5b+json",
                "application/json",
            ),
            ("content-type", "text/x-json", "application/json"),
            ("content-type", "application/qwen2+xml", "application/xml"),
            ("content-type", "text/x-qwen2", "text/plain"),
            ("content-type", "audio/x-qwen2", "application/octet-stream"),
            ("content-type", "application/jsonl", "application/jsonl"),
            (
                "cache-control",
                "private, x-served-by=qwen2-0.5b",
                "private",
            ),
            (
                "cache-control",
                "No-Cache=\"x-qwen2\", max-age=60, max-age=qwen2",
                "no-cache, max-age=60",
            ),
            ("content-encoding", "identity, x-qwen2-0.5b", ""),
            ("content-encoding", "GZIP, x-qwen2", "gzip"),
            ("transfer-encoding", "chunked", "chunked"),
            ("connection", "close, qwen2", "close"),
            ("keep-alive", "timeout=5, qwen2=1, max=x", "timeout=5"),
            (
                "date",
                "Sunday, 06-Nov-94 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMT",
            ),
            (
                "retry-after",
                "Sun Nov  6 08:49:37 1994",
                "Sun, 06 Nov 1994 08:49:37 GMT",
            ),
        ] {
            let want = (!want.is_empty()).then(|| want.to_string());
            assert_eq!(norm(k, v), want, "{k}: {v}");
        }
    }
}
