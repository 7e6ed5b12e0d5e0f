//! Sliding windows, cool-downs and 429 hints, over an in-memory shared store.

use std::borrow::Cow;
use std::collections::HashMap;

use super::*;
use crate::host::Headers;

#[derive(Default)]
struct Store {
    data: HashMap<String, (Vec<u8>, u32)>,
    /// Makes the next N writes conflict, as another worker's write would.
    conflicts: usize,
}

impl Host for Store {
    fn header(&self, _: Headers, _: &str) -> Option<Cow<'_, str>> {
        None
    }
    fn header_names_with_prefix(&self, _: Headers, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn header_names(&self, _: Headers) -> Vec<String> {
        Vec::new()
    }
    fn set_header(&mut self, _: Headers, _: &str, _: Option<&str>) {}
    fn clear_route_cache(&mut self) {}
    fn body(&self, _: Headers, _: usize) -> Option<Vec<u8>> {
        None
    }
    fn replace_body(&mut self, _: Headers, _: usize, _: &[u8]) -> bool {
        false
    }
    fn send_response(&mut self, _: u16, _: &[(&str, &str)], _: &[u8]) {}
    fn property(&self, _: &[&str]) -> Option<String> {
        None
    }
    fn log_warn(&self, _: &str) {}
    fn now_ms(&self) -> u64 {
        0
    }
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.get(key).cloned()
    }
    fn add(&mut self, _: &str, _: u64) {}
    fn set_property(&mut self, _: &str, _: &[u8]) {}
    fn counter(&self, _: &str) -> u64 {
        0
    }
    fn http_call(&mut self, _: &crate::host::CallOut<'_>) -> Option<u32> {
        None
    }
    fn resume_request(&mut self) -> bool {
        false
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        if self.conflicts > 0 {
            self.conflicts -= 1;
            let e = self.data.entry(key.to_string()).or_insert((Vec::new(), 0));
            e.1 += 1;
            return SharedWrite::Conflict;
        }
        let current = self.data.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return SharedWrite::Conflict;
        }
        self.data
            .insert(key.to_string(), (value.to_vec(), current + 1));
        SharedWrite::Written
    }
}

const LIMIT: RateLimit = RateLimit {
    requests: 3,
    window_ms: 1000,
};

#[test]
fn a_window_admits_its_limit_then_says_how_long_to_wait() {
    let mut s = Store::default();
    for _ in 0..3 {
        assert_eq!(try_acquire(&mut s, "b", LIMIT, 10_100), Ok(()));
    }
    assert_eq!(try_acquire(&mut s, "b", LIMIT, 10_100), Err(900));
    assert_eq!(remaining(&s, "b", LIMIT, 10_100), (0, 900));
    // Other backends are counted apart.
    assert_eq!(try_acquire(&mut s, "other", LIMIT, 10_100), Ok(()));
}

#[test]
fn the_previous_window_fades_out() {
    let mut s = Store::default();
    for _ in 0..3 {
        try_acquire(&mut s, "b", LIMIT, 10_900).unwrap();
    }
    // 10% into the next window, 90% of the last window's 3 still count: 2.7, nothing fits.
    let wait = try_acquire(&mut s, "b", LIMIT, 11_100).unwrap_err();
    assert!(wait > 0 && wait <= 1000, "{wait}");
    // Halfway, 1.5 count: one more fits.
    assert_eq!(try_acquire(&mut s, "b", LIMIT, 11_500), Ok(()));
    // Two windows later nothing is left.
    assert_eq!(remaining(&s, "b", LIMIT, 13_000).0, 3);
}

#[test]
fn conflicting_writes_are_retried_without_losing_counts() {
    let mut s = Store {
        conflicts: 5,
        ..Default::default()
    };
    assert_eq!(try_acquire(&mut s, "b", LIMIT, 5_000), Ok(()));
    assert_eq!(remaining(&s, "b", LIMIT, 5_000).0, 2);
}

#[test]
fn cool_downs_extend_but_never_shorten() {
    let mut s = Store::default();
    assert_eq!(cooling_until(&s, "b", 100), None);
    cool_down(&mut s, "b", 2_000);
    cool_down(&mut s, "b", 1_500);
    assert_eq!(cooling_until(&s, "b", 100), Some(2_000));
    assert_eq!(cooling_until(&s, "b", 2_000), None);
}

/// 2020-01-01T00:00:00Z, in ms.
const NOW: u64 = 1_577_836_800_000;

fn hint(retry_after: &str) -> Option<u64> {
    retry_after_ms(Some(retry_after), None, None, NOW)
}

fn reset(duration: &str) -> Option<u64> {
    retry_after_ms(None, Some(duration), None, NOW)
}

#[test]
fn retry_hints_are_read() {
    assert_eq!(hint("2"), Some(2000));
    assert_eq!(hint(" 20 "), Some(20_000));
    assert_eq!(hint("0"), Some(0));
    assert_eq!(hint("0.5"), Some(500));
    assert_eq!(hint("0.0001"), Some(1), "rounded up");
    assert_eq!(
        retry_after_ms(None, Some("6m0s"), Some("20ms"), NOW),
        Some(360_000)
    );
    assert_eq!(reset("1.5s"), Some(1500));
    assert_eq!(reset("1m30s"), Some(90_000));
    assert_eq!(reset("1h2m3.5s"), Some(3_723_500));
    assert_eq!(reset("6ms"), Some(6));
    assert_eq!(reset("1.2ms"), Some(2));
    assert_eq!(reset("250us"), Some(1));
    assert_eq!(reset("250\u{b5}s"), Some(1));
    assert_eq!(reset("5ns"), Some(1));
    assert_eq!(reset("0s"), Some(0));
    assert_eq!(retry_after_ms(None, None, None, NOW), None);
    // Retry-After wins over the reset hints when it can be read; they stand in when it cannot.
    assert_eq!(retry_after_ms(Some("1"), Some("1h"), None, NOW), Some(1000));
    assert_eq!(
        retry_after_ms(Some("inf"), Some("3s"), None, NOW),
        Some(3000)
    );
}

#[test]
fn http_dates_count_from_now() {
    assert_eq!(hint("Wed, 01 Jan 2020 00:00:30 GMT"), Some(30_000));
    // RFC 850 and asctime forms are HTTP-dates too.
    assert_eq!(hint("Wednesday, 01-Jan-20 00:01:00 GMT"), Some(60_000));
    assert_eq!(hint("Wed Jan  1 00:00:02 2020"), Some(2_000));
    assert_eq!(
        hint("Tue, 31 Dec 2019 23:59:00 GMT"),
        Some(0),
        "in the past"
    );
    // Far future: read, and left for the caller's cap.
    assert!(hint("Fri, 31 Dec 9999 23:59:59 GMT").unwrap() > 200 * 365 * 86_400_000);
}

/// Issue 14: `Retry-After: inf` cooled a target down for 584 million years.
#[test]
fn unreadable_hints_are_no_hints() {
    for bad in [
        "inf",
        "Infinity",
        "1e300",
        "1E3",
        "-5",
        "-0",
        "+5",
        "NaN",
        "0x10",
        "1.",
        ".5",
        "1.2.3",
        "5s",
        "soon",
        "",
        " ",
        "1,5",
        "١٢",
        "Wed, 01 Jan 2020 00:00:30",
    ] {
        assert_eq!(hint(bad), None, "Retry-After {bad:?}");
    }
    for bad in [
        "inf",
        "1e3s",
        "-1s",
        "1",
        "s",
        "1d",
        "1m-5s",
        "1.s",
        "1 s",
        "1sms",
        "",
        "1h1",
        "NaNs",
        &"9".repeat(80),
    ] {
        assert_eq!(reset(bad), None, "reset {bad:?}");
    }
}

#[test]
fn huge_hints_saturate_instead_of_overflowing() {
    assert_eq!(hint("99999999999999999999999999"), Some(u64::MAX));
    assert_eq!(hint("18446744073709551615"), Some(u64::MAX));
    assert_eq!(reset("99999999999999999999h"), Some(u64::MAX));
    assert_eq!(
        reset("9999999999999999999999999999999999999999999999999999h"),
        Some(u64::MAX)
    );
}

#[test]
fn usage_is_bounded() {
    assert_eq!(bounded_usage(0), (0, false));
    assert_eq!(bounded_usage(MAX_USAGE_TOKENS), (MAX_USAGE_TOKENS, false));
    assert_eq!(
        bounded_usage(MAX_USAGE_TOKENS + 1),
        (MAX_USAGE_TOKENS, true)
    );
    assert_eq!(bounded_usage(u64::MAX), (MAX_USAGE_TOKENS, true));
}

/// Issue 14: a backend reporting `total_tokens: 18446744073709551615` would have wrapped the
/// token limiter; counts saturate.
#[test]
fn counts_saturate_instead_of_wrapping() {
    let mut s = Store::default();
    let budget = RateLimit {
        requests: 20,
        window_ms: 60_000,
    };
    charge(&mut s, "k", u64::MAX, budget, 1_000);
    charge(&mut s, "k", u64::MAX, budget, 1_000);
    charge(&mut s, "k", 5, budget, 1_000);
    assert!(check(&s, "k", budget, 1_000).is_err());
    assert_eq!(remaining(&s, "k", budget, 1_000).0, 0);
    // The window after still remembers it, weighted.
    assert!(check(&s, "k", budget, 61_000).is_err());
    assert_eq!(
        try_acquire(&mut s, "k", budget, 61_000).map_err(|_| ()),
        Err(())
    );
}

#[test]
fn budgets_are_checked_first_and_charged_after() {
    let mut s = Store::default();
    let budget = RateLimit {
        requests: 20,
        window_ms: 60_000,
    };
    assert_eq!(check(&s, "k", budget, 1_000), Ok(()));
    charge(&mut s, "k", 19, budget, 1_000);
    assert_eq!(
        check(&s, "k", budget, 1_000),
        Ok(()),
        "one token still fits"
    );
    charge(&mut s, "k", 30, budget, 1_000);
    assert!(
        check(&s, "k", budget, 1_000).is_err(),
        "overshoot is charged, then refused"
    );
}
