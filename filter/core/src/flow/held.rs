//! The listener flow's steps for a router's request (`[[routers]]`, see `router_request.rs`):
//! a route probe's start and answer (`POST /api/route`), each step of the routing while the
//! request is held, and the call-outs' answers that move it on.

use std::rc::Rc;

use super::admission::RequestLine;
use super::router_request::Step;
use super::routing::{ReadRequest, ViaRouter};
use super::{client, local, routing, session, target_request, telemetry, HttpFlow, WHOLE_BODY};
use crate::api::Api;
use crate::config::Plan;
use crate::errors::ApiError;
use crate::host::{Action, CallResponse, Headers, Host};

impl HttpFlow {
    /// A route probe's headers (`POST /api/route`, admin keys only): held for the body, a chat
    /// request naming a router, which is classified and answered with the decision.
    pub(super) fn start_probe(
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

    /// Answers a route probe with how its request was routed, and the time it took (ms).
    pub(super) fn answer_probe(&mut self, host: &mut dyn Host, started: u64) -> Action {
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
    pub(super) fn router_step(&mut self, host: &mut dyn Host, step: Step, held: bool) -> Action {
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
                direct: None,
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
                if let Some(m) = &mut self.telemetry {
                    telemetry::routed(m, api, &mut self.response);
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
}
