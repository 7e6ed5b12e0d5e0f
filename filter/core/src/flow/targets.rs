//! A model's targets and their state shared by every worker: which target a request goes to
//! (the first neither cooling down after a 429 nor at its request limit), and a 429 cooling its
//! target down. Used by the routing of a request and by each failover attempt's upstream filter.

use crate::config::{Model, Plan};
use crate::errors::ApiError;
use crate::host::{Headers, Host};
use crate::{limits, metrics};

/// The index of the first target of `model` that has its key (see `api_key_optional`), is not
/// cooling down after a 429 and not at its request limit (counting the request against that
/// limit); a 429 when the targets with a key are all limited or cooling, a 503 when no target
/// has its key.
pub(super) fn choose(
    host: &mut dyn Host,
    plan: &Plan,
    model: &Model,
    client_name: &str,
    local_limits: bool,
) -> Result<usize, ApiError> {
    let mut wait = u64::MAX;
    let mut keyed = false;
    for (k, t) in model.targets().iter().enumerate() {
        let Some(backend) = plan.backends.get(t.backend) else {
            continue;
        };
        if backend.is_keyless() {
            continue;
        }
        keyed = true;
        let key = limits::target_key(&backend.name, model.state_name_at(t));
        // The clock is read only when there is something to compare it with: most requests
        // find no cool-down and no limit.
        if let Some(until) = limits::cooldown_end(host, &key) {
            let now = host.now_ms();
            // One ending later than the backend's cap allows cannot be from this configuration
            // (an older, larger cap): it is ignored.
            if until > now && until - now <= backend.max_cooldown_ms {
                wait = wait.min(until - now);
                continue;
            }
        }
        if let Some(limit) = backend.rate_limit.filter(|_| local_limits) {
            let now = host.now_ms();
            if let Err(w) = limits::try_acquire(host, &backend.name, limit, now) {
                metrics::add_at(host, &plan.metric_names.backend_rate_limited, t.backend, 1);
                wait = wait.min(w);
                continue;
            }
        }
        return Ok(k);
    }
    if !keyed {
        return Err(ApiError::no_backend_key(client_name));
    }
    Err(ApiError::all_limited(client_name, wait))
}

/// A 429 that says when to come back cools its target down for that long (at most `max_ms`),
/// for every worker. `target` is a [`limits::target_key`].
pub(super) fn start_cooldown(host: &mut dyn Host, target: &str, max_ms: u64) {
    let resp = Headers::Response;
    let now = host.now_ms();
    let hint = limits::retry_after_ms(
        host.header(resp, "retry-after").as_deref(),
        host.header(resp, "x-ratelimit-reset-requests").as_deref(),
        host.header(resp, "x-ratelimit-reset-tokens").as_deref(),
        now,
    );
    if let Some(ms) = hint.map(|ms| ms.min(max_ms)).filter(|ms| *ms > 0) {
        limits::cool_down(host, target, now.saturating_add(ms));
    }
}
