//! The filter as an upstream HTTP filter of a failover model's aggregate cluster: it runs once per
//! attempt, learns which target Envoy picked from the endpoint's metadata, and rewrites body and
//! headers for that target. Each attempt starts from what the downstream flow left plus earlier
//! attempts' header edits (attempts share one header map), so every header it needs is set, never
//! appended, and the body's model is found and replaced whatever it holds.

use std::rc::Rc;

use super::dialect::{self, Answer};
use super::front::Direct;
use super::target_request::{self, TargetRef};
use super::targets;
use crate::api::Api;
use crate::config::{BackendKind, Model, Plan};
use crate::contract::{
    ATTEMPT_HEADER, BACKEND_METADATA_PATH, CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER,
    FAILOVER_PROPERTY, SESSION_ATTEMPTS_PROPERTY,
};
use crate::host::{Action, Headers, Host};

/// What an attempt needs to know about the request: attempts before this one, the client's
/// path, the model name the client used.
struct Carried {
    attempts: u32,
    client_path: String,
    client_name: String,
}

impl Carried {
    fn encode(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.attempts, self.client_path, self.client_name
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '\n');
        let attempts = parts.next()?.parse().ok()?;
        let client_path = parts.next()?.to_string();
        let client_name = parts.next()?.to_string();
        Some(Carried {
            attempts,
            client_path,
            client_name,
        })
    }

    /// The state an earlier attempt saved, or else the downstream flow's headers (the first
    /// attempt). Either way the headers leave the shared map: they are notes between the two
    /// filters, never a backend's business.
    fn take(host: &mut dyn Host) -> Option<Self> {
        let req = Headers::Request;
        let saved = host
            .property(&[FAILOVER_PROPERTY])
            .and_then(|s| Self::decode(&s));
        let from_headers = match (
            host.header(req, CLIENT_MODEL_HEADER),
            host.header(req, CLIENT_PATH_HEADER),
        ) {
            (Some(name), Some(path)) => Some(Carried {
                attempts: 0,
                client_path: path.into_owned(),
                client_name: name.into_owned(),
            }),
            _ => None,
        };
        for name in [CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER, ATTEMPT_HEADER] {
            host.set_header(req, name, None);
        }
        saved.or(from_headers)
    }
}

/// Per-attempt state.
#[derive(Debug)]
pub struct UpstreamFlow {
    plan: Rc<Plan>,
    /// The API and the model name to put in the body, once the headers were handled.
    pending: Option<(Api, String)>,
    /// The target (cool-down key) this attempt went to.
    backend: Option<String>,
    /// The attempt's backend, as its index in the plan (its counters are the plan's).
    backend_index: Option<usize>,
    /// The attempt's answer, when its backend speaks another API (see `dialect.rs`).
    answer: Option<Answer>,
    /// The attempt's request asked for stream usage.
    usage_chunk: bool,
    /// An Anthropic client's request, sent to this Anthropic backend as it came.
    direct: Option<Direct>,
}

impl UpstreamFlow {
    /// The filter for one attempt under `plan`.
    pub fn new(plan: Rc<Plan>) -> Self {
        UpstreamFlow {
            plan,
            pending: None,
            backend: None,
            backend_index: None,
            answer: None,
            usage_chunk: false,
            direct: None,
        }
    }

    /// The attempt's request headers: rewritten for the target Envoy picked, and held (`Pause`)
    /// until the body is in, so its model can be replaced too.
    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        let Some(mut carried) = Carried::take(host) else {
            return Action::Continue;
        };
        let (client_name, client_path) = (carried.client_name.clone(), carried.client_path.clone());
        let (path, query) = client_path
            .split_once('?')
            .unwrap_or((client_path.as_str(), ""));
        // An Anthropic client's request to Anthropic backends only goes to each as it came.
        let direct = Direct::of_path(path);
        let api = match direct {
            Some(_) => Some(Api::Chat),
            None => Api::from_client_path(path),
        };
        let Some(api) = api else {
            host.log_warn(&format!("failover request with an unknown path {path}"));
            return fail_closed(host);
        };
        let Some(backend_name) = host.property(&BACKEND_METADATA_PATH) else {
            host.log_warn("the picked endpoint carries no airouter backend metadata");
            return fail_closed(host);
        };
        let plan = Rc::clone(&self.plan);
        let Some(resolved) = plan.resolve(api, &client_name) else {
            return fail_closed(host);
        };
        let picked = resolved.model.targets().iter().find_map(|t| {
            let backend = plan.backends.get(t.backend)?;
            let backend_model = Model::name_at(t, &client_name).to_string();
            let state_name = resolved.model.state_name_at(t);
            (backend.name == backend_name).then_some((
                t.backend,
                backend,
                backend_model,
                state_name,
            ))
        });
        let Some((index, backend, backend_model, state_name)) = picked else {
            host.log_warn(&format!(
                "backend {backend_name} is not a target of model {client_name}"
            ));
            return fail_closed(host);
        };
        let t = TargetRef {
            backend,
            backend_model: &backend_model,
            client_name: &client_name,
            direct,
        };
        target_request::apply_headers(host, &plan, api, query, &t, true);
        if backend.kind != BackendKind::Triton {
            // Only the sidecar reads the client's model name (apply_headers set it for Triton).
            host.set_header(Headers::Request, CLIENT_MODEL_HEADER, None);
        }
        carried.attempts = carried.attempts.saturating_add(1);
        let attempt = carried.attempts;
        host.set_property(FAILOVER_PROPERTY, carried.encode().as_bytes());
        if let (true, Some(limit), None) = (attempt > 1, backend.rate_limit, &plan.global_limits) {
            // A retry is a request to this backend too: it counts against its limit (it is not
            // refused here, since Envoy already chose this target).
            let now = host.now_ms();
            crate::limits::charge(host, &backend.name, 1, limit, now);
        }
        // The session record and the GenAI telemetry name the backend that answered.
        if plan.session_log.is_some() || plan.measures_gen_ai() {
            note_attempt(host, &[&backend.name, "\t", &backend_model]);
        }
        self.backend = Some(crate::limits::target_key(&backend.name, state_name));
        self.backend_index = Some(index);
        self.direct = direct;
        crate::metrics::add_at(host, &plan.metric_names.backend_requests, index, 1);
        if end_of_stream {
            return Action::Continue;
        }
        self.pending = Some((api, backend_model));
        Action::Pause
    }

    /// The attempt's body so far (`body_size` bytes): at its end, its model is the target's.
    pub fn on_request_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some((api, backend_model)) = &self.pending else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let req = Headers::Request;
        let body = host.body(req, body_size).unwrap_or_default();
        let ctype = host.header(req, "content-type").unwrap_or_default();
        match target_request::locate_model(*api, &body, &ctype) {
            Ok((span, _)) => {
                let mut new_body = target_request::replace_model(*api, &body, span, backend_model);
                self.usage_chunk = crate::json_body::asks_stream_usage(&new_body);
                let backend = self
                    .backend_index
                    .and_then(|i| self.plan.backends.get(i))
                    .filter(|_| self.direct.is_none());
                match backend.and_then(|b| dialect::request(b, backend_model, &new_body)) {
                    Some(Ok(translated)) => new_body = translated,
                    // The listener checked the request against every target before routing.
                    Some(Err(e)) => host.log_warn(&format!("failover attempt: {}", e.message)),
                    None => {}
                }
                if host.replace_body(req, body_size, &new_body) {
                    host.set_header(req, "content-length", Some(&new_body.len().to_string()));
                }
            }
            Err(e) => host.log_warn(&format!("failover attempt: {}", e.message)),
        }
        self.pending = None;
        Action::Continue
    }

    /// Trailers end the attempt's body: it is rewritten now, as at the end of the stream.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        // The host returns the whole buffered body when asked for more than it holds.
        let size = host
            .body(Headers::Request, u32::MAX as usize)
            .map_or(0, |b| b.len());
        self.on_request_body(host, size, true)
    }
}

impl UpstreamFlow {
    /// A 429 from this attempt's backend cools it down (Envoy then tries the next target). A
    /// backend speaking another API has its answer made OpenAI's from here on.
    pub fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        let backend = self.backend_index.and_then(|i| self.plan.backends.get(i));
        if backend.is_some_and(|b| b.kind == BackendKind::Anthropic) {
            let (usage_chunk, direct) = (self.usage_chunk, self.direct);
            self.answer = Some(Answer::at_headers(host, end_of_stream, usage_chunk, direct));
        }
        // A whole answer is translated at its end, which may change its status: held till then.
        let hold = self.answer.as_ref().is_some_and(Answer::needs_whole_body);
        let status = host
            .header(Headers::Response, ":status")
            .and_then(|s| s.parse::<u16>().ok());
        if let (Some(429), Some(backend)) = (status, &self.backend) {
            let max_ms = self
                .backend_index
                .and_then(|i| self.plan.backends.get(i))
                .map_or(0, |b| b.max_cooldown_ms);
            targets::start_cooldown(host, backend, max_ms);
        }
        let notes = self.plan.session_log.is_some() || self.plan.measures_gen_ai();
        if let (Some(status), true) = (status, notes) {
            note_attempt(host, &["\t", &status.to_string()]);
        }
        let failed = status.is_some_and(|s| s >= 500);
        if let (true, Some(index)) = (failed, self.backend_index) {
            crate::metrics::add_at(host, &self.plan.metric_names.backend_errors, index, 1);
        }
        if hold {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// The attempt's response body (`body_size` bytes of this chunk, or buffered so far), made
    /// OpenAI's when its backend speaks another API.
    pub fn on_response_body(
        &mut self,
        host: &mut dyn Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(answer) = &mut self.answer else {
            return Action::Continue;
        };
        if answer.needs_whole_body() && !end_of_stream {
            return Action::Pause;
        }
        let resp = Headers::Response;
        let raw = host.body(resp, body_size).unwrap_or_default();
        let out = answer.translate(host, &raw, end_of_stream);
        if out != raw && !host.replace_body(resp, body_size, &out) {
            host.log_warn("could not translate a backend's answer");
        }
        Action::Continue
    }
}

/// An attempt the filter cannot rewrite (which only a mismatch between the listener's flow and
/// this one can cause) goes on without any credentials, the client's or a backend's.
fn fail_closed(host: &mut dyn Host) -> Action {
    for name in ["authorization", "api-key", "x-api-key"] {
        host.set_header(Headers::Request, name, None);
    }
    Action::Continue
}

/// Adds `parts` to the attempts noted for the session record and the telemetry
/// ([`SESSION_ATTEMPTS_PROPERTY`]): a new line for a new attempt (starting with its backend),
/// the status after it.
fn note_attempt(host: &mut dyn Host, parts: &[&str]) {
    let mut noted = host
        .property(&[SESSION_ATTEMPTS_PROPERTY])
        .unwrap_or_default();
    if parts.first().is_some_and(|p| *p != "\t") && !noted.is_empty() {
        noted.push('\n');
    }
    for p in parts {
        noted.push_str(p);
    }
    host.set_property(SESSION_ATTEMPTS_PROPERTY, noted.as_bytes());
}
