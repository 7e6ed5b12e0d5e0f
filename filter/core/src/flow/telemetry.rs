//! The GenAI telemetry's part of the flow (`[tracing]`, `[telemetry]`, see [`crate::telemetry`]):
//! the clock read when the request's headers come, a transcript of the response kept (without
//! its text) so its usage, finish reason and first token are known, and at the response's end
//! the facts set as filter state (for Envoy's span and access log) and recorded in the GenAI
//! histograms. Without those sections none of it runs: no clock, no filter state, no parsing.
//!
//! The end is the response body's last callback (or the headers' when no body follows), or the
//! one that passed a stream's `[DONE]` (its client may leave then), which Envoy runs before it
//! finishes the span; the log callback ends it otherwise (a client that left mid-answer), for
//! the access log only, as Envoy has finished the span by then.

use super::response::Response;
use super::routing::Routed;
use crate::api::Api;
use crate::config::{Model, Plan};
use crate::contract::SESSION_ATTEMPTS_PROPERTY;
use crate::host::Host;
use crate::session::Transcript;
use crate::telemetry::Exchange;

/// A measured request's state.
#[derive(Debug)]
pub(super) struct Measured {
    start_ms: u64,
    api: Option<Api>,
    done: bool,
}

/// Starts measuring the request when the plan asks for it.
pub(super) fn start(plan: &Plan, host: &dyn Host) -> Option<Measured> {
    plan.measures_gen_ai().then(|| Measured {
        start_ms: host.now_ms(),
        api: None,
        done: false,
    })
}

/// The request was routed for `api`: its response is transcribed (usage, finish reason, the
/// first token's time) when nothing else transcribes it.
pub(super) fn routed(m: &mut Measured, api: Api, response: &mut Response) {
    m.api = Some(api);
    if response.transcript.is_none() {
        response.transcript = Some(Transcript::new(false, 0));
    }
}

/// The response has ended (or the stream is over): the facts are set and recorded, once.
pub(super) fn finish(
    m: &mut Measured,
    host: &mut dyn Host,
    plan: &Plan,
    routed: &Routed,
    response: &Response,
    key: Option<&str>,
) {
    if m.done {
        return;
    }
    m.done = true;
    let attempt = last_attempt(host, plan, routed);
    let transcript = response.transcript();
    let usage = transcript.and_then(Transcript::usage).unwrap_or_default();
    let exchange = Exchange {
        api: m.api,
        model: &routed.client_name,
        configured_model: plan
            .models
            .get(routed.model)
            .map_or("", |m| m.name.as_str()),
        backend: attempt.as_ref().map(|(b, _)| b.as_str()),
        backend_model: attempt.as_ref().map(|(_, m)| m.as_str()),
        key,
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.completion_tokens,
        finish_reason: transcript.and_then(Transcript::finish_reason),
        succeeded: response.succeeded,
        streamed: response.is_stream(),
        start_ms: m.start_ms,
        first_token_ms: transcript.and_then(Transcript::first_text_ms),
        end_ms: host.now_ms(),
    };
    if plan.tracing.is_some() || plan.telemetry.access_log {
        for (property, value) in exchange.properties() {
            host.set_property(property, value.as_bytes());
        }
    }
    if plan.telemetry.metrics {
        for (series, value) in exchange.observations() {
            host.record(&series, value);
        }
    }
}

/// The backend that answered and the model name it was sent: the routed target's, or for a
/// failover model the last attempt its upstream filter noted.
fn last_attempt(host: &dyn Host, plan: &Plan, routed: &Routed) -> Option<(String, String)> {
    if let Some((index, _)) = &routed.single_backend {
        let backend = plan.backends.get(*index)?;
        let target = plan
            .models
            .get(routed.model)?
            .targets()
            .iter()
            .find(|t| t.backend == *index)?;
        let model = Model::name_at(target, &routed.client_name);
        return Some((backend.name.clone(), model.to_string()));
    }
    let noted = host.property(&[SESSION_ATTEMPTS_PROPERTY])?;
    let mut parts = noted.lines().last()?.split('\t');
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}
