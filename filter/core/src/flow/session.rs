//! The session record's part of the flow (`[session_log]`, see [`crate::session`]): started with
//! the request's headers, told where the request went and what its backends answered, and
//! finished and handed to Envoy as the filter state [`SESSION_PROPERTY`] in the log callback
//! (which Envoy runs before its access loggers).

use super::response::Response;
use super::routing::Routed;
use super::WHOLE_BODY;
use crate::api::Api;
use crate::config::{Model, Plan};
use crate::contract::{SESSION_ATTEMPTS_PROPERTY, SESSION_PROPERTY};
use crate::host::{Headers, Host};
use crate::metrics;
use crate::session::{sequence, Recorder};

/// The request's record, when the plan keeps a session log.
pub(super) fn start(plan: &Plan, host: &dyn Host) -> Option<Box<Recorder>> {
    let log = plan.session_log.as_ref()?;
    Some(Box::new(Recorder::start(log, host)))
}

/// The request was routed as `routed` says: its model, the body sent on and, for a request sent
/// straight to one backend, that backend and the model name it was sent under (a failover
/// model's attempts are noted by its upstream filter, see [`attempts_from_upstream`]).
pub(super) fn routed(s: &mut Recorder, host: &dyn Host, plan: &Plan, api: Api, routed: &Routed) {
    let body = if s.reads_body() {
        host.body(Headers::Request, WHOLE_BODY)
    } else {
        None
    };
    s.routed(api, &routed.client_name, body.as_deref());
    let Some((index, _)) = &routed.single_backend else {
        return;
    };
    let backend = plan.backends.get(*index);
    let target = plan
        .models
        .get(routed.model)
        .and_then(|m| m.targets().iter().find(|t| t.backend == *index));
    if let (Some(backend), Some(target)) = (backend, target) {
        s.attempt(
            &backend.name,
            Model::name_at(target, &routed.client_name),
            None,
        );
    }
}

/// The response's headers: the time of the first byte and, for a single backend, its status.
pub(super) fn response_headers(s: &mut Recorder, host: &dyn Host, routed: &Routed) {
    s.first_byte(host.now_ms());
    if routed.single_backend.is_some() {
        if let Some(status) = status(host) {
            s.attempt_status(status);
        }
    }
}

/// Finishes the record, numbered in the Envoy process's sequence, and hands it to Envoy. The
/// number is taken here, as the record is handed over, so the numbers reach Envoy's access log
/// in about their order.
pub(super) fn finish(s: &mut Recorder, host: &mut dyn Host, response: &Response) {
    if !s.has_attempts() {
        attempts_from_upstream(s, host);
    }
    if let Some(n) = sequence::next(host) {
        s.numbered(n);
    }
    s.streamed(response.is_stream());
    let record = s.finish(
        status(host),
        host.now_ms(),
        response.transcript(),
        response.estimated_tokens(),
    );
    host.set_property(SESSION_PROPERTY, &record);
    host.count(metrics::SESSION_RECORDS);
}

/// The attempts a failover model's upstream filter noted, one line each: `backend\tmodel`, then
/// `\tstatus` once the backend answered.
fn attempts_from_upstream(s: &mut Recorder, host: &dyn Host) {
    let Some(noted) = host.property(&[SESSION_ATTEMPTS_PROPERTY]) else {
        return;
    };
    for line in noted.lines() {
        let mut parts = line.split('\t');
        let (Some(backend), Some(model)) = (parts.next(), parts.next()) else {
            continue;
        };
        let status = parts.next().and_then(|s| s.parse().ok());
        s.attempt(backend, model, status);
    }
}

/// The response's status, as the host has it now.
fn status(host: &dyn Host) -> Option<u16> {
    host.header(Headers::Response, ":status")?.parse().ok()
}
