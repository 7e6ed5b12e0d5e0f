//! Discovery's state in Envoy's shared data, one pair of keys per backend, read and written by
//! every worker: the [`State`] (when the next fetch is due, which worker holds the fetch now,
//! the last success and failure) under [`SHARED_DISCOVERY_STATE_PREFIX`], small and read on
//! every tick; the models of the last success under [`SHARED_DISCOVERY_MODELS_PREFIX`], read only
//! by `/v1/models`. Both are JSON.
//!
//! One worker fetches at a time: a worker takes the fetch by a compare-and-swap write of the
//! state (a lease until the fetch's deadline plus [`LEASE_SLACK_MS`]), so another worker that
//! read the same state loses the race and waits; a lease whose holder never answered (its VM was
//! replaced) runs out and the next tick takes it again. The one unguarded moment is a backend's
//! very first fetch, when there is no state to compare against yet: two workers may both fetch
//! it once.

use serde::{Deserialize, Serialize};

use super::{DiscoveredModel, Failure};
use crate::config::Discovery;
use crate::contract::{SHARED_DISCOVERY_MODELS_PREFIX, SHARED_DISCOVERY_STATE_PREFIX};
use crate::host::{RootHost, SharedWrite};
use crate::text::concat;

/// How long a lease outlasts the fetch's deadline, in ms: Envoy answers a call-out by its
/// deadline, so only a holder that is gone leaves a lease to run out.
pub const LEASE_SLACK_MS: u64 = 2000;
/// Compare-and-swap attempts when writing a fetch's result.
const WRITE_ATTEMPTS: usize = 8;

/// A failed fetch: when (ms since the epoch) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAt {
    pub at: u64,
    pub failure: Failure,
}

/// What every worker knows of one backend's discovery. Times in ms since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// When the next fetch is due (0: now).
    #[serde(default)]
    pub next_at: u64,
    /// A worker is fetching until then (0: none is).
    #[serde(default)]
    pub lease_until: u64,
    /// The last successful fetch.
    #[serde(default)]
    pub last_success: Option<u64>,
    /// The last failed fetch.
    #[serde(default)]
    pub last_failure: Option<FailedAt>,
    /// Models the last successful fetch kept (0 once they are dropped).
    #[serde(default)]
    pub models: usize,
}

impl State {
    /// The last fetch failed (a failure after the last success, or no success yet).
    pub fn failing(&self) -> bool {
        self.last_failure
            .is_some_and(|f| self.last_success.is_none_or(|s| f.at >= s))
    }

    /// The models of the last success are still listed at `now`: it is at most `grace_ms` old.
    pub fn listed(&self, now: u64, grace_ms: u64) -> bool {
        self.last_success
            .is_some_and(|t| now.saturating_sub(t) <= grace_ms)
    }
}

/// The shared-data key of `backend`'s state.
pub fn state_key(backend: &str) -> String {
    concat(&[SHARED_DISCOVERY_STATE_PREFIX, backend])
}

/// The shared-data key of `backend`'s discovered models.
pub fn models_key(backend: &str) -> String {
    concat(&[SHARED_DISCOVERY_MODELS_PREFIX, backend])
}

/// A state as shared data holds it; an unreadable one reads as a fresh state.
pub fn decode_state(bytes: &[u8]) -> State {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// Models as shared data holds them; unreadable ones read as none.
pub fn decode_models(bytes: &[u8]) -> Vec<DiscoveredModel> {
    serde_json::from_slice(bytes).unwrap_or_default()
}

fn load(host: &dyn RootHost, key: &str) -> (State, u32) {
    host.shared_get(key)
        .map_or((State::default(), 0), |(bytes, cas)| {
            (decode_state(&bytes), cas)
        })
}

/// Takes `backend`'s fetch for this worker when it is due and no lease holds it, leasing it for
/// `hold_ms`; `true` when this worker's write won, so it fetches.
pub fn lease(host: &mut dyn RootHost, backend: &str, now: u64, hold_ms: u64) -> bool {
    let key = state_key(backend);
    let (mut state, cas) = load(host, &key);
    if now < state.next_at || now < state.lease_until {
        return false;
    }
    state.lease_until = now.saturating_add(hold_ms);
    let Ok(bytes) = serde_json::to_vec(&state) else {
        return false;
    };
    host.shared_set(&key, &bytes, cas) == SharedWrite::Written
}

/// Writes a fetch's `outcome` for `backend` at `now`: the models of a success (before the state,
/// so a state naming a success never precedes its models), then the state: lease released, the
/// next fetch due after a jittered interval, the success or failure noted. A failure after the
/// grace period drops the models kept. Logs when the backend starts failing.
pub fn record(
    host: &mut dyn RootHost,
    backend: &str,
    now: u64,
    outcome: &Result<Vec<DiscoveredModel>, Failure>,
    config: &Discovery,
) {
    let key = state_key(backend);
    if let Ok(models) = outcome {
        let bytes = serde_json::to_vec(models).unwrap_or_else(|_| b"[]".to_vec());
        if host.shared_set(&models_key(backend), &bytes, 0) != SharedWrite::Written {
            host.log_warn(&format!(
                "model discovery: could not keep the models of backend `{backend}`"
            ));
            return;
        }
    }
    for _ in 0..WRITE_ATTEMPTS {
        let (mut state, cas) = load(host, &key);
        let was_failing = state.failing();
        state.lease_until = 0;
        state.next_at = now.saturating_add(jittered(config.interval_ms, now, backend));
        match outcome {
            Ok(models) => {
                state.last_success = Some(now);
                state.models = models.len();
            }
            Err(failure) => {
                state.last_failure = Some(FailedAt {
                    at: now,
                    failure: *failure,
                });
                if state.models > 0 && !state.listed(now, config.grace_ms) {
                    state.models = 0;
                    host.shared_set(&models_key(backend), b"[]", 0);
                }
            }
        }
        let Ok(bytes) = serde_json::to_vec(&state) else {
            return;
        };
        match host.shared_set(&key, &bytes, cas) {
            SharedWrite::Written => {
                if let (Err(failure), false) = (outcome, was_failing) {
                    host.log_warn(&format!(
                        "model discovery: backend `{backend}` failed: {}",
                        failure.kind()
                    ));
                }
                return;
            }
            SharedWrite::Conflict => continue,
            SharedWrite::Failed => break,
        }
    }
    host.log_warn(&format!(
        "model discovery: could not note the fetch of backend `{backend}`"
    ));
}

/// `interval_ms`, moved by up to a tenth either way, by a hash of `now` and the backend's name:
/// workers and backends started together drift apart instead of fetching in step.
pub fn jittered(interval_ms: u64, now: u64, backend: &str) -> u64 {
    let spread = interval_ms / 5;
    let seed = backend.bytes().fold(now ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    interval_ms - interval_ms / 10 + mix(seed) % (spread + 1)
}

/// SplitMix64's finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
