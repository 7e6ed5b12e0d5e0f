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

#[test]
fn retry_hints_are_read() {
    assert_eq!(retry_after_ms(Some("2"), None, None), Some(2000));
    assert_eq!(retry_after_ms(Some("0.5"), None, None), Some(500));
    assert_eq!(
        retry_after_ms(None, Some("6m0s"), Some("20ms")),
        Some(360_000)
    );
    assert_eq!(retry_after_ms(None, Some("1.5s"), None), Some(1500));
    assert_eq!(retry_after_ms(None, Some("soon"), None), None);
    assert_eq!(retry_after_ms(None, None, None), None);
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
