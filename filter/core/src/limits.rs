//! Per-backend limits shared by every Envoy worker: a sliding-window request count, and a
//! cool-down after a 429 that said when to come back. Both live in proxy-wasm shared data, updated
//! with compare-and-swap so concurrent workers never lose a count.
//!
//! The window is approximated the usual way: the previous fixed window's count, weighted by how
//! much of it still overlaps the sliding window, plus the current window's count.

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
    concat(&["airouter/rl/", backend])
}

/// Cool-downs are per target (backend and model): providers limit per model.
fn cooldown_key(target: &str) -> String {
    concat(&["airouter/cool/", target])
}

/// The name a target's cool-down is kept under.
pub fn target_key(backend: &str, backend_model: &str) -> String {
    concat(&[backend, "/", backend_model])
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
        Some((start, cur, _)) if start + window == this_start => (this_start, 0, cur),
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
    let elapsed = (now - start) as f64;
    let overlap = (window - elapsed).max(0.0) / window;
    let used = prev as f64 * overlap + cur as f64;
    let wait = if used + need <= f64::from(limit.requests) {
        0
    } else if prev == 0 {
        // Only this window counts: wait for it to end.
        (start + limit.window_ms).saturating_sub(now)
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
        match host.shared_set(&key, &encode(start, cur + 1, prev), cas) {
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
        if host.shared_set(&counter, &encode(start, cur + amount, prev), cas)
            != SharedWrite::Conflict
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
    (left, start + window - now)
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

/// How long a 429 asks the client to wait, in ms: `Retry-After` (seconds), else OpenAI's
/// `x-ratelimit-reset-requests` / `-tokens` durations such as `1s`, `6m0s`, `20ms`.
pub fn retry_after_ms(
    retry_after: Option<&str>,
    reset_requests: Option<&str>,
    reset_tokens: Option<&str>,
) -> Option<u64> {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<f64>().ok()) {
        return (secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64);
    }
    [reset_requests, reset_tokens]
        .into_iter()
        .flatten()
        .filter_map(parse_duration_ms)
        .max()
}

/// `1h2m3.5s`, `20ms`, `6m0s` → milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1.0
            }
            ('h', _) => 3_600_000.0,
            ('m', _) => 60_000.0,
            ('s', _) => 1000.0,
            _ => return None,
        };
        total += value * unit;
        any = true;
    }
    (any && number.is_empty()).then_some(total.ceil() as u64)
}

#[cfg(test)]
mod tests;
