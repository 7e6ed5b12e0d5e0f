//! One HTTP request through the filter: authenticate, answer locally or route to a backend with
//! the body and headers rewritten, then rewrite the response so backend names never reach the
//! client. Driven by the host's callbacks through [`Host`].

use std::borrow::Cow;
use std::rc::Rc;

use itoa::Buffer as Decimal;

use crate::api::Api;
use crate::auth::{presented_key, ClientKey, KnownKeys};
use crate::backend_errors;
use crate::config::{Backend, GlobalLimits, Model, Plan};
use crate::contract::{
    CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER, INTERNAL_HEADER_PREFIX, RL_BACKEND_HEADER,
    ROUTE_PROPERTY,
};
use crate::errors::ApiError;
use crate::host::{Action, Headers, Host};
use crate::model_names::NameRewriter;
use crate::models_list;
use crate::sse::{self, SseModelRewriter};
use crate::target_request::{self, TargetRef};
use crate::text::concat;
use crate::{admin, contract, global_limits, limits, metrics, response_headers};

/// How much of a buffered body to ask for when its size is not known (at the trailers): the
/// host returns what there is.
const WHOLE_BODY: usize = u32::MAX as usize;

const JSON: (&str, &str) = ("content-type", "application/json");

/// Where a routed request went, for the response path.
#[derive(Debug)]
struct Routed {
    names: NameRewriter,
    /// Every name the backend(s) may know the model by.
    backend_models: Vec<String>,
    client_name: String,
    /// The API's streams end with `data: [DONE]` (chat and legacy completions).
    ends_with_done: bool,
    /// The target's backend (its index in the plan) and cool-down key, when the request went
    /// straight to one (failover attempts are watched by the upstream filter).
    single_backend: Option<(usize, String)>,
    /// The router asked the backend for stream usage the client did not ask for.
    strip_usage: bool,
    /// The model's index in the plan (its counters are named by its configured name or pattern).
    model: usize,
}

#[derive(Debug)]
enum ResponseMode {
    /// Bytes the router does not change (audio, images as bytes, unrouted requests).
    Untouched,
    /// A JSON body, buffered and rewritten whole.
    Json,
    /// Another textual body (`text/plain`, XML, no type at all), buffered and renamed whole.
    Text,
    /// An SSE stream, rewritten event by event as it arrives.
    Sse(SseModelRewriter),
    /// An upstream error body, put into the OpenAI envelope.
    UpstreamError(u16),
    /// Envoy answered for the upstream (connection failure, timeout): replaced with our error.
    Replaced(ApiError),
}

/// Per-request state.
#[derive(Debug)]
pub struct HttpFlow {
    plan: Rc<Plan>,
    /// Keys this worker has already matched against the plan's ring.
    known_keys: Rc<KnownKeys>,
    /// Index of the client's key in the plan's key ring, once authenticated.
    key: Option<usize>,
    /// The API of a request waiting for its body, and its query string.
    pending: Option<(Api, String)>,
    routed: Option<Routed>,
    response: ResponseMode,
    /// For a key with a token budget kept here (no `[global_limits]`): what the request is
    /// charged when a successful response reports no usage (see [`ESTIMATE_MAX_TOKENS`]).
    estimate: Option<u64>,
    /// The response's usage was charged (or the estimate was).
    settled: bool,
    /// The response was a success (2xx), so it is charged even when it reports no usage.
    succeeded: bool,
    /// The filter answered in the backend's place (a bodiless error); its own reply passes.
    answered: bool,
}

/// The completion tokens assumed, per choice, for a request that sets no `max_tokens` when a
/// budgeted key's response reports no usage (some servers never do; a client may leave before
/// the usage chunk): its estimate is the prompt (a quarter of its bytes) plus this.
pub const ESTIMATE_MAX_TOKENS: u32 = 1024;

impl HttpFlow {
    pub fn new(plan: Rc<Plan>) -> Self {
        Self::with_known_keys(plan, Rc::default())
    }

    /// A flow sharing its worker's memory of matched keys (one per plan).
    pub fn with_known_keys(plan: Rc<Plan>, known_keys: Rc<KnownKeys>) -> Self {
        HttpFlow {
            plan,
            known_keys,
            key: None,
            pending: None,
            routed: None,
            response: ResponseMode::Untouched,
            estimate: None,
            settled: false,
            succeeded: false,
            answered: false,
        }
    }

    /// Limits kept by the sidecar for several Envoys, when configured.
    fn global(&self) -> Option<&GlobalLimits> {
        self.plan.global_limits.as_ref()
    }

    fn client_key(&self) -> Option<&ClientKey> {
        self.key.and_then(|i| self.plan.keys.keys().get(i))
    }

    /// The client key's tokens-per-minute budget, when it has one.
    fn token_budget(&self) -> Option<limits::RateLimit> {
        let tpm = self.client_key()?.tokens_per_minute?;
        Some(limits::RateLimit {
            requests: tpm,
            window_ms: 60_000,
        })
    }

    /// For a key with a token budget, a streaming chat or completion body asking for usage.
    fn usage_request(
        &self,
        api: Api,
        body: &[u8],
    ) -> Result<Option<crate::json_body::UsageRequest>, ApiError> {
        if self.token_budget().is_none() || !matches!(api, Api::Chat | Api::Completions) {
            return Ok(None);
        }
        crate::json_body::with_stream_usage(body)
    }

    /// Counts the tokens a response used and charges them to its key's budget: here, or (with
    /// global limits) through the filter state Envoy's rate limit filter reads when the stream ends.
    fn settle_tokens(&mut self, host: &mut dyn Host, tokens: Option<u64>) {
        let Some(reported) = tokens else { return };
        self.settled = true;
        let (tokens, capped) = limits::bounded_usage(reported);
        if capped {
            host.count(metrics::USAGE_CAPPED);
            host.log_warn(&format!(
                "a backend reported {reported} tokens for one response; counted as {tokens}"
            ));
        }
        let names = &self.plan.metric_names;
        if let Some(routed) = &self.routed {
            metrics::add_at(host, &names.model_tokens, routed.model, tokens);
        }
        let (Some(i), Some(k)) = (self.key, self.client_key()) else {
            return;
        };
        metrics::add_at(host, &names.key_tokens, i, tokens);
        let Some(limit) = self.token_budget() else {
            return;
        };
        if self.global().is_some() {
            host.set_property(contract::USED_PROPERTY, tokens.to_string().as_bytes());
        } else {
            let now = host.now_ms();
            limits::charge(host, &token_key(&k.name), tokens, limit, now);
        }
    }

    /// A successful response that reported no usage (the backend never does, or the client
    /// left before it came) is charged its admission estimate, once: a budgeted key never
    /// streams for free.
    fn settle_estimate(&mut self, host: &mut dyn Host) {
        if self.settled || !self.succeeded {
            return;
        }
        self.settled = true;
        let (Some(estimate), Some(limit)) = (self.estimate, self.token_budget()) else {
            return;
        };
        let Some(name) = self.client_key().map(|k| token_key(&k.name)) else {
            return;
        };
        host.count(metrics::USAGE_ESTIMATED);
        let now = host.now_ms();
        limits::charge(host, &name, estimate, limit, now);
    }

    /// The stream is over (Envoy's access-log callback), ended well or cut short by the client:
    /// what was not charged yet is.
    pub fn on_done(&mut self, host: &mut dyn Host) {
        if self.routed.is_some() {
            self.settle_estimate(host);
        }
    }

    /// With global limits: names the key, the routed backend and the token reservation for
    /// Envoy's rate limit filter (see [`global_limits`]).
    fn mark_for_global_limits(
        &self,
        host: &mut dyn Host,
        api: Api,
        body: &[u8],
        backend: Option<&Backend>,
    ) {
        let Some(g) = self.global() else { return };
        let req = Headers::Request;
        if let Some(k) = self.client_key() {
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

    fn reply(&mut self, host: &mut dyn Host, err: &ApiError) -> Action {
        self.pending = None;
        let mut headers = vec![JSON];
        if err.status == 405 {
            let allow = if err.message.contains("/v1/models") {
                "GET"
            } else {
                "POST"
            };
            headers.push(("allow", allow));
        }
        let retry_after = err.retry_after.map(|s| s.to_string());
        if let Some(secs) = &retry_after {
            headers.push(("retry-after", secs));
        }
        host.send_response(err.status, &headers, &err.body());
        Action::Pause
    }

    fn reply_json(&mut self, host: &mut dyn Host, body: &[u8]) -> Action {
        host.send_response(200, &[JSON], body);
        Action::Pause
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        // Only the filter speaks to Envoy's routes, the rate limiter and the sidecar: whatever
        // a client sent under the internal prefix is gone before any of them could read it,
        // whatever happens to the request afterwards.
        for name in host.header_names_with_prefix(Headers::Request, INTERNAL_HEADER_PREFIX) {
            host.set_header(Headers::Request, &name, None);
        }
        let owned = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned).unwrap_or_default();
        let method = owned(host.header(Headers::Request, ":method"));
        let full_path = owned(host.header(Headers::Request, ":path"));
        let (path, query) = full_path.split_once('?').unwrap_or((&full_path, ""));
        let is_get = method == "GET" || method == "HEAD";

        if path == "/health" && is_get {
            return self.reply_json(host, br#"{"status":"ok"}"#);
        }
        if admin::PATHS.contains(&path) {
            return self.admin(host, &method, path);
        }
        if let Some(err) = self.authenticate(host) {
            host.count(metrics::KEY_DENIED);
            return self.reply(host, &err);
        }
        let plan = Rc::clone(&self.plan);
        if let Some((i, k)) = self.key.and_then(|i| Some((i, plan.keys.keys().get(i)?))) {
            let name = &k.name;
            metrics::add_at(host, &plan.metric_names.key_requests, i, 1);
            let local = plan.global_limits.is_none();
            if let Some(rpm) = k.requests_per_minute.filter(|_| local) {
                let limit = limits::RateLimit {
                    requests: rpm,
                    window_ms: 60_000,
                };
                let now = host.now_ms();
                if let Err(wait) = limits::try_acquire(host, &concat(&["key/", name]), limit, now) {
                    return self.reply(host, &ApiError::key_limited(name, wait));
                }
            }
            if let Some(limit) = self.token_budget().filter(|_| local) {
                let now = host.now_ms();
                if let Err(wait) = limits::check(host, &token_key(name), limit, now) {
                    return self.reply(host, &ApiError::key_budget(name, "tokens", wait));
                }
            }
        }
        if path == "/v1/models" {
            if !is_get {
                return self.reply(host, &ApiError::method_not_allowed(&method, path));
            }
            let body = models_list::list(&self.plan, self.client_key());
            return self.reply_json(host, &body);
        }
        if let Some(id) = path.strip_prefix("/v1/models/") {
            if !is_get {
                return self.reply(host, &ApiError::method_not_allowed(&method, path));
            }
            let id = models_list::percent_decode(id).unwrap_or_default();
            if let Err(err) = target_request::check_model_name(&id) {
                return self.reply(host, &err);
            }
            return match models_list::one(&self.plan, self.client_key(), &id) {
                Some(body) => self.reply_json(host, &body),
                None => self.reply(host, &ApiError::model_not_found(&id)),
            };
        }
        let Some(api) = Api::from_client_path(path) else {
            return self.reply(host, &ApiError::unknown_url(&method, path));
        };
        if method != "POST" {
            return self.reply(host, &ApiError::method_not_allowed(&method, path));
        }
        if query_names_a_model(query) {
            // The query goes to the backend as sent; a server that reads `model` from it would
            // read a name the filter never checked.
            return self.reply(
                host,
                &ApiError::ambiguous_model("the query string has a `model` parameter"),
            );
        }
        if end_of_stream {
            return self.reply(host, &ApiError::missing_model());
        }
        let limit = self.plan.listener.max_body_bytes;
        let declared = host
            .header(Headers::Request, "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return self.reply(host, &ApiError::too_large(limit));
        }
        self.pending = Some((api, query.to_string()));
        Action::Pause
    }

    /// An admin endpoint: admin keys only.
    fn admin(&mut self, host: &mut dyn Host, method: &str, path: &str) -> Action {
        if method != "GET" && method != "HEAD" {
            return self.reply(host, &ApiError::method_not_allowed(method, path));
        }
        if self.plan.admin_keys.is_open() {
            let err = ApiError::with_status(
                403,
                "The admin endpoints are off: the configuration has no [[admin_keys]].".into(),
                Some("admin_disabled"),
            );
            return self.reply(host, &err);
        }
        let authz = host.header(Headers::Request, "authorization");
        let api_key = host.header(Headers::Request, "api-key");
        let x_api_key = host.header(Headers::Request, "x-api-key");
        let presented = presented_key(authz.as_deref(), api_key.as_deref(), x_api_key.as_deref());
        let Some(presented) = presented else {
            return self.reply(host, &ApiError::missing_key());
        };
        if self.plan.admin_keys.find(presented).is_none() {
            return self.reply(host, &ApiError::invalid_key());
        }
        let body = admin::render(path, &self.plan, host);
        self.reply_json(host, body.to_string().as_bytes())
    }

    /// Checks the client's key; `Some(error)` when the request must be refused.
    fn authenticate(&mut self, host: &dyn Host) -> Option<ApiError> {
        if self.plan.keys.is_open() {
            return None;
        }
        let authz = host.header(Headers::Request, "authorization");
        let api_key = host.header(Headers::Request, "api-key");
        let x_api_key = host.header(Headers::Request, "x-api-key");
        let Some(presented) =
            presented_key(authz.as_deref(), api_key.as_deref(), x_api_key.as_deref())
        else {
            return Some(ApiError::missing_key());
        };
        self.key = self.known_keys.position(&self.plan.keys, presented);
        self.key.is_none().then(ApiError::invalid_key)
    }

    pub fn on_request_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some((api, _)) = &self.pending else {
            return Action::Continue;
        };
        let api = *api;
        let limit = self.plan.listener.max_body_bytes;
        if body_size as u64 > limit {
            return self.reply(host, &ApiError::too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        match self.route(host, api, body_size) {
            Ok(()) => Action::Continue,
            Err(err) => self.reply(host, &err),
        }
    }

    /// Trailers end the request body (HTTP/2 may send them after the last DATA frame, HTTP/1.1
    /// after a chunked body): a request still waiting for its body is routed now with all that
    /// was buffered, exactly as if the last body callback had said end of stream.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        let size = host
            .body(Headers::Request, WHOLE_BODY)
            .map_or(0, |b| b.len());
        self.on_request_body(host, size, true)
    }

    /// Points Envoy's route table at `route` (a backend or a failover cluster's key).
    fn set_route(host: &mut dyn Host, route: &str) {
        host.set_property(ROUTE_PROPERTY, route.as_bytes());
        host.clear_route_cache();
    }

    fn route(&mut self, host: &mut dyn Host, api: Api, body_size: usize) -> Result<(), ApiError> {
        let query = self.pending.take().map(|(_, q)| q).unwrap_or_default();
        let body = host
            .body(Headers::Request, body_size)
            .ok_or_else(|| ApiError::internal("the request body could not be read"))?;
        let ctype = host
            .header(Headers::Request, "content-type")
            .unwrap_or_default();
        let (span, requested) = target_request::locate_model(api, &body, &ctype)?;
        target_request::check_model_name(&requested)?;
        let plan = Rc::clone(&self.plan);
        let target = plan
            .resolve(api, &requested)
            .ok_or_else(|| ApiError::model_not_found(&requested))?;
        if let Some(k) = self.client_key() {
            if !k.allows(&requested) || !k.allows(&target.client_name) {
                return Err(ApiError::model_not_found(&requested));
            }
        }
        let req = Headers::Request;
        metrics::add_at(host, &plan.metric_names.model_requests, target.index, 1);
        let targets = target.model.targets();
        let local_limits = plan.global_limits.is_none();
        // A body that cannot be made to report usage is refused before any limit counts it.
        self.usage_request(api, &body)?;
        if local_limits && self.token_budget().is_some() {
            self.estimate = Some(global_limits::reservation(api, &body, ESTIMATE_MAX_TOKENS));
        }
        let first = choose_target(host, &plan, target.model, &target.client_name, local_limits)?;
        let remaining = targets.get(first..).unwrap_or(&[]);
        let mut single_backend = None;
        let mut strip_usage = false;
        if let [only] = remaining {
            // One target left (the model has one, or the ones before it are limited or cooling):
            // rewrite here and route straight to its backend.
            let backend = plan
                .backends
                .get(only.backend)
                .ok_or_else(|| ApiError::internal("unknown backend"))?;
            let backend_model = Model::name_at(only, &target.client_name).to_string();
            let mut new_body = target_request::replace_model(api, &body, span, &backend_model);
            if let Some(with_usage) = self.usage_request(api, &new_body)? {
                new_body = with_usage.body;
                strip_usage = with_usage.strip;
            }
            if !host.replace_body(req, body_size, &new_body) {
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
            };
            target_request::apply_headers(host, &plan, api, &query, &t, false);
            Self::set_route(host, &backend.name);
            metrics::add_at(host, &plan.metric_names.backend_requests, only.backend, 1);
            single_backend = Some((
                only.backend,
                limits::target_key(&backend.name, target.model.state_name_at(only)),
            ));
        } else {
            // Envoy's aggregate cluster picks each attempt's target; the upstream filter rewrites
            // body and headers for it. Here only the route and what that filter needs are set
            // (a client's own internal headers were removed with the request's headers).
            if let Some(with_usage) = self.usage_request(api, &body)? {
                if host.replace_body(req, body_size, &with_usage.body) {
                    let len = with_usage.body.len();
                    host.set_header(req, "content-length", Some(Decimal::new().format(len)));
                    strip_usage = with_usage.strip;
                }
            }
            let full_path = host
                .header(req, ":path")
                .map(Cow::into_owned)
                .unwrap_or_default();
            host.set_header(req, CLIENT_MODEL_HEADER, Some(&target.client_name));
            host.set_header(req, CLIENT_PATH_HEADER, Some(&full_path));
            Self::set_route(host, &Model::failover_key(target.index, first));
            host.set_header(req, "accept-encoding", None);
        }
        let first_backend = remaining.first().and_then(|t| plan.backends.get(t.backend));
        self.mark_for_global_limits(host, api, &body, first_backend);
        let backend_models: Vec<String> = targets
            .iter()
            .map(|t| Model::name_at(t, &target.client_name).to_string())
            .collect();
        let names: Vec<&str> = backend_models.iter().map(String::as_str).collect();
        let names = NameRewriter::with_backends(&target.client_name, &names);
        self.routed = Some(Routed {
            names,
            backend_models,
            client_name: target.client_name.clone(),
            ends_with_done: matches!(api, Api::Chat | Api::Completions),
            single_backend,
            strip_usage,
            model: target.index,
        });
        Ok(())
    }

    pub fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        if self.answered {
            // The filter's own reply in the backend's place, should Envoy run it through here.
            return Action::Continue;
        }
        let resp = Headers::Response;
        let status = host
            .header(resp, ":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.succeeded = (200..300).contains(&status);
        // Envoy's own answers (rate limiter refusals, upstream failures) are all errors, so a
        // success needs no look at how it came about.
        let details = if status >= 400 {
            host.property(&["response", "code_details"])
                .unwrap_or_default()
        } else {
            String::new()
        };
        if details == backend_errors::RATE_LIMITED {
            // Envoy's rate limit filter answered with the limiter's own OpenAI-format body; no
            // backend was involved, so nothing cools down and nothing needs renaming.
            response_headers::apply(host);
            self.response = ResponseMode::Untouched;
            return Action::Continue;
        }
        if let Some((backend, target_key)) = &routed.single_backend {
            if status == 429 {
                let max_ms = self
                    .plan
                    .backends
                    .get(*backend)
                    .map_or(0, |b| b.max_cooldown_ms);
                start_cooldown(host, target_key, max_ms);
            }
            if status >= 500 {
                metrics::add_at(host, &self.plan.metric_names.backend_errors, *backend, 1);
            }
        }
        // What names a backend (its headers) goes before the body is looked at; the retry hints
        // were read for the cool-down above.
        response_headers::apply(host);
        let ctype = host
            .header(resp, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let encoded = host
            .header(resp, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        let local = backend_errors::local_failure(status, &details);
        if let (Some(err), Some((i, _))) = (&local, &routed.single_backend) {
            if let Some(backend) = self
                .plan
                .backends
                .get(*i)
                .filter(|_| err.status == 502 || err.status == 504)
            {
                admin::record_failure(host, &backend.name);
            }
        }
        // No OpenAI API redirects: a backend that does is misconfigured (its URL), and its
        // Location and body name where it lives. The client gets a gateway error instead.
        let local = local.or_else(|| {
            (300..400).contains(&status).then(|| {
                let message = concat(&[
                    "The backend answered with a redirect (HTTP ",
                    &status.to_string(),
                    "), which the router does not follow.",
                ]);
                ApiError::with_status(502, message, Some("backend_redirect"))
            })
        });
        if end_of_stream && (local.is_some() || status >= 400) {
            // Nothing follows to put the OpenAI error into: the filter answers instead.
            return self.answer_bodiless(host, status, local);
        }
        let body_kind = BodyKind::of(&ctype);
        self.response = if let Some(err) = local {
            host.set_header(resp, ":status", Some(&err.status.to_string()));
            ResponseMode::Replaced(err)
        } else if end_of_stream {
            // No body will follow, so there is nothing to rewrite (and none can be added).
            ResponseMode::Untouched
        } else if status >= 400 && encoded {
            // An error body the filter cannot read is not passed on: its status is.
            let message = concat(&["The backend answered HTTP ", &status.to_string(), "."]);
            ResponseMode::Replaced(ApiError::with_status(status, message, None))
        } else if status >= 400 {
            ResponseMode::UpstreamError(status)
        } else if encoded || body_kind == BodyKind::Opaque {
            // The request asked for identity encoding; a backend that compresses anyway, or
            // sends a type the filter cannot read, gets its bytes passed on unrenamed, and
            // counted so that operators see it.
            let names = &self.plan.metric_names.model_unrenamed;
            metrics::add_at(host, names, routed.model, 1);
            host.log_warn("a backend's response body cannot be renamed (compressed or of an unknown type); it is passed on as it is");
            ResponseMode::Untouched
        } else {
            match body_kind {
                BodyKind::EventStream => {
                    let names = routed.names.clone();
                    let rewriter = if routed.strip_usage {
                        SseModelRewriter::stripping_usage(names)
                    } else {
                        SseModelRewriter::new(names)
                    };
                    ResponseMode::Sse(rewriter.ending_with_done(routed.ends_with_done))
                }
                BodyKind::Json => ResponseMode::Json,
                BodyKind::Text => ResponseMode::Text,
                BodyKind::Media | BodyKind::Opaque => ResponseMode::Untouched,
            }
        };
        match self.response {
            ResponseMode::Untouched => Action::Continue,
            ResponseMode::Replaced(_) | ResponseMode::UpstreamError(_) => {
                host.set_header(resp, "content-type", Some("application/json"));
                host.set_header(resp, "content-encoding", None);
                // Held until the body is complete, so they go out with its exact length (a
                // bodiless one was answered above).
                Action::Pause
            }
            // Never at the end of the stream: a bodiless success is left untouched above.
            ResponseMode::Json | ResponseMode::Text => Action::Pause,
            ResponseMode::Sse(_) => {
                host.set_header(resp, "content-length", None);
                Action::Continue
            }
        }
    }

    pub fn on_response_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let resp = Headers::Response;
        let mut tokens = None;
        let action = match &mut self.response {
            ResponseMode::Untouched => Action::Continue,
            ResponseMode::Sse(rewriter) => {
                let chunk = host.body(resp, body_size).unwrap_or_default();
                let overflowed = rewriter.overflowed();
                let mut out = rewriter.feed(&chunk);
                if rewriter.overflowed() && !overflowed {
                    let names = &self.plan.metric_names.model_events_too_large;
                    metrics::add_at(host, names, routed.model, 1);
                    host.log_warn(
                        "a backend sent a stream event over the limit; the stream was ended",
                    );
                }
                if end_of_stream {
                    let tail = rewriter.finish();
                    let complete = tail.is_empty();
                    out.extend(tail);
                    // Chat and completions streams end with [DONE]; one that does not was cut
                    // short, and the client is told so rather than left guessing.
                    if routed.ends_with_done && !rewriter.saw_done() {
                        out.extend(sse::truncated_stream_ending(complete));
                    }
                    tokens = rewriter.usage_tokens();
                }
                if out != chunk && !host.replace_body(resp, body_size, &out) {
                    host.log_warn("could not rewrite an SSE chunk");
                }
                Action::Continue
            }
            _ if !end_of_stream => Action::Pause,
            ResponseMode::Json => {
                let body = host.body(resp, body_size).unwrap_or_default();
                tokens = crate::json_body::total_tokens(&body);
                let renamed = routed.names.rewrite_document(&body);
                send_whole(host, body_size, renamed.as_deref());
                Action::Continue
            }
            ResponseMode::Text => {
                let body = host.body(resp, body_size).unwrap_or_default();
                let mut out = Vec::with_capacity(body.len());
                let renamed = routed.names.rewrite_text(&body, &mut out);
                send_whole(host, body_size, renamed.then_some(out.as_slice()));
                Action::Continue
            }
            ResponseMode::UpstreamError(status) => {
                let body = host.body(resp, body_size).unwrap_or_default();
                let names: Vec<&str> = routed.backend_models.iter().map(String::as_str).collect();
                let out = backend_errors::wrap(*status, &body, &names, &routed.client_name);
                send_whole(host, body_size, Some(&out));
                Action::Continue
            }
            ResponseMode::Replaced(err) => {
                send_whole(host, body_size, Some(&err.body()));
                Action::Continue
            }
        };
        self.settle_tokens(host, tokens);
        if end_of_stream {
            self.settle_estimate(host);
        }
        action
    }

    /// Answers the client in the backend's place: the backend's answer had no body to put an
    /// OpenAI error into (a bodiless error or redirect), so the filter's own reply replaces it,
    /// with the backend's retry hint when it gave a valid one (the allow-list kept only those).
    fn answer_bodiless(
        &mut self,
        host: &mut dyn Host,
        status: u16,
        err: Option<ApiError>,
    ) -> Action {
        let body = match (&err, &self.routed) {
            (Some(err), _) => err.body(),
            (None, Some(routed)) => {
                let names: Vec<&str> = routed.backend_models.iter().map(String::as_str).collect();
                backend_errors::wrap(status, b"", &names, &routed.client_name)
            }
            (None, None) => ApiError::with_status(status, String::new(), None).body(),
        };
        let status = err.as_ref().map_or(status, |e| e.status);
        let retry_after = host
            .header(Headers::Response, "retry-after")
            .map(Cow::into_owned);
        let mut headers = vec![JSON];
        if let Some(secs) = retry_after.as_deref() {
            headers.push(("retry-after", secs));
        }
        self.answered = true;
        self.response = ResponseMode::Untouched;
        host.send_response(status, &headers, &body);
        Action::Pause
    }
}

/// What a response body is, by its content type (lower-cased), for how it is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    EventStream,
    Json,
    /// Other text: `text/*`, XML, forms, or no type at all (what OpenAI-compatible servers send
    /// without one is text).
    Text,
    /// Audio, images and video: bytes no model name is written into.
    Media,
    /// Anything else (`application/octet-stream`, archives, ...): not renamed, and counted.
    Opaque,
}

impl BodyKind {
    fn of(ctype: &str) -> Self {
        let mime = ctype.split(';').next().unwrap_or("").trim();
        if mime == "text/event-stream" {
            BodyKind::EventStream
        } else if mime.contains("json") {
            BodyKind::Json
        } else if mime.is_empty()
            || mime.starts_with("text/")
            || mime.ends_with("xml")
            || mime == "application/x-www-form-urlencoded"
            || mime == "application/javascript"
        {
            BodyKind::Text
        } else if ["audio/", "image/", "video/"]
            .iter()
            .any(|m| mime.starts_with(m))
        {
            BodyKind::Media
        } else {
            BodyKind::Opaque
        }
    }
}

/// Ends a response buffered whole (its headers held): `out` replaces the body when given, and the
/// headers get the length of what is actually sent.
fn send_whole(host: &mut dyn Host, body_size: usize, out: Option<&[u8]>) {
    let resp = Headers::Response;
    let len = match out {
        Some(out) if host.replace_body(resp, body_size, out) => out.len(),
        _ => body_size,
    };
    host.set_header(resp, "content-length", Some(Decimal::new().format(len)));
}

/// Whether a query string has a parameter a server could read as `model`: named so in any
/// case, percent-encoded or not (`Model`, `mod%65l`, `model[]`).
fn query_names_a_model(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        let name = models_list::percent_decode(&name.replace('+', " "))
            .unwrap_or_else(|| name.to_string());
        let name = name.trim_end_matches("[]");
        name.trim().eq_ignore_ascii_case("model")
    })
}

fn token_key(key_name: &str) -> String {
    concat(&["keytok/", key_name])
}

/// The index of the first target of `model` that is neither cooling down after a 429 nor at its
/// request limit (counting the request against that limit); a 429 when there is none.
fn choose_target(
    host: &mut dyn Host,
    plan: &Plan,
    model: &Model,
    client_name: &str,
    local_limits: bool,
) -> Result<usize, ApiError> {
    let mut wait = u64::MAX;
    for (k, t) in model.targets().iter().enumerate() {
        let Some(backend) = plan.backends.get(t.backend) else {
            continue;
        };
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
    Err(ApiError::all_limited(client_name, wait))
}

/// A 429 that says when to come back cools its target down for that long (at most `max_ms`),
/// for every worker. `target` is a [`limits::target_key`].
pub fn start_cooldown(host: &mut dyn Host, target: &str, max_ms: u64) {
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

#[cfg(test)]
mod tests;
