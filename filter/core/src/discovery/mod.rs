//! Models discovered from the backends (`[discovery]`): for a pattern model that passes the
//! client's name through (e.g. `hosted-*`), `/v1/models` also lists the backend's own models
//! the pattern serves, as the backend's `GET /v1/models` names them.
//!
//! The filter's root context (one per Envoy worker) runs a [`Discoverer`] on a timer
//! ([`tick_ms`]). On each tick, for every backend the plan discovers, a worker whose turn it is
//! takes the fetch with a compare-and-swap lease in shared data ([`state`]), so one worker of
//! the Envoy asks each backend once per interval, and sends the call-out ([`fetch`]); its answer
//! comes back to the same root context, is read within bounds ([`parse`]) and written to shared
//! data for every worker. `/v1/models` and `/router/health` read it from there ([`listed`]):
//! a backend whose fetches fail keeps its models listed for the grace period after its last
//! success, then loses them until a fetch succeeds again.

pub mod fetch;
pub mod listed;
pub mod parse;
pub mod state;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::config::Plan;
use crate::host::{CallResponse, RootHost};
pub use fetch::lists_models;
pub use listed::Listed;

/// Longest period of the discovery timer, in ms: a due fetch waits at most this long.
pub const MAX_TICK_MS: u64 = 1000;

/// One model a backend lists, as kept: its name there (which the client uses, through a pattern
/// that passes names through), and `created` (seconds since the epoch) and `owned_by` when the
/// backend gave them and they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredModel {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
}

/// Why a fetch brought no list. No URL, host or key is ever part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Envoy refused the call (e.g. the backend's cluster is unknown).
    Refused,
    /// No response: connection refused or reset, or the deadline passed.
    Unreachable,
    /// An answer with a status other than 200.
    Status(u16),
    /// A body longer than the filter reads ([`crate::host::CALL_RESPONSE_MAX_BYTES`]).
    TooLarge,
    /// A body that is not a JSON model list.
    BadBody,
}

impl Failure {
    /// The failure as `/router/health` shows it: `refused`, `unreachable`, `http_503`,
    /// `body_too_large` or `bad_body`.
    pub fn kind(&self) -> String {
        match self {
            Failure::Refused => "refused".into(),
            Failure::Unreachable => "unreachable".into(),
            Failure::Status(status) => format!("http_{status}"),
            Failure::TooLarge => "body_too_large".into(),
            Failure::BadBody => "bad_body".into(),
        }
    }

    /// Whether the backend could not be reached at all (no answer from it).
    pub fn unreachable(&self) -> bool {
        matches!(self, Failure::Refused | Failure::Unreachable)
    }
}

/// The period of the discovery timer for `plan`, in ms; `None` when it discovers nothing (no
/// timer is needed). A fetch falls due between ticks, so it waits at most one period.
pub fn tick_ms(plan: &Plan) -> Option<u64> {
    let config = plan.discovery.as_ref()?;
    (!config.backends.is_empty()).then(|| (config.interval_ms / 2).clamp(100, MAX_TICK_MS))
}

/// A call-out this worker sent: its token, the backend's name and when it was sent (ms).
#[derive(Debug, Clone)]
struct Pending {
    token: u32,
    backend: String,
    sent_at: u64,
}

/// One worker's discovery (held by the root context): the fetches it has sent and awaits.
#[derive(Debug, Default)]
pub struct Discoverer {
    pending: Vec<Pending>,
}

impl Discoverer {
    /// A timer tick: for each backend the plan discovers whose fetch is due and free, takes the
    /// fetch and sends it; a call the host refuses is recorded as failed at once.
    pub fn on_tick(&mut self, host: &mut dyn RootHost, plan: &Plan) {
        let Some(config) = &plan.discovery else {
            return;
        };
        let now = host.now_ms();
        let hold_ms = config.timeout_ms.saturating_add(state::LEASE_SLACK_MS);
        // An answer never delivered (the host dropped it) frees the backend once the lease ran out.
        self.pending
            .retain(|p| now.saturating_sub(p.sent_at) < hold_ms);
        for backend in config.backends.iter().filter_map(|&i| plan.backends.get(i)) {
            if self.pending.iter().any(|p| p.backend == backend.name)
                || !state::lease(host, &backend.name, now, hold_ms)
            {
                continue;
            }
            match fetch::send(host, backend, config.timeout_ms) {
                Some(token) => self.pending.push(Pending {
                    token,
                    backend: backend.name.clone(),
                    sent_at: now,
                }),
                None => state::record(host, &backend.name, now, &Err(Failure::Refused), config),
            }
        }
    }

    /// The answer of a call-out: when it is one of this worker's fetches, its models (or why
    /// there are none) are written for every worker. `false` for a token this worker did not
    /// send.
    pub fn on_response(
        &mut self,
        host: &mut dyn RootHost,
        plan: &Plan,
        token: u32,
        response: &CallResponse,
    ) -> bool {
        let Some(at) = self.pending.iter().position(|p| p.token == token) else {
            return false;
        };
        let pending = self.pending.swap_remove(at);
        if let Some(config) = &plan.discovery {
            let outcome = parse::outcome(response, config.max_models);
            let now = host.now_ms();
            state::record(host, &pending.backend, now, &outcome, config);
        }
        true
    }
}
