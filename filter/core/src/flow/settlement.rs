//! What a request costs its key in tokens: the budget checked at admission, usage asked of a
//! stream, the tokens a response reports charged (here, or through Envoy's rate limit filter with
//! `[global_limits]`), an estimate charged when a success reports none (a stream's own text when
//! it ended, the admission estimate when its client left first), and the marks Envoy's rate
//! limit filter reads (see [`global_limits`]).

use crate::api::Api;
use crate::auth::ClientKey;
use crate::config::{Backend, Plan};
use crate::contract::{self, RL_BACKEND_HEADER};
use crate::errors::ApiError;
use crate::host::{Headers, Host};
use crate::json_body::{self, UsageRequest};
use crate::text::concat;
use crate::{global_limits, limits, metrics};

/// The completion tokens assumed, per choice, for a request that sets no `max_tokens` when a
/// budgeted key's response reports no usage (some servers never do; a client may leave before
/// the usage chunk): its estimate is the prompt (its estimated tokens) plus this.
pub const ESTIMATE_MAX_TOKENS: u32 = 1024;

/// The client key's tokens-per-minute budget, when it has one.
pub(super) fn token_budget(key: Option<&ClientKey>) -> Option<limits::RateLimit> {
    let tpm = key?.tokens_per_minute?;
    Some(limits::RateLimit {
        requests: tpm,
        window_ms: 60_000,
    })
}

/// The limiter's name for a key's token budget.
fn token_key(key_name: &str) -> String {
    concat(&["keytok/", key_name])
}

/// Admission, for a key whose budget is kept here: a 429 when its tokens for this minute are
/// spent (nothing is charged yet).
pub(super) fn check_budget(host: &mut dyn Host, key: &ClientKey) -> Result<(), ApiError> {
    let Some(limit) = token_budget(Some(key)) else {
        return Ok(());
    };
    let now = host.now_ms();
    limits::check(host, &token_key(&key.name), limit, now)
        .map_err(|wait| ApiError::key_budget(&key.name, "tokens", wait))
}

/// For a key with a token budget, a streaming chat or completion body asking for usage.
pub(super) fn usage_request(
    key: Option<&ClientKey>,
    api: Api,
    body: &[u8],
) -> Result<Option<UsageRequest>, ApiError> {
    if token_budget(key).is_none() || !matches!(api, Api::Chat | Api::Completions) {
        return Ok(None);
    }
    json_body::with_stream_usage(body)
}

/// For a key whose token budget is kept here (no `[global_limits]`): what the request is charged
/// when a successful response reports no usage (see [`ESTIMATE_MAX_TOKENS`]).
pub(super) fn estimate(plan: &Plan, key: Option<&ClientKey>, api: Api, body: &[u8]) -> Option<u64> {
    let local = plan.global_limits.is_none();
    (local && token_budget(key).is_some())
        .then(|| global_limits::reservation(api, body, ESTIMATE_MAX_TOKENS))
}

/// For a chat or completions request whose stream's usage matters (the client asked for it with
/// `stream_options.include_usage`, or the key has a token budget, for which the router asks),
/// how the stream is counted should the backend report no usage anyway: the prompt's estimated
/// tokens ([`global_limits::prompt_tokens`]) and, when the client asked, the `object` of the
/// usage chunk the router then writes for it. The completion is counted from the streamed text
/// (see [`crate::sse::SseModelRewriter::estimating_usage`]). Other streams are not counted:
/// their backend was not asked for usage, and reading every event's text would cost each one.
pub(super) fn stream_estimate(
    key: Option<&ClientKey>,
    api: Api,
    body: &[u8],
) -> Option<(u64, Option<&'static str>)> {
    let object = match api {
        Api::Chat => "chat.completion.chunk",
        Api::Completions => "text_completion",
        _ => return None,
    };
    let asked = json_body::asks_stream_usage(body);
    (asked || token_budget(key).is_some())
        .then(|| (global_limits::prompt_tokens(body), asked.then_some(object)))
}

/// With global limits: names the key, the routed backend and the token reservation for
/// Envoy's rate limit filter (see [`global_limits`]).
pub(super) fn mark_for_global_limits(
    host: &mut dyn Host,
    plan: &Plan,
    key: Option<&ClientKey>,
    api: Api,
    body: &[u8],
    backend: Option<&Backend>,
) {
    let Some(g) = plan.global_limits.as_ref() else {
        return;
    };
    let req = Headers::Request;
    if let Some(k) = key {
        if k.requests_per_minute.is_some() || k.tokens_per_minute.is_some() {
            host.set_header(req, contract::RL_KEY_HEADER, Some(&k.name));
        }
        if k.tokens_per_minute.is_some() {
            let reserved = global_limits::reservation(api, body, g.default_max_tokens);
            let now = host.now_ms();
            let value = global_limits::format_reserve(reserved, now);
            host.set_header(req, contract::RL_RESERVE_HEADER, Some(&value));
            // Until usage is known, the settlement charges exactly the reservation.
            let tokens = reserved.to_string();
            host.set_property(contract::USED_PROPERTY, tokens.as_bytes());
        }
    }
    if let Some(b) = backend.filter(|b| b.rate_limit.is_some()) {
        host.set_header(req, RL_BACKEND_HEADER, Some(&b.name));
    }
}

/// Whether a routed request's key was charged yet.
#[derive(Debug, Default)]
pub(super) struct Settlement {
    /// The response's usage was charged (or the estimate was).
    settled: bool,
}

impl Settlement {
    /// Whether the key was charged yet (reported usage, or an estimate).
    pub(super) fn is_settled(&self) -> bool {
        self.settled
    }

    /// Counts the tokens a response used (for the model at index `model` and the client's key,
    /// given as its index in the plan's ring and itself) and charges them to the key's budget:
    /// here, or (with global limits) through the filter state Envoy's rate limit filter reads
    /// when the stream ends.
    pub(super) fn settle_tokens(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        client: Option<(usize, &ClientKey)>,
        model: usize,
        tokens: Option<u64>,
    ) {
        let Some(reported) = tokens else { return };
        self.settled = true;
        let (tokens, capped) = limits::bounded_usage(reported);
        if capped {
            host.count(metrics::USAGE_CAPPED);
            host.log_warn(&format!(
                "a backend reported {reported} tokens for one response; counted as {tokens}"
            ));
        }
        let names = &plan.metric_names;
        metrics::add_at(host, &names.model_tokens, model, tokens);
        let Some((i, k)) = client else {
            return;
        };
        metrics::add_at(host, &names.key_tokens, i, tokens);
        let Some(limit) = token_budget(Some(k)) else {
            return;
        };
        if plan.global_limits.is_some() {
            host.set_property(contract::USED_PROPERTY, tokens.to_string().as_bytes());
        } else {
            let now = host.now_ms();
            limits::charge(host, &token_key(&k.name), tokens, limit, now);
        }
    }

    /// A successful response that reported no usage (the backend never does, or the client
    /// left before it came) is charged its admission `estimate`, once: a budgeted key never
    /// streams for free.
    pub(super) fn settle_estimate(
        &mut self,
        host: &mut dyn Host,
        key: Option<&ClientKey>,
        estimate: Option<u64>,
        succeeded: bool,
    ) {
        if self.settled || !succeeded {
            return;
        }
        self.settled = true;
        let (Some(estimate), Some(limit)) = (estimate, token_budget(key)) else {
            return;
        };
        let Some(name) = key.map(|k| token_key(&k.name)) else {
            return;
        };
        host.count(metrics::USAGE_ESTIMATED);
        let now = host.now_ms();
        limits::charge(host, &name, estimate, limit, now);
    }
}
