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
//! With `[tracing]` or `[telemetry]`, `telemetry.rs` notes the request's start at step 1 and
//! takes its GenAI facts when the response ends (step 4, or a stream's `[DONE]`), or at step 5
//! (see [`crate::telemetry`]).
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
//! This file holds the request's callbacks; `answer.rs` the response's and the end of the
//! stream (steps 3 to 5), `held.rs` a router's steps and a route probe, `front.rs` what an
//! Anthropic client's request and answers become, `dialect.rs` what a backend speaking another
//! API is sent and answers.
//!
//! The files import one another one way only (this one composes them; only `answer.rs` and
//! `held.rs`, which extend [`HttpFlow`], import it): `local` → `admission`, `target_request`,
//! `front`; `admission` → `settlement`, `front`; `routing` → `settlement`, `targets`,
//! `target_request`, `dialect`; `telemetry` → `response`, `routing`; `response_body` →
//! `response`, `routing`; `response` →
//! `routing`, `targets`, `local`, `dialect`, `front`; `upstream` → `targets`,
//! `target_request`, `dialect`.

mod admission;
mod answer;
mod callout;
mod dialect;
pub mod front;
mod held;
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
mod telemetry;
mod upstream;

use std::rc::Rc;

use crate::api::Api;
use crate::auth::{ClientKey, KnownKeys};
use crate::config::Plan;
use crate::errors::ApiError;
use crate::host::{Action, Headers, Host};
use crate::session::Recorder;
use crate::{admin, metrics};
use admission::RequestLine;
use front::Front;
use response::Response;
use router_request::RouterRequest;
use routing::Routed;
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
    /// The request's GenAI telemetry, with `[tracing]` or `[telemetry]`.
    telemetry: Option<telemetry::Measured>,
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
            telemetry: None,
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
        self.telemetry = telemetry::start(&plan, host);
        self.front = Front::of_path(line.path());
        self.response.front = self.front;
        if self.front.is_anthropic() {
            // Envoy's own replies (a backend breaking off, a timeout) then take its shape.
            host.set_property(crate::contract::ANTHROPIC_FRONT_PROPERTY, b"1");
        }
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
        let plan = Rc::clone(&self.plan);
        let key = client(&plan, self.key).map(|(_, k)| k);
        let mut direct = None;
        if self.front.is_anthropic() {
            match front::prepare(host, &plan, key, self.front, body_size) {
                Ok(prepared) => {
                    body_size = prepared.size;
                    self.front_input_tokens = prepared.input_tokens;
                    direct = prepared.direct;
                }
                Err(err) => return self.refuse(host, &err),
            }
        }
        let mut read = match routing::read(host, api, body_size) {
            Ok(read) => read,
            Err(err) => return self.refuse(host, &err),
        };
        read.direct = direct;
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
                if let Some(m) = &mut self.telemetry {
                    telemetry::routed(m, api, &mut self.response);
                }
                self.routed = Some(routed);
                Action::Continue
            }
            Err(err) => self.refuse(host, &err),
        }
    }

    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        let size = host
            .body(Headers::Request, WHOLE_BODY)
            .map_or(0, |b| b.len());
        self.on_request_body(host, size, true)
    }
}

/// The client's key at index `key` of the plan's ring: the index and the key.
fn client(plan: &Plan, key: Option<usize>) -> Option<(usize, &ClientKey)> {
    key.and_then(|i| Some((i, plan.keys.keys().get(i)?)))
}

#[cfg(test)]
mod tests;
