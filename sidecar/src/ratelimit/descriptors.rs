//! From the descriptors Envoy sends to the counts to take: pure, so every rule is unit-tested
//! without Redis. The descriptor shapes are fixed by [`airouter_core::global_limits`] and the
//! rate limit actions `airouter envoy` renders.

use std::collections::HashMap;

use airouter_core::config::Plan;
use airouter_core::contract;
use airouter_core::errors::ApiError;
use airouter_core::global_limits::{self as gl, Kind};
use airouter_core::limits::RateLimit;

use super::proto::RateLimitDescriptor;

/// What one descriptor does to one sliding window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Take `amount` if the window has room for it; otherwise the request is refused.
    Take { amount: u64 },
    /// Add `delta` (negative: give back) to the window slot of time `at_ms`; never refused.
    Adjust { delta: i64, at_ms: u64 },
}

/// A window in Redis and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub redis_key: String,
    pub limit: u64,
    pub window_ms: u64,
    pub op: Op,
    /// The client's error when this charge is refused, given the wait in milliseconds.
    pub refusal: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    KeyRequests(String),
    KeyTokens(String),
    Backend,
}

impl Refusal {
    pub fn error(&self, wait_ms: u64) -> ApiError {
        match self {
            Refusal::KeyRequests(k) => ApiError::key_limited(k, wait_ms),
            Refusal::KeyTokens(k) => ApiError::key_budget(k, "tokens", wait_ms),
            Refusal::Backend => ApiError::backend_limited(wait_ms),
        }
    }
}

const MINUTE_MS: u64 = 60_000;

fn entry<'d>(d: &'d RateLimitDescriptor, key: &str) -> Option<&'d str> {
    d.entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// The plan's limits by name, built once when the service starts (the service answers every
/// routed request, so it looks names up rather than scanning the plan).
#[derive(Debug, Default)]
pub struct Limits {
    /// Key name -> (requests per minute, tokens per minute).
    keys: HashMap<String, (Option<u32>, Option<u32>)>,
    backends: HashMap<String, RateLimit>,
}

impl Limits {
    pub fn new(plan: &Plan) -> Self {
        Limits {
            keys: plan
                .keys
                .keys()
                .iter()
                .map(|k| (k.name.clone(), (k.requests_per_minute, k.tokens_per_minute)))
                .collect(),
            backends: plan
                .backends
                .iter()
                .filter_map(|b| Some((b.name.clone(), b.rate_limit?)))
                .collect(),
        }
    }
}

/// The charge one descriptor asks for; `None` when nothing in the plan limits it (an unknown
/// or unlimited key or backend, or a descriptor that is not ours).
pub fn charge(limits: &Limits, d: &RateLimitDescriptor, request_hits: u32) -> Option<Charge> {
    let kind = Kind::parse(entry(d, contract::RL_KIND_ENTRY)?)?;
    let hits = d
        .hits_addend
        .as_ref()
        .map(|h| h.value)
        .unwrap_or(u64::from(request_hits.max(1)));
    if kind == Kind::BackendRequests {
        let name = entry(d, contract::RL_BACKEND_ENTRY)?;
        let limit = *limits.backends.get(name)?;
        return Some(Charge {
            redis_key: format!("airouter:backend:{name}:requests"),
            limit: u64::from(limit.requests),
            window_ms: limit.window_ms.max(1),
            op: Op::Take { amount: 1 },
            refusal: Refusal::Backend,
        });
    }
    let name = entry(d, contract::RL_KEY_ENTRY)?;
    let &(requests_per_minute, tokens_per_minute) = limits.keys.get(name)?;
    if kind == Kind::KeyRequests {
        return Some(Charge {
            redis_key: format!("airouter:key:{name}:requests"),
            limit: u64::from(requests_per_minute?),
            window_ms: MINUTE_MS,
            op: Op::Take { amount: 1 },
            refusal: Refusal::KeyRequests(name.to_string()),
        });
    }
    let (reserved, at_ms) = gl::parse_reserve(entry(d, contract::RL_RESERVE_ENTRY)?)?;
    let op = if kind == Kind::KeyTokens {
        Op::Take { amount: reserved }
    } else {
        let delta =
            i64::try_from(hits).unwrap_or(i64::MAX) - i64::try_from(reserved).unwrap_or(i64::MAX);
        Op::Adjust { delta, at_ms }
    };
    Some(Charge {
        redis_key: format!("airouter:key:{name}:tokens"),
        limit: u64::from(tokens_per_minute?),
        window_ms: MINUTE_MS,
        op,
        refusal: Refusal::KeyTokens(name.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::proto::rate_limit_descriptor::Entry;
    use super::super::proto::UInt64Value;
    use super::*;

    const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
rate_limit = { requests = 5, window_ms = 1000 }
[backends.free]
kind = "openai"
url = "http://127.0.0.1:8001/v1"
[[models]]
name = "m"
apis = ["chat"]
target = { backend = "local" }
[[keys]]
name = "alice"
key = "sk-a"
requests_per_minute = 10
tokens_per_minute = 1000
[[keys]]
name = "bob"
key = "sk-b"
[global_limits]
redis = "redis://127.0.0.1:6379"
"#;

    fn plan() -> Limits {
        Limits::new(&airouter_core::config::compile("t.toml", CONFIG, &|_| None).unwrap())
    }

    fn d(entries: &[(&str, &str)], hits: Option<u64>) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            hits_addend: hits.map(|value| UInt64Value { value }),
        }
    }

    #[test]
    fn key_requests_take_one_from_the_minute() {
        let c = charge(
            &plan(),
            &d(&[("airouter", "key_requests"), ("key", "alice")], None),
            0,
        );
        let c = c.unwrap();
        assert_eq!(
            (c.limit, c.window_ms, &c.op),
            (10, 60_000, &Op::Take { amount: 1 })
        );
        assert_eq!(c.redis_key, "airouter:key:alice:requests");
    }

    #[test]
    fn token_reservations_take_the_reserved_amount_and_settle_the_difference() {
        let p = plan();
        let take = charge(
            &p,
            &d(
                &[
                    ("airouter", "key_tokens"),
                    ("key", "alice"),
                    ("reserve", "300@1000"),
                ],
                Some(300),
            ),
            0,
        )
        .unwrap();
        assert_eq!((take.limit, take.op), (1000, Op::Take { amount: 300 }));
        let settle = charge(
            &p,
            &d(
                &[
                    ("airouter", "settle"),
                    ("key", "alice"),
                    ("reserve", "300@1000"),
                ],
                Some(120),
            ),
            0,
        )
        .unwrap();
        assert_eq!(
            settle.op,
            Op::Adjust {
                delta: -180,
                at_ms: 1000
            }
        );
        assert_eq!(settle.redis_key, take.redis_key);
        let over = charge(
            &p,
            &d(
                &[
                    ("airouter", "settle"),
                    ("key", "alice"),
                    ("reserve", "300@1000"),
                ],
                Some(450),
            ),
            0,
        )
        .unwrap();
        assert_eq!(
            over.op,
            Op::Adjust {
                delta: 150,
                at_ms: 1000
            }
        );
    }

    #[test]
    fn backend_requests_use_the_backends_window() {
        let c = charge(
            &plan(),
            &d(
                &[("airouter", "backend_requests"), ("backend", "local")],
                None,
            ),
            0,
        )
        .unwrap();
        assert_eq!((c.limit, c.window_ms), (5, 1000));
        assert_eq!(c.refusal.error(1500).retry_after, Some(2));
    }

    #[test]
    fn unlimited_unknown_or_foreign_descriptors_take_nothing() {
        let p = plan();
        for entries in [
            vec![("airouter", "key_requests"), ("key", "bob")],
            vec![("airouter", "key_requests"), ("key", "nobody")],
            vec![("airouter", "backend_requests"), ("backend", "free")],
            vec![
                ("airouter", "key_tokens"),
                ("key", "alice"),
                ("reserve", "junk"),
            ],
            vec![("airouter", "what")],
            vec![("generic_key", "x")],
        ] {
            assert_eq!(charge(&p, &d(&entries, None), 0), None, "{entries:?}");
        }
    }
}
