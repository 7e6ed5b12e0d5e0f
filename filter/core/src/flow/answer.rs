//! The listener flow's callbacks once the request has gone to a backend: the response's
//! headers and body (rewritten by `response.rs` and `response_body.rs`, made Anthropic's for a
//! Messages client by `front.rs`, its tokens charged by `settlement.rs`) and the end of the
//! stream (Envoy's access-log callback: what was not charged yet is, and the session record is
//! handed to Envoy).

use super::front;
use super::{client, session, telemetry, HttpFlow};
use crate::host::{Action, Host};

impl HttpFlow {
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
        if self.front.is_anthropic() && !self.response.answered_itself() {
            let (model, tokens) = (&routed.client_name, self.front_input_tokens);
            self.front_answer = Some(front::Answer::at_headers(
                host,
                end_of_stream,
                model,
                tokens,
                routed.direct,
            ));
        }
        if end_of_stream {
            self.end_telemetry(host);
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
        let (mut action, mut tokens) = (action, tokens);
        if let Some(answer) = &mut self.front_answer {
            if answer.needs_whole_body() && !end_of_stream {
                // Translated once whole: Envoy buffers it meanwhile.
                action = Action::Pause;
            } else if action == Action::Continue {
                // An Anthropic backend's own usage, read with its prompt cache.
                tokens = answer.on_body(host, end_of_stream).or(tokens);
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
        // A stream's `[DONE]` ends it for its client, which may leave at once (the openai SDK
        // does): Envoy would finish the span before the stream's own end.
        if end_of_stream || self.response.stream_done() {
            self.end_telemetry(host);
        }
        action
    }

    /// The stream is over (Envoy's access-log callback), ended well or cut short by the client:
    /// what was not charged yet is, and the session record is handed to Envoy.
    pub fn on_log(&mut self, host: &mut dyn Host) {
        self.end_telemetry(host);
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

    /// The response has ended (or the stream is over): its GenAI telemetry is taken, once
    /// (`telemetry.rs`).
    fn end_telemetry(&mut self, host: &mut dyn Host) {
        if let (Some(m), Some(routed)) = (&mut self.telemetry, &self.routed) {
            let key = client(&self.plan, self.key).map(|(_, k)| k.name.as_str());
            telemetry::finish(m, host, &self.plan, routed, &self.response, key);
        }
    }
}
