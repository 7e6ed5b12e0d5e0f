//! The response headers a client may see: an allow-list applied to every routed response.
//!
//! An allow-list rather than a deny-list of provider headers, because a deny-list is only as
//! good as the last provider its author knew: backends and their proxies invent headers
//! (`openai-model`, `x-model`, `x-vllm-*`, `anthropic-*`, `x-litellm-*`, `cf-ray`, `via`,
//! `server`, `location`, `set-cookie`, rate limits of the operator's own account), and any of
//! them may name a model, a host or a provider. What clients need of a response's headers is
//! short: how to read the body and when to retry. Everything else is removed.
//!
//! Headers Envoy itself adds after this filter (`date`, `server`, `x-request-id` with
//! `always_set_request_id_in_response`, filters placed ahead of this one in `http_filters`) are
//! not affected; headers added before it on the way back (route `response_headers_to_add`, a
//! CORS filter placed after it) are, and must be added ahead of it.

use crate::host::{Headers, Host};

/// Headers passed on whatever their value: how to read the body, and Envoy's own timing.
/// `content-encoding` stays so that a body passed on compressed (see the flow) can be read;
/// hop-by-hop headers stay for Envoy's codecs, which own them.
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

/// Whether a response header with this name and value may reach the client.
pub fn allowed(name: &str, value: &str) -> bool {
    if name.starts_with(':') || ALLOWED.contains(&name) {
        return true;
    }
    let value = value.trim();
    match name {
        "retry-after" => is_delta_seconds(value) || is_http_date(value),
        "retry-after-ms" => is_delta_seconds(value),
        "x-should-retry" => value == "true" || value == "false",
        _ => false,
    }
}

/// Removes every response header not [`allowed`]; returns how many names were removed.
pub fn apply(host: &mut dyn Host) -> usize {
    let resp = Headers::Response;
    let names = host.header_names(resp);
    let mut removed = 0;
    for name in names {
        let keep = host
            .header(resp, &name)
            .is_some_and(|value| allowed(&name, &value));
        if !keep {
            host.set_header(resp, &name, None);
            removed += 1;
        }
    }
    removed
}

/// A non-negative integer of at most ten digits (RFC 9110 delay-seconds, kept short).
fn is_delta_seconds(v: &str) -> bool {
    (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

/// The shape of an RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`: only digits, the
/// day and month names, and the separators where they belong.
fn is_http_date(v: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = v.as_bytes();
    if b.len() != 29 || !v.is_ascii() {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|d| d.iter().all(|c| c.is_ascii_digit()))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    DAYS.iter().any(|d| v.get(0..3) == Some(*d))
        && v.get(4..5) == Some(" ")
        && at(3, b',')
        && digits(5..7)
        && at(7, b' ')
        && MONTHS.iter().any(|m| v.get(8..11) == Some(*m))
        && at(11, b' ')
        && digits(12..16)
        && at(16, b' ')
        && digits(17..19)
        && at(19, b':')
        && digits(20..22)
        && at(22, b':')
        && digits(23..25)
        && v.get(25..) == Some(" GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_clients_need_passes() {
        for (k, v) in [
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("content-length", "12"),
            ("cache-control", "no-cache"),
            ("retry-after", "30"),
            ("retry-after", " 7 "),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("retry-after-ms", "1500"),
            ("x-should-retry", "false"),
        ] {
            assert!(allowed(k, v), "{k}: {v}");
        }
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
        ] {
            assert!(!allowed(k, v), "{k}: {v}");
        }
    }
}
