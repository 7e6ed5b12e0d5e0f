//! Per-backend limits shared by every Envoy worker: a sliding-window request count, and a
//! cool-down after a 429 that said when to come back. Both live in proxy-wasm shared data, updated
//! with compare-and-swap so concurrent workers never lose a count.
//!
//! The window is approximated the usual way: the previous fixed window's count, weighted by how
//! much of it still overlaps the sliding window, plus the current window's count.
//!
//! Bounds: every key names configured things (a backend, a key's name, a target's configured
//! model or pattern; see [`target_key`]), never a client's text, so clients cannot grow this
//! state. Values from backends are bounded: a 429's hint is read only as delta-seconds, an
//! HTTP-date or a Go-style duration and capped by the backend's `max_cooldown_ms`; usage counts
//! are capped at [`MAX_USAGE_TOKENS`]; counts saturate rather than wrap.

use crate::contract::{SHARED_COOLDOWN_PREFIX, SHARED_COUNTER_PREFIX};
use crate::host::{Host, SharedWrite};
use crate::text::concat;

/// Requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window_ms: u64,
}

/// How often a CAS write is retried before giving up (and letting the request through).
const CAS_ATTEMPTS: usize = 16;

fn counter_key(backend: &str) -> String {
    concat(&[SHARED_COUNTER_PREFIX, backend])
}

/// Cool-downs are per target (backend and model): providers limit per model.
fn cooldown_key(target: &str) -> String {
    concat(&[SHARED_COOLDOWN_PREFIX, target])
}

/// The name a target's cool-down is kept under: its backend and its configured name there
/// ([`crate::config::Model::state_name_at`]; a pass-through pattern's targets share one).
pub fn target_key(backend: &str, configured_name: &str) -> String {
    concat(&[backend, "/", configured_name])
}

/// Default of a backend's `max_cooldown_ms`: one hour.
pub const DEFAULT_MAX_COOLDOWN_MS: u64 = 3_600_000;

/// The most tokens one response is charged and counted: far above any real response (a million
/// tokens of context times a hundred choices), far below what would overflow a counter. Larger
/// usage reports are capped to it and counted in `airouter_usage_capped`.
pub const MAX_USAGE_TOKENS: u64 = 100_000_000;

/// A response's reported usage, bounded: the count to charge, and whether it was capped.
pub fn bounded_usage(tokens: u64) -> (u64, bool) {
    (tokens.min(MAX_USAGE_TOKENS), tokens > MAX_USAGE_TOKENS)
}

/// (window start, count in it, count in the window before).
fn decode(v: &[u8]) -> Option<(u64, u64, u64)> {
    let n = |i: usize| {
        v.get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    Some((n(0)?, n(1)?, n(2)?))
}

fn encode(start: u64, cur: u64, prev: u64) -> Vec<u8> {
    [start, cur, prev]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect()
}

/// The windows as of `now`: rolled forward when time has moved past the stored one.
fn roll(stored: Option<(u64, u64, u64)>, now: u64, window: u64) -> (u64, u64, u64) {
    let this_start = now - now % window;
    match stored {
        Some((start, cur, prev)) if start == this_start => (start, cur, prev),
        Some((start, cur, _)) if start.checked_add(window) == Some(this_start) => {
            (this_start, 0, cur)
        }
        _ => (this_start, 0, 0),
    }
}

/// The sliding-window estimate of requests, and how long until one more would fit.
fn estimate(start: u64, cur: u64, prev: u64, now: u64, limit: RateLimit) -> (f64, u64) {
    estimate_for(start, cur, prev, now, limit, 1.0)
}

/// As [`estimate`], for `need` more units.
fn estimate_for(
    start: u64,
    cur: u64,
    prev: u64,
    now: u64,
    limit: RateLimit,
    need: f64,
) -> (f64, u64) {
    let window = limit.window_ms as f64;
    let elapsed = now.saturating_sub(start) as f64;
    let overlap = (window - elapsed).max(0.0) / window;
    let used = prev as f64 * overlap + cur as f64;
    let wait = if used + need <= f64::from(limit.requests) {
        0
    } else if prev == 0 {
        // Only this window counts: wait for it to end.
        start.saturating_add(limit.window_ms).saturating_sub(now)
    } else {
        // The previous window's weight falls linearly; find when enough of it has gone.
        let excess = used + need - f64::from(limit.requests);
        let per_ms = prev as f64 / window;
        (excess / per_ms).ceil().min(window * 2.0) as u64
    };
    (used, wait)
}

/// Counts one request against the backend's limit if it fits; otherwise how many milliseconds
/// until it would.
pub fn try_acquire(
    host: &mut dyn Host,
    backend: &str,
    limit: RateLimit,
    now: u64,
) -> Result<(), u64> {
    let key = counter_key(backend);
    let window = limit.window_ms.max(1);
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = match host.shared_get(&key) {
            Some((v, cas)) => (decode(&v), cas),
            None => (None, 0),
        };
        let (start, cur, prev) = roll(stored, now, window);
        let (_, wait) = estimate(start, cur, prev, now, limit);
        if wait > 0 {
            return Err(wait);
        }
        match host.shared_set(&key, &encode(start, cur.saturating_add(1), prev), cas) {
            SharedWrite::Written => return Ok(()),
            SharedWrite::Conflict => continue,
            SharedWrite::Failed => return Ok(()),
        }
    }
    host.log_warn("rate-limit counter kept conflicting; request let through");
    Ok(())
}

/// Whether one more unit fits the window, without counting it (for budgets charged later, such as
/// tokens, which are only known when the response ends).
pub fn check(host: &dyn Host, key: &str, limit: RateLimit, now: u64) -> Result<(), u64> {
    let window = limit.window_ms.max(1);
    let stored = host
        .shared_get(&counter_key(key))
        .and_then(|(v, _)| decode(&v));
    let (start, cur, prev) = roll(stored, now, window);
    match estimate(start, cur, prev, now, limit) {
        (_, 0) => Ok(()),
        (_, wait) => Err(wait),
    }
}

/// Charges `amount` to the window, whatever the limit (the work was already done).
pub fn charge(host: &mut dyn Host, key: &str, amount: u64, limit: RateLimit, now: u64) {
    let counter = counter_key(key);
    let window = limit.window_ms.max(1);
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = match host.shared_get(&counter) {
            Some((v, cas)) => (decode(&v), cas),
            None => (None, 0),
        };
        let (start, cur, prev) = roll(stored, now, window);
        if host.shared_set(
            &counter,
            &encode(start, cur.saturating_add(amount), prev),
            cas,
        ) != SharedWrite::Conflict
        {
            return;
        }
    }
}

/// Requests left in the window and milliseconds until the window resets, without counting.
pub fn remaining(host: &dyn Host, backend: &str, limit: RateLimit, now: u64) -> (u64, u64) {
    let window = limit.window_ms.max(1);
    let stored = host
        .shared_get(&counter_key(backend))
        .and_then(|(v, _)| decode(&v));
    let (start, cur, prev) = roll(stored, now, window);
    let (used, _) = estimate(start, cur, prev, now, limit);
    let left = (f64::from(limit.requests) - used).max(0.0).floor() as u64;
    (left, start.saturating_add(window).saturating_sub(now))
}

/// Until when (ms since epoch) the target is cooling down after a 429, if it is.
pub fn cooling_until(host: &dyn Host, target: &str, now: u64) -> Option<u64> {
    cooldown_end(host, target).filter(|until| *until > now)
}

/// When the target's last cool-down ends or ended, if it ever had one; no clock needed to ask.
pub fn cooldown_end(host: &dyn Host, target: &str) -> Option<u64> {
    let (v, _) = host.shared_get(&cooldown_key(target))?;
    Some(u64::from_le_bytes(v.get(..8)?.try_into().ok()?))
}

/// Starts (or extends) a target's cool-down.
pub fn cool_down(host: &mut dyn Host, target: &str, until: u64) {
    let key = cooldown_key(target);
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = match host.shared_get(&key) {
            Some((v, cas)) => (
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_le_bytes),
                cas,
            ),
            None => (0, 0),
        };
        if current >= until {
            return;
        }
        if host.shared_set(&key, &until.to_le_bytes(), cas) != SharedWrite::Conflict {
            return;
        }
    }
}

/// How long a 429 asks the client to wait, in ms, uncapped (the caller caps it): `Retry-After`
/// as delta-seconds (digits; a decimal fraction is tolerated) or an HTTP-date (RFC 9110, any of
/// its three forms), else the longer of OpenAI's `x-ratelimit-reset-requests` / `-tokens`
/// durations (`1s`, `6m0s`, `1h2m3.5s`, `20ms`). Anything else (`inf`, `1e300`, `-5`, text)
/// is no hint at all.
pub fn retry_after_ms(
    retry_after: Option<&str>,
    reset_requests: Option<&str>,
    reset_tokens: Option<&str>,
    now_ms: u64,
) -> Option<u64> {
    if let Some(ms) = retry_after.and_then(|v| parse_retry_after(v, now_ms)) {
        return Some(ms);
    }
    [reset_requests, reset_tokens]
        .into_iter()
        .flatten()
        .filter_map(parse_duration_ms)
        .max()
}

/// `Retry-After`: delta-seconds or an HTTP-date, in ms from `now_ms`.
fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim_matches([' ', '\t']);
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return scaled(value, NS_PER_S).map(ns_to_ms);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let since_epoch = date.duration_since(std::time::UNIX_EPOCH).ok()?;
    let date_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
    Some(date_ms.saturating_sub(now_ms))
}

/// A Go-style duration such as `1h2m3.5s`, `20ms`, `6m0s` (units `h`, `m`, `s`, `ms`, `us`,
/// `µs`, `ns`), in ms rounded up; `None` for anything else.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim_matches([' ', '\t']);
    if rest.is_empty() || rest.len() > 64 {
        return None;
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (number, after) = rest.split_at(num_len);
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => NS_PER_S,
            "ms" => 1_000_000,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        total_ns = total_ns.saturating_add(scaled(number, unit_ns)?);
        rest = after;
    }
    Some(ns_to_ms(total_ns))
}

const NS_PER_S: u128 = 1_000_000_000;

/// Nanoseconds as whole milliseconds, rounded up; saturating.
fn ns_to_ms(ns: u128) -> u64 {
    u64::try_from(ns.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// `digits[.digits]` times `unit` (in ns), rounded up to whole ns; saturating.
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(frac)) {
        return None;
    }
    let whole = whole.bytes().fold(0u128, |n, b| {
        n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    });
    let mut out = whole.saturating_mul(unit);
    let mut scale = unit;
    let mut inexact = false;
    for b in frac.bytes() {
        let d = u128::from(b - b'0');
        if scale >= 10 {
            scale /= 10;
            out = out.saturating_add(d * scale);
        } else if d != 0 {
            inexact = true;
        }
    }
    Some(out.saturating_add(u128::from(inexact)))
}

#[cfg(test)]
mod tests;
