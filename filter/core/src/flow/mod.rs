//! One HTTP request through the filter: authenticate, answer locally or route to a backend with
//! the body and headers rewritten, then rewrite the response so backend names never reach the
//! client. Driven by the host's callbacks through [`Host`].
//!
//! A request enters at [`HttpFlow`], the listener's filter, whose callbacks the wasm glue calls
//! in Envoy's order; each delegates to the file that does that part:
//! 1. [`HttpFlow::on_request_headers`]: the client's internal headers removed, the filter's own
//!    endpoints answered (`local.rs`: health, models list, admin), the key authenticated and
//!    held to its limits, the request line checked (`admission.rs`); a request for a backend
//!    then waits for its body.
//! 2. [`HttpFlow::on_request_body`], or [`HttpFlow::on_request_trailers`] (which end a body
//!    too): the model read from the body and resolved, a target chosen (`routing.rs`,
//!    `targets.rs`) and the request rewritten for it ([`target_request`]).
//! 3. [`HttpFlow::on_response_headers`]: cool-downs, Envoy's own failures, how the body will be
//!    rewritten, or the filter's answer when no body follows an error (`response.rs`).
//! 4. [`HttpFlow::on_response_body`]: the body renamed and its errors put into OpenAI's envelope
//!    (`response_body.rs`), and the tokens it reports charged to the key (`settlement.rs`).
//! 5. [`HttpFlow::on_log`]: the stream is over; what was not charged yet is (what a stream
//!    its client left had told by then, or the admission estimate), and with `[session_log]`
//!    the request's record is finished and handed to Envoy (`session.rs`, [`crate::session`]).
//!
//! A failover model's requests also pass [`UpstreamFlow`] (`upstream.rs`), the upstream filter
//! of the model's aggregate cluster: it runs once per attempt and rewrites the request for the
//! target Envoy picked.
//!
//! A router's request (`[[routers]]`, see [`crate::router`]) is held at step 2 while
//! `router_request.rs` asks its classifier (and, for an enriching route, the Responses API)
//! through call-outs (`callout.rs`), answered at [`HttpFlow::on_http_call_response`]; it asks
//! [`route_status::route_status`] whether each route can serve (read-only), then re-enters step
//! 2's routing for the chosen route's model under the router's name.
//!
//! The files import one another one way only (this one composes them and none imports it):
//! `local` → `admission`, `target_request`; `admission` → `settlement`; `routing` →
//! `settlement`, `targets`, `target_request`; `response_body` → `response`, `routing`;
//! `response` → `routing`, `targets`, `local`; `upstream` → `targets`, `target_request`.

mod admission;
mod callout;
mod dialect;
pub mod front;
mod local;
mod response;
mod response_body;
pub mod route_status;
mod router_request;
mod routing;
mod session;
mod settlement;
pub mod target_request;
mod targets;
mod upstream;

use std::rc::Rc;

use crate::api::Api;
use crate::auth::{ClientKey, KnownKeys};
use crate::config::Plan;
use crate::errors::ApiError;
use crate::host::{Action, CallResponse, Headers, Host};
use crate::session::Recorder;
use crate::{admin, metrics};
use admission::RequestLine;
use front::Front;
use response::Response;
use router_request::{RouterRequest, Step};
use routing::{ReadRequest, Routed, ViaRouter};
use settlement::Settlement;

pub use settlement::ESTIMATE_MAX_TOKENS;
pub use upstream::UpstreamFlow;

/// How much of a buffered body to ask for when its size is not known (at the trailers): the
/// host returns what there is.
const WHOLE_BODY: usize = u32::MAX as usize;

/// The listener filter's state for one request (see the module doc for its callbacks' order).
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
    /// A request to a router, from its body until its route is chosen (kept for the record).
    router: Option<RouterRequest>,
    /// The client's query string, kept while a router's request is held.
    query: String,
    /// A route probe (`POST /api/route`): when it started (ms since the epoch).
    probe: Option<u64>,
    response: Response,
    settlement: Settlement,
    /// The request's session record in the making, with `[session_log]` (boxed: most of a
    /// flow's state when on, a pointer when off).
    session: Option<Box<Recorder>>,
    /// The API the client speaks (from its path), and for Anthropic's Messages API its
    /// prompt's estimated tokens and how the answer is made Anthropic's.
    front: Front,
    front_input_tokens: u64,
    front_answer: Option<front::Answer>,
}

impl HttpFlow {
    /// A flow for one request under `plan`.
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
            router: None,
            query: String::new(),
            probe: None,
            response: Response::default(),
            settlement: Settlement::default(),
            session: None,
            front: Front::OpenAi,
            front_input_tokens: 0,
            front_answer: None,
        }
    }

    /// Whether the request's session record is being made (the host then has the response
    /// headers read afresh for [`Self::on_log`]).
    pub fn records_session(&self) -> bool {
        self.session.is_some()
    }

    /// Refuses the request with `err`; nothing waits for its body any more.
    fn refuse(&mut self, host: &mut dyn Host, err: &ApiError) -> Action {
        self.pending = None;
        if let Some(s) = &mut self.session {
            s.refused(err);
        }
        local::reply_to(host, err, self.front)
    }

    /// The request's headers: answered here (health, models list, admin, any refusal) or held
    /// (`Pause`) until the body is in.
    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        admission::remove_internal_headers(host);
        let line = RequestLine::read(host);
        let plan = Rc::clone(&self.plan);
        if let Some(answered) = local::health(host, &line) {
            return answered;
        }
        self.session = session::start(&plan, host);
        self.front = Front::of_path(line.path());
        self.response.front = self.front;
        if let Some(answered) = local::admin(host, &plan, &line) {
            return answered;
        }
        if line.path() == admin::ROUTE_PROBE_PATH {
            return self.start_probe(host, &plan, &line, end_of_stream);
        }
        self.key = match admission::authenticate(host, &plan, &self.known_keys) {
            Ok(key) => key,
            Err(err) => {
                host.count(metrics::KEY_DENIED);
                return self.refuse(host, &err);
            }
        };
        let client = client(&plan, self.key);
        if let (Some(s), Some((_, k))) = (&mut self.session, client) {
            s.key(&k.name);
        }
        if let Some((i, k)) = client {
            if let Err(err) = admission::check_key_limits(host, &plan, i, k) {
                return self.refuse(host, &err);
            }
        }
        if let Some(answered) = local::models(host, &plan, client.map(|(_, k)| k), &line) {
            return answered;
        }
        match admission::check_request(host, &plan, &line, end_of_stream) {
            Ok(api) => {
                if let Some(s) = &mut self.session {
                    s.api(api);
                }
                self.pending = Some((api, line.query().to_string()));
                Action::Pause
            }
            Err(err) => self.refuse(host, &err),
        }
    }

    /// A route probe's headers (`POST /api/route`, admin keys only): held for the body, a chat
    /// request naming a router, which is classified and answered with the decision.
    fn start_probe(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        line: &RequestLine,
        end_of_stream: bool,
    ) -> Action {
        if let Some(refused) = local::route_probe_method(host, line) {
            return refused;
        }
        if let Err(refused) = local::admin_key(host, plan) {
            return refused;
        }
        if end_of_stream {
            let err = ApiError::bad_request("POST a chat request body naming a router.".into());
            return self.refuse(host, &err);
        }
        self.probe = Some(host.now_ms());
        self.pending = Some((Api::Chat, String::new()));
        Action::Pause
    }

    /// The request body so far (`body_size` bytes buffered): at its end, the request is routed
    /// or refused.
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
            return self.refuse(host, &ApiError::too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let query = self.pending.take().map(|(_, q)| q).unwrap_or_default();
        let mut body_size = body_size;
        if self.front == Front::Messages {
            match front::to_chat_request(host, body_size) {
                Ok((size, input_tokens)) => {
                    body_size = size;
                    self.front_input_tokens = input_tokens;
                }
                Err(err) => return self.refuse(host, &err),
            }
        }
        let plan = Rc::clone(&self.plan);
        let key = client(&plan, self.key).map(|(_, k)| k);
        let read = match routing::read(host, api, body_size) {
            Ok(read) => read,
            Err(err) => return self.refuse(host, &err),
        };
        if let Some(router) = plan
            .routers
            .iter()
            .position(|r| r.name == read.requested && r.apis.contains(api))
        {
            if key.is_some_and(|k| !k.allows(&read.requested)) {
                return self.refuse(host, &ApiError::model_not_found(&read.requested));
            }
            if let Err(err) = crate::request_shape::check(api, &read.body) {
                return self.refuse(host, &err);
            }
            self.query = query;
            let probe = self.probe.is_some();
            let (request, step) = RouterRequest::start(host, &plan, router, api, read.body, probe);
            self.router = request;
            return self.router_step(host, step, false);
        }
        if self.probe.is_some() {
            // A probe names a router, never a model: nothing is generated.
            return self.refuse(host, &ApiError::model_not_found(&read.requested));
        }
        match routing::route(host, &plan, key, api, &query, body_size, &read, None) {
            Ok(routed) => {
                if let Some(s) = &mut self.session {
                    session::routed(s, host, &plan, api, &routed);
                    self.response.transcript = Some(s.transcript());
                }
                self.routed = Some(routed);
                Action::Continue
            }
            Err(err) => self.refuse(host, &err),
        }
    }

    /// Answers a route probe with how its request was routed, and the time it took (ms).
    fn answer_probe(&mut self, host: &mut dyn Host, started: u64) -> Action {
        let Some(request) = &self.router else {
            return self.refuse(host, &ApiError::internal("no router request"));
        };
        let mut body = serde_json::to_value(&request.decision).unwrap_or_default();
        if let Some(obj) = body.as_object_mut() {
            let total = host.now_ms().saturating_sub(started);
            obj.insert("total_ms".into(), total.into());
        }
        local::reply_json(host, body.to_string().as_bytes())
    }

    /// Carries out a router's step: hold the request, refuse it, or send it on to the route's
    /// model under the router's name (`held`: the request was held for a call-out and must be
    /// resumed).
    fn router_step(&mut self, host: &mut dyn Host, step: Step, held: bool) -> Action {
        let (route, body) = match step {
            Step::Wait => return Action::Pause,
            Step::Refuse(err) => return self.refuse(host, &err),
            Step::Serve { route, body } => (route, body),
        };
        if let Some(started) = self.probe {
            return self.answer_probe(host, started);
        }
        let plan = Rc::clone(&self.plan);
        let Some(request) = &self.router else {
            return self.refuse(host, &ApiError::internal("no router request"));
        };
        let Some((router, model)) = plan
            .routers
            .get(request.router)
            .and_then(|r| Some((r, &r.routes.get(route)?.model)))
        else {
            return self.refuse(host, &ApiError::internal("unknown route"));
        };
        let api = request.api();
        let key = client(&plan, self.key).map(|(_, k)| k);
        let ctype = host
            .header(Headers::Request, "content-type")
            .unwrap_or_default()
            .into_owned();
        let read = match target_request::locate_model(api, &body, &ctype) {
            Ok((span, requested)) => ReadRequest {
                body,
                span,
                requested,
            },
            Err(err) => return self.refuse(host, &err),
        };
        // The router's edits go into the host's buffer first: the routing below edits (or,
        // for failover, hands each attempt) what the buffer holds.
        let held_size = host
            .body(Headers::Request, WHOLE_BODY)
            .map_or(0, |b| b.len());
        if !host.replace_body(Headers::Request, held_size, &read.body) {
            return self.refuse(
                host,
                &ApiError::internal("the request body could not be rewritten"),
            );
        }
        let size = read.body.len();
        host.set_header(
            Headers::Request,
            "content-length",
            Some(itoa::Buffer::new().format(size)),
        );
        let via = ViaRouter {
            model,
            shown_as: &router.name,
        };
        let query = std::mem::take(&mut self.query);
        match routing::route(host, &plan, key, api, &query, size, &read, Some(&via)) {
            Ok(routed) => {
                if let Some(request) = &self.router {
                    request.count(host, &plan, route);
                }
                if let Some(s) = &mut self.session {
                    session::routed(s, host, &plan, api, &routed);
                    if let Some(request) = &self.router {
                        s.routing(&request.decision);
                    }
                    self.response.transcript = Some(s.transcript());
                }
                self.routed = Some(routed);
                if held && !host.resume_request() {
                    host.log_warn("a router's request could not be resumed");
                }
                Action::Continue
            }
            Err(err) => self.refuse(host, &err),
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

    /// The response's headers (a backend's, or Envoy's own answer): held (`Pause`) when the body
    /// is buffered whole to be rewritten.
    pub fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        if let Some(s) = &mut self.session {
            session::response_headers(s, host, routed);
        }
        let action = self
            .response
            .on_headers(host, &self.plan, routed, end_of_stream);
        if self.front == Front::Messages && !self.response.answered_itself() {
            let (model, tokens) = (&routed.client_name, self.front_input_tokens);
            self.front_answer = Some(front::Answer::at_headers(
                host,
                end_of_stream,
                model,
                tokens,
            ));
        }
        action
    }

    /// The response body so far (`body_size` bytes): rewritten, and its usage charged.
    pub fn on_response_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let plan = &self.plan;
        let (action, tokens) = self
            .response
            .on_body(host, plan, routed, body_size, end_of_stream);
        let mut action = action;
        if let Some(answer) = &mut self.front_answer {
            if answer.needs_whole_body() && !end_of_stream {
                // Translated once whole: Envoy buffers it meanwhile.
                action = Action::Pause;
            } else if action == Action::Continue {
                answer.on_body(host, end_of_stream);
            }
        }
        let client = client(plan, self.key);
        self.settlement
            .settle_tokens(host, plan, client, routed.model, tokens);
        if end_of_stream {
            let key = client.map(|(_, k)| k);
            let succeeded = self.response.succeeded;
            self.settlement
                .settle_estimate(host, key, routed.estimate, succeeded);
        }
        action
    }

    /// A call-out sent with [`Host::http_call`] while the request was held has answered
    /// (`token` as the host returned it; `response.status` 0 when it failed or timed out): a
    /// router's classifier or enrichment. An answer for no call of this request's is ignored.
    pub fn on_http_call_response(
        &mut self,
        host: &mut dyn Host,
        token: u32,
        response: CallResponse,
    ) {
        let plan = Rc::clone(&self.plan);
        let Some(request) = self.router.as_mut() else {
            return;
        };
        let Some(step) = request.on_reply(host, &plan, token, &response) else {
            return;
        };
        self.router_step(host, step, true);
    }

    /// The stream is over (Envoy's access-log callback), ended well or cut short by the client:
    /// what was not charged yet is, and the session record is handed to Envoy.
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if let Some(mut s) = self.session.take() {
            if let Some(request) = &self.router {
                // A router's request that ended before its route took it (the client left
                // while the classifier was out; a route probe): what it asked and how far the
                // routing went.
                if !s.has_routing() {
                    s.asked_for(request.api(), &request.decision.virtual_model);
                    s.routing(&request.decision);
                }
            }
            session::finish(&mut s, host, &self.response);
        }
        let Some(routed) = &self.routed else {
            return;
        };
        let client = client(&self.plan, self.key);
        if !self.settlement.is_settled() {
            // A client may leave after the stream's usage or `[DONE]` and before its end.
            let tokens = self.response.tokens_at_hang_up(host);
            self.settlement
                .settle_tokens(host, &self.plan, client, routed.model, tokens);
        }
        let key = client.map(|(_, k)| k);
        // A client that left before any response came is charged too: the backend had the
        // request and may well be generating its whole answer.
        let charged = self.response.succeeded || !self.response.started;
        self.settlement
            .settle_estimate(host, key, routed.estimate, charged);
    }
}

/// The client's key at index `key` of the plan's ring: the index and the key.
fn client(plan: &Plan, key: Option<usize>) -> Option<(usize, &ClientKey)> {
    key.and_then(|i| Some((i, plan.keys.keys().get(i)?)))
}

#[cfg(test)]
mod tests;
