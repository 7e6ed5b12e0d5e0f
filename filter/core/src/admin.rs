//! The router's admin endpoints, answered by the filter from its counters and shared state:
//! `/router/health`, `/router/stats`, `/router/rate-limits`, `/auth/status`, `/auth/metrics`.
//! They take admin keys only (`[[admin_keys]]`), never client keys, and never show a key itself.
//! With `[discovery]`, `/router/health` also shows each discovered backend's fetches of its
//! models, and a backend whose last fetch failed is marked (when nothing worse is to say).

use serde_json::{json, Map, Value};

use crate::config::Plan;
use crate::contract::SHARED_DOWN_PREFIX;
use crate::discovery::state::FailedAt;
use crate::discovery::Listed;
use crate::host::Host;
use crate::{limits, metrics};

pub const PATHS: [&str; 5] = [
    "/router/health",
    "/router/stats",
    "/router/rate-limits",
    "/auth/status",
    "/auth/metrics",
];

/// `POST` a chat request naming a router here (with an admin key) to see how it would be routed:
/// the classifier is asked, nothing is generated (see `flow/router_request.rs`).
pub const ROUTE_PROBE_PATH: &str = "/api/route";

/// How long after a connection failure a backend is reported unhealthy.
pub const UNHEALTHY_FOR_MS: u64 = 30_000;

fn down_key(backend: &str) -> String {
    format!("{SHARED_DOWN_PREFIX}{backend}")
}

/// Notes a connection failure or timeout of a backend, for `/router/health`.
pub fn record_failure(host: &mut dyn Host, backend: &str) {
    let now = host.now_ms();
    host.shared_set(&down_key(backend), &now.to_le_bytes(), 0);
}

/// When the backend last failed a connection or timed out, if it ever did (ms since the epoch).
pub fn last_failure(host: &dyn Host, backend: &str) -> Option<u64> {
    let (v, _) = host.shared_get(&down_key(backend))?;
    Some(u64::from_le_bytes(v.get(..8)?.try_into().ok()?))
}

/// The JSON body for an admin path.
pub fn render(path: &str, plan: &Plan, host: &dyn Host) -> Value {
    match path {
        "/router/health" => health(plan, host),
        "/router/stats" => stats(plan, host),
        "/router/rate-limits" => rate_limits(plan, host),
        "/auth/status" => json!({
            "client_auth": !plan.keys.is_open(),
            "client_keys": plan.keys.keys().iter().map(|k| k.name.clone()).collect::<Vec<_>>(),
            "admin_keys": plan.admin_keys.keys().len(),
        }),
        _ => auth_metrics(plan, host),
    }
}

fn health(plan: &Plan, host: &dyn Host) -> Value {
    let now = host.now_ms();
    let listed = Listed::load(&|k| host.shared_get(k).map(|(v, _)| v), plan, now);
    let mut out = Map::new();
    for (bi, b) in plan.backends.iter().enumerate() {
        // Targets with a configured model name on this backend that are cooling down.
        let cooling: Vec<String> = plan
            .models
            .iter()
            .flat_map(|m| m.targets())
            .filter(|t| t.backend == bi)
            .filter_map(|t| {
                let model = t.backend_model.as_deref()?;
                let until = limits::cooling_until(host, &limits::target_key(&b.name, model), now)?;
                Some(format!(
                    "model `{model}` cooling down after a 429 for {} ms",
                    until - now
                ))
            })
            .collect();
        let at_limit = b
            .rate_limit
            .is_some_and(|l| limits::remaining(host, &b.name, l, now).0 == 0);
        let failed =
            last_failure(host, &b.name).filter(|t| now.saturating_sub(*t) < UNHEALTHY_FOR_MS);
        let (status, reason) = if let Some(t) = failed {
            (
                "unhealthy",
                format!(
                    "connection failure or timeout {} ms ago",
                    now.saturating_sub(t)
                ),
            )
        } else if at_limit {
            ("degraded", "at its request limit".to_string())
        } else if !cooling.is_empty() {
            ("degraded", cooling.join("; "))
        } else if let Some(failed) = discovery_failure(&listed, bi) {
            let status = if failed.failure.unreachable() {
                "unhealthy"
            } else {
                "degraded"
            };
            let reason = format!(
                "model discovery failed ({}) {} ms ago",
                failed.failure.kind(),
                now.saturating_sub(failed.at)
            );
            (status, reason)
        } else {
            ("healthy", String::new())
        };
        out.insert(
            b.name.clone(),
            json!({ "status": status, "reason": reason }),
        );
    }
    let mut health = Map::new();
    health.insert("backends".into(), Value::Object(out));
    if plan.discovery.is_some() {
        health.insert("discovery".into(), discovery(plan, &listed));
    }
    Value::Object(health)
}

/// The last failed fetch of backend `bi`'s models, when the last fetch failed.
fn discovery_failure(listed: &Listed, bi: usize) -> Option<FailedAt> {
    let view = listed.backends.iter().find(|v| v.backend == bi)?;
    view.state
        .failing()
        .then_some(view.state.last_failure)
        .flatten()
}

/// Per discovered backend: `ok`, `failing` or `pending` (not fetched yet), when it last
/// succeeded and failed (ms since the epoch), the last failure's kind and the models listed
/// now (none once the grace period after the last success is over). No URL or key.
fn discovery(plan: &Plan, listed: &Listed) -> Value {
    let mut out = Map::new();
    for view in &listed.backends {
        let Some(b) = plan.backends.get(view.backend) else {
            continue;
        };
        let s = &view.state;
        let state = if s.failing() {
            "failing"
        } else if s.last_success.is_some() {
            "ok"
        } else {
            "pending"
        };
        out.insert(
            b.name.clone(),
            json!({
                "state": state,
                "last_success_ms": s.last_success,
                "last_failure_ms": s.last_failure.map(|f| f.at),
                "last_error": s.last_failure.map(|f| f.failure.kind()),
                "models": view.models.len(),
            }),
        );
    }
    Value::Object(out)
}

fn stats(plan: &Plan, host: &dyn Host) -> Value {
    let names = &plan.metric_names;
    let mut backends = Map::new();
    for (i, b) in plan.backends.iter().enumerate() {
        backends.insert(
            b.name.clone(),
            json!({
                "requests": metrics::value_at(host, &names.backend_requests, i),
                "errors": metrics::value_at(host, &names.backend_errors, i),
                "rate_limit_skips": metrics::value_at(host, &names.backend_rate_limited, i),
            }),
        );
    }
    let mut models = Map::new();
    for (i, m) in plan.models.iter().enumerate() {
        models.insert(
            m.name.clone(),
            json!({ "requests": metrics::value_at(host, &names.model_requests, i) }),
        );
    }
    json!({
        "backends": backends,
        "models": models,
        "routers": router_stats(plan, host),
        "failovers": "see Envoy's cluster.airouter_failover_*.upstream_rq_retry",
    })
}

/// Per router: requests per route, the classifier's calls, failures, mean latency (ms) and
/// tokens, fallbacks, and the enrichment's calls and failures.
fn router_stats(plan: &Plan, host: &dyn Host) -> Value {
    let mut out = Map::new();
    for (r, n) in plan.routers.iter().zip(&plan.metric_names.routers) {
        let mut routes = Map::new();
        for (i, route) in r.routes.iter().enumerate() {
            routes.insert(
                route.label.clone(),
                json!(metrics::value_at(host, &n.routes, i)),
            );
        }
        let calls = host.counter(&n.classifier_calls);
        let latency = host.counter(&n.classifier_latency_ms);
        let mean = latency.checked_div(calls).unwrap_or(0);
        out.insert(
            r.name.clone(),
            json!({
                "routes": routes,
                "classifier": {
                    "calls": calls,
                    "failures": host.counter(&n.classifier_failures),
                    "mean_latency_ms": mean,
                    "tokens": host.counter(&n.classifier_tokens),
                },
                "fallbacks": host.counter(&n.fallbacks),
                "enrichment": {
                    "calls": host.counter(&n.enrich_calls),
                    "failures": host.counter(&n.enrich_failures),
                },
            }),
        );
    }
    Value::Object(out)
}

fn rate_limits(plan: &Plan, host: &dyn Host) -> Value {
    let now = host.now_ms();
    let mut out = Map::new();
    for b in &plan.backends {
        if let Some(limit) = b.rate_limit {
            let (remaining, reset_ms) = limits::remaining(host, &b.name, limit, now);
            out.insert(
                b.name.clone(),
                json!({ "limit": limit.requests, "window_ms": limit.window_ms, "remaining": remaining, "reset_ms": reset_ms }),
            );
        }
    }
    json!({ "backends": out })
}

fn auth_metrics(plan: &Plan, host: &dyn Host) -> Value {
    let mut keys = Map::new();
    for (i, k) in plan.keys.keys().iter().enumerate() {
        keys.insert(
            k.name.clone(),
            json!({ "requests": metrics::value_at(host, &plan.metric_names.key_requests, i) }),
        );
    }
    json!({ "keys": keys, "denied": host.counter(metrics::KEY_DENIED) })
}
