//! Whether a router's route can serve now, from what the flow already keeps per target: the
//! question [`crate::router::choice::choose`] asks, answered read-only (nothing is counted: the
//! normal routing counts the request against the target it then picks, in `targets.rs`).
//!
//! For each target of the route's model: `keyless` when its backend's key comes from an
//! environment variable that was empty or unset (a backend with `api_key_optional`; without it
//! Envoy refuses to start);
//! `unhealthy` when the backend failed a connection or timed out within
//! [`admin::UNHEALTHY_FOR_MS`] (what `/router/health` reports; Envoy's own health checks are
//! not visible to the filter, and its failover still skips what they mark); `cooling_down`
//! after a 429, as `targets::choose` reads it; `limited` when the backend's local request limit
//! has no room left.

use crate::admin;
use crate::api::Api;
use crate::config::{Model, ModelTarget, Plan};
use crate::host::Host;
use crate::limits;
use crate::router::choice::{model_availability, TargetState, Unavailable};

/// Whether the model a route names (`model`, as configured) can serve a request on `api` now.
pub fn route_status(
    host: &dyn Host,
    plan: &Plan,
    api: Api,
    model: &str,
) -> Result<(), Unavailable> {
    let Some(target) = plan
        .resolve(api, model)
        .filter(|t| t.how != crate::resolve::How::Default)
    else {
        return Err(Unavailable::Unconfigured);
    };
    let now = host.now_ms();
    let states: Vec<TargetState> = target
        .model
        .targets()
        .iter()
        .map(|t| target_state(host, plan, target.model, t, now))
        .collect();
    model_availability(&states)
}

/// What the flow knows of one target of `model` at `now`.
pub fn target_state(
    host: &dyn Host,
    plan: &Plan,
    model: &Model,
    target: &ModelTarget,
    now: u64,
) -> TargetState {
    let Some(backend) = plan.backends.get(target.backend) else {
        return TargetState {
            keyless: true,
            ..TargetState::default()
        };
    };
    let key = limits::target_key(&backend.name, model.state_name_at(target));
    let cooling = limits::cooling_until(host, &key, now)
        .is_some_and(|until| until - now <= backend.max_cooldown_ms);
    let limited = plan.global_limits.is_none()
        && backend
            .rate_limit
            .is_some_and(|l| limits::remaining(host, &backend.name, l, now).0 == 0);
    TargetState {
        keyless: backend.is_keyless(),
        unhealthy: admin::last_failure(host, &backend.name)
            .is_some_and(|t| now.saturating_sub(t) < admin::UNHEALTHY_FOR_MS),
        cooling_down: cooling,
        limited,
    }
}
