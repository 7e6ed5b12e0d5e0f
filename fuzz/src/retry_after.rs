//! The back-off hints of a backend's 429 (`limits::retry_after_ms`): `Retry-After`, and OpenAI's
//! `x-ratelimit-reset-requests` / `-tokens` durations.
//!
//! Input: up to three header values separated by NUL bytes (`Retry-After`, then the two reset
//! headers; a missing part is an absent header). Properties:
//! - a `Retry-After` is honoured only as RFC 9110 allows, delta-seconds (digits; a decimal
//!   fraction is tolerated) or an HTTP-date: any other value (`inf`, `1e300`, `-5`, `.5`, text)
//!   gives no hint when no reset header is there either;
//! - delta-seconds give exactly that many seconds;
//! - a duration such as `1h2m3s` or `250ms` (drawn from the input) gives exactly its length.

use airouter_core::limits;

use crate::Rng;

/// The function under test; one place to follow a change of its signature.
fn hint(
    retry_after: Option<&str>,
    reset_requests: Option<&str>,
    reset_tokens: Option<&str>,
) -> Option<u64> {
    // A fixed clock: an HTTP-date's hint is its distance from it.
    const NOW_MS: u64 = 1_700_000_000_000;
    limits::retry_after_ms(retry_after, reset_requests, reset_tokens, NOW_MS)
}

/// Whether `value` is a `Retry-After` value RFC 9110 allows (around optional whitespace).
fn well_formed(value: &str) -> bool {
    let v = value.trim_matches([' ', '\t']);
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!int.is_empty() && digits(int) && digits(frac)) || httpdate::parse_http_date(v).is_ok()
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let (ra, rr, rt) = (parts.next(), parts.next(), parts.next());
    let got = hint(ra, rr, rt);
    if let Some(v) = ra {
        if rr.is_none() && rt.is_none() && !well_formed(v) {
            assert_eq!(
                got, None,
                "Retry-After {v:?} is no delta-seconds or HTTP-date, yet gave {got:?} ms"
            );
        }
        let v = v.trim_matches([' ', '\t']);
        if !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = v.parse().unwrap();
            assert_eq!(got, Some(secs * 1000), "Retry-After {v:?}");
        }
    }

    let mut rng = Rng::from_data(data);
    let (h, m, s, ms) = (rng.below(48), rng.below(60), rng.below(60), rng.below(1000));
    let exact = (((h * 60 + m) * 60 + s) * 1000 + ms) as u64;
    let duration = format!("{h}h{m}m{s}s");
    assert_eq!(
        hint(None, Some(&duration), None),
        Some(exact - ms as u64),
        "{duration}"
    );
    let duration = format!("{ms}ms");
    assert_eq!(
        hint(None, None, Some(&duration)),
        Some(ms as u64),
        "{duration}"
    );
}
