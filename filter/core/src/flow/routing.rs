//! Where an admitted request goes, once its body is in: the model read from the body and
//! checked, resolved to one of the plan's models (within the key's allow-list), a target chosen,
//! and the request rewritten for it; or, for a failover model with more than one target left,
//! routed to the model's aggregate cluster, whose upstream filter rewrites each attempt.

use std::borrow::Cow;

use itoa::Buffer as Decimal;

use super::front::Direct;
use super::target_request::{self, TargetRef};
use super::{dialect, settlement, targets};
use crate::api::Api;
use crate::auth::ClientKey;
use crate::config::{Model, ModelTarget, Plan, Target};
use crate::contract::{CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER, ROUTE_PROPERTY};
use crate::errors::ApiError;
use crate::host::{Headers, Host};
use crate::model_names::NameRewriter;
use crate::{limits, metrics};

/// Where a routed request went, for the response path.
#[derive(Debug)]
pub(super) struct Routed {
    pub names: NameRewriter,
    /// Every name the backend(s) may know the model by.
    pub backend_models: Vec<String>,
    pub client_name: String,
    /// The API's streams end with `data: [DONE]` (chat and legacy completions).
    pub ends_with_done: bool,
    /// The target's backend (its index in the plan) and cool-down key, when the request went
    /// straight to one (failover attempts are watched by the upstream filter).
    pub single_backend: Option<(usize, String)>,
    /// The router asked the backend for stream usage the client did not ask for.
    pub strip_usage: bool,
    /// The model's index in the plan (its counters are named by its configured name or pattern).
    pub model: usize,
    /// For a key whose token budget is kept here: what the request is charged when a successful
    /// response reports no usage (see [`settlement::estimate`]).
    pub estimate: Option<u64>,
    /// For chat and completions whose usage matters, how a stream whose backend reports none is
    /// counted: its prompt's estimated tokens, and, when the client asked for usage, the
    /// `object` of the usage chunk the router then writes (see [`settlement::stream_estimate`]).
    pub stream_estimate: Option<(u64, Option<&'static str>)>,
    /// An Anthropic client's request that went to Anthropic backends as it came: its answer is
    /// Anthropic's own, renamed but not translated.
    pub direct: Option<Direct>,
    /// The request did not ask for a stream, and its API answers such requests whole: a
    /// backend's event stream is then no answer the client can read.
    pub expects_whole: bool,
    /// The request asked for a stream (`stream: true`): a backend's whole JSON answer is then
    /// no answer the client can read.
    pub expects_stream: bool,
}

/// A request as read from its whole body: the bytes, where the model name is, and the name.
pub(super) struct ReadRequest {
    pub body: Vec<u8>,
    pub span: std::ops::Range<usize>,
    pub requested: String,
    /// The request goes to its backends as its Anthropic client sent it (see `front.rs`).
    pub direct: Option<Direct>,
}

/// Reads the request whose whole body (`body_size` bytes) the host holds: the model the client
/// asked for, checked. The error the request is refused with when its body cannot say one.
pub(super) fn read(host: &dyn Host, api: Api, body_size: usize) -> Result<ReadRequest, ApiError> {
    let body = host
        .body(Headers::Request, body_size)
        .ok_or_else(|| ApiError::internal("the request body could not be read"))?;
    let ctype = host
        .header(Headers::Request, "content-type")
        .unwrap_or_default();
    let (span, requested) = target_request::locate_model(api, &body, &ctype)?;
    target_request::check_model_name(&requested)?;
    Ok(ReadRequest {
        body,
        span,
        requested,
        direct: None,
    })
}

/// A request a router sends to one of its routes: the route's model is resolved, and the client
/// sees the router's name.
pub(super) struct ViaRouter<'a> {
    /// The route's model, as configured.
    pub model: &'a str,
    /// The router's name (the virtual model).
    pub shown_as: &'a str,
}

/// Routes the request `read` from the host's body (`body_size` bytes in its buffer), for the
/// client's `key`; `query` is the client's query string. A router's request names the route's
/// model in `via` (the key was checked against the router's name). The error the request is
/// refused with when it cannot go anywhere.
#[allow(clippy::too_many_arguments)]
pub(super) fn route(
    host: &mut dyn Host,
    plan: &Plan,
    key: Option<&ClientKey>,
    api: Api,
    query: &str,
    body_size: usize,
    read: &ReadRequest,
    via: Option<&ViaRouter<'_>>,
) -> Result<Routed, ApiError> {
    let (body, span) = (&read.body, read.span.clone());
    let requested = via.map_or(read.requested.as_str(), |v| v.model);
    let mut target = plan
        .resolve(api, requested)
        .ok_or_else(|| ApiError::model_not_found(&read.requested))?;
    if via.is_none() {
        if let Some(k) = key {
            if !k.allows(requested) || !k.allows(&target.client_name) {
                return Err(ApiError::model_not_found(requested));
            }
        }
    }
    crate::request_shape::check(api, body)?;
    // The name the plan resolves each attempt by (a pattern's backends are sent it), and the
    // name the client sees: the same, but for a router's request.
    let resolved_name = target.client_name.clone();
    if let Some(v) = via {
        target.client_name = v.shown_as.to_string();
    }
    metrics::add_at(host, &plan.metric_names.model_requests, target.index, 1);
    let targets = target.model.targets();
    let local_limits = plan.global_limits.is_none();
    let direct = read.direct;
    // A body that cannot be made to report usage is refused before any limit counts it (an
    // Anthropic backend's answers always report theirs; counting tokens is free).
    let (estimate, stream_estimate) = match direct {
        None => {
            settlement::usage_request(key, api, body)?;
            let estimate = settlement::estimate(plan, key, api, body);
            (estimate, settlement::stream_estimate(key, api, body))
        }
        Some(Direct::Messages) => (settlement::estimate(plan, key, api, body), None),
        Some(Direct::CountTokens) => (None, None),
    };
    let first = targets::choose(host, plan, target.model, &target.client_name, local_limits)?;
    let remaining = targets.get(first..).unwrap_or(&[]);
    let request = Request {
        api,
        key,
        body,
        body_size,
        resolved_name: &resolved_name,
        direct,
    };
    let (single_backend, strip_usage) = if let [only] = remaining {
        // One target left (the model has one, or the ones before it are limited or cooling):
        // rewrite here and route straight to its backend.
        let (single, strip) = to_backend(host, plan, &request, &target, only, span, query)?;
        (Some(single), strip)
    } else {
        (None, to_failover(host, plan, &request, &target, first)?)
    };
    let first_backend = remaining.first().and_then(|t| plan.backends.get(t.backend));
    settlement::mark_for_global_limits(host, plan, key, api, body, first_backend);
    let mut backend_models: Vec<String> = targets
        .iter()
        .map(|t| Model::name_at(t, &resolved_name).to_string())
        .collect();
    if via.is_some() {
        // A Triton target's sidecar answers under the route model's name: renamed too.
        backend_models.push(resolved_name.clone());
    }
    let names: Vec<&str> = backend_models.iter().map(String::as_str).collect();
    let names = NameRewriter::with_backends(&target.client_name, &names);
    let (expects_whole, expects_stream) = answer_shape(api, body);
    Ok(Routed {
        names,
        backend_models,
        client_name: target.client_name.clone(),
        ends_with_done: direct.is_none() && matches!(api, Api::Chat | Api::Completions),
        single_backend,
        strip_usage,
        model: target.index,
        estimate,
        stream_estimate,
        direct,
        expects_whole,
        expects_stream,
    })
}

/// How a request of `api` with `body` is answered: whole (not as an event stream), and as a
/// stream. The APIs that stream only when asked (`stream: true`) are one or the other; those
/// that never stream are answered whole; the others (audio, images) are not judged.
fn answer_shape(api: Api, body: &[u8]) -> (bool, bool) {
    match api {
        Api::Chat | Api::Completions | Api::Responses => {
            let stream = crate::json_body::asks_stream(body);
            (!stream, stream)
        }
        Api::Embeddings | Api::Moderations => (true, false),
        _ => (false, false),
    }
}

/// The request being routed, as the client sent it.
struct Request<'a> {
    api: Api,
    key: Option<&'a ClientKey>,
    body: &'a [u8],
    body_size: usize,
    /// The name the plan resolved (the client's, or a router's route model).
    resolved_name: &'a str,
    /// Sent to Anthropic backends as the client sent it: only its model is replaced.
    direct: Option<Direct>,
}

/// Rewrites the request for its one target left (body, headers, route) and counts it for the
/// target's backend: that backend's index and cool-down key, and whether the router asked for
/// stream usage the client did not.
fn to_backend(
    host: &mut dyn Host,
    plan: &Plan,
    request: &Request<'_>,
    target: &Target<'_>,
    only: &ModelTarget,
    span: std::ops::Range<usize>,
    query: &str,
) -> Result<((usize, String), bool), ApiError> {
    let req = Headers::Request;
    let api = request.api;
    let backend = plan
        .backends
        .get(only.backend)
        .ok_or_else(|| ApiError::internal("unknown backend"))?;
    let backend_model = Model::name_at(only, request.resolved_name).to_string();
    let mut new_body = target_request::replace_model(api, request.body, span, &backend_model);
    let mut strip_usage = false;
    if request.direct.is_none() {
        if let Some(with_usage) = settlement::usage_request(request.key, api, &new_body)? {
            new_body = with_usage.body;
            strip_usage = with_usage.strip;
        }
        if let Some(translated) = dialect::request(backend, &backend_model, &new_body) {
            new_body = translated?;
        }
    }
    if !host.replace_body(req, request.body_size, &new_body) {
        return Err(ApiError::internal(
            "the request body could not be rewritten",
        ));
    }
    host.set_header(
        req,
        "content-length",
        Some(Decimal::new().format(new_body.len())),
    );
    let t = TargetRef {
        backend,
        backend_model: &backend_model,
        client_name: &target.client_name,
        direct: request.direct,
    };
    target_request::apply_headers(host, plan, api, query, &t, false);
    set_route(host, &backend.name);
    metrics::add_at(host, &plan.metric_names.backend_requests, only.backend, 1);
    let cooldown_key = limits::target_key(&backend.name, target.model.state_name_at(only));
    Ok(((only.backend, cooldown_key), strip_usage))
}

/// Routes the request to the model's aggregate cluster, from its target at index `first`:
/// Envoy picks each attempt's target, and the upstream filter rewrites body and headers for it.
/// Here only the route and what that filter needs are set (a client's own internal headers were
/// removed with the request's headers). Whether the router asked for stream usage the client
/// did not.
fn to_failover(
    host: &mut dyn Host,
    plan: &Plan,
    request: &Request<'_>,
    target: &Target<'_>,
    first: usize,
) -> Result<bool, ApiError> {
    let req = Headers::Request;
    if request.direct.is_some() {
        // Each attempt gets the request as the client sent it, its model replaced.
        to_failover_route(host, request, target, first);
        return Ok(false);
    }
    // Each attempt's request is translated for its backend by the upstream filter, which cannot
    // refuse it: a parameter one of the targets cannot take is refused now.
    for t in target.model.targets().iter().skip(first) {
        if let Some(backend) = plan.backends.get(t.backend) {
            let name = Model::name_at(t, request.resolved_name);
            if let Some(Err(e)) = dialect::request(backend, name, request.body) {
                return Err(e);
            }
        }
    }
    let mut strip_usage = false;
    if let Some(with_usage) = settlement::usage_request(request.key, request.api, request.body)? {
        if host.replace_body(req, request.body_size, &with_usage.body) {
            let len = with_usage.body.len();
            host.set_header(req, "content-length", Some(Decimal::new().format(len)));
            strip_usage = with_usage.strip;
        }
    }
    to_failover_route(host, request, target, first);
    Ok(strip_usage)
}

/// Sets the route to the model's aggregate cluster and what its upstream filter reads.
fn to_failover_route(
    host: &mut dyn Host,
    request: &Request<'_>,
    target: &Target<'_>,
    first: usize,
) {
    let req = Headers::Request;
    let full_path = host
        .header(req, ":path")
        .map(Cow::into_owned)
        .unwrap_or_default();
    // The upstream filter resolves each attempt by this name.
    host.set_header(req, CLIENT_MODEL_HEADER, Some(request.resolved_name));
    host.set_header(req, CLIENT_PATH_HEADER, Some(&full_path));
    set_route(host, &Model::failover_key(target.index, first));
    host.set_header(req, "accept-encoding", None);
}

/// Points Envoy's route table at `route` (a backend or a failover cluster's key).
fn set_route(host: &mut dyn Host, route: &str) {
    host.set_property(ROUTE_PROPERTY, route.as_bytes());
    host.clear_route_cache();
}
