//! Requests the filter sends on its own while a client's request is held (Envoy's HTTP
//! call-outs, [`Host::http_call`]): to the first target of a configured model that can serve
//! now, on an OpenAI-compatible backend, with that backend's path prefix, authority and its own
//! credential. A pass-through backend gets no credential: a call-out is the router's, never the
//! client's, so the client's key is never sent on it.

use super::route_status::target_state;
use crate::api::Api;
use crate::config::{BackendKind, Credential, Model, Plan};
use crate::host::{CallOut, Host};
use crate::text::concat;

/// A call-out on its way: the host's token and when it was sent (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sent {
    pub token: u32,
    pub at_ms: u64,
}

/// Why no call-out was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NotSent {
    /// The model is not configured for the API, or none of its targets can serve now.
    NoTarget,
    /// The host refused the call (an unknown cluster).
    Refused,
}

impl NotSent {
    pub fn as_str(&self) -> &'static str {
        match self {
            NotSent::NoTarget => "no target of its model can serve now",
            NotSent::Refused => "Envoy refused the call",
        }
    }
}

/// The backend model name of the first target of `model` (resolved on `api`) that can serve
/// now, with the target's backend index; `None` when there is none.
pub(super) fn pick(host: &dyn Host, plan: &Plan, api: Api, model: &str) -> Option<(usize, String)> {
    let resolved = plan.resolve(api, model)?;
    let now = host.now_ms();
    resolved.model.targets().iter().find_map(|t| {
        let backend = plan.backends.get(t.backend)?;
        let state = target_state(host, plan, resolved.model, t, now);
        (backend.kind == BackendKind::Openai && state.unavailable().is_none()).then(|| {
            (
                t.backend,
                Model::name_at(t, &resolved.client_name).to_string(),
            )
        })
    })
}

/// Sends `body` (JSON) as `POST {prefix}{api's path}` to backend `backend` of the plan, with a
/// deadline of `timeout_ms`.
pub(super) fn send(
    host: &mut dyn Host,
    plan: &Plan,
    backend: usize,
    api: Api,
    body: &[u8],
    timeout_ms: u64,
) -> Result<Sent, NotSent> {
    let b = plan.backends.get(backend).ok_or(NotSent::NoTarget)?;
    let path = concat(&[b.url.path_prefix.as_str(), api.path_suffix()]);
    let bearer = match &b.credential {
        Credential::Key(secret) => Some(concat(&["Bearer ", secret.expose()])),
        Credential::PassThrough | Credential::None => None,
    };
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", "POST"),
        (":path", &path),
        (":authority", &b.url.authority),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let cluster = b.cluster_name();
    let call = CallOut {
        cluster: &cluster,
        headers: &headers,
        body,
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
    };
    let at_ms = host.now_ms();
    host.http_call(&call)
        .map(|token| Sent { token, at_ms })
        .ok_or(NotSent::Refused)
}
