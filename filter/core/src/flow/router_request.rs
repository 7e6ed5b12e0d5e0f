//! A request to a router (a virtual model, `[[routers]]`): held while a classifier labels it
//! (and, for an enriching route, while the enrichment model answers), then handed back to the
//! normal routing for the chosen route's model, under the router's name. The steps are the pure
//! ones of [`crate::router`] (its module doc is the design); this file keeps one request's state
//! between Envoy's callbacks and sends the call-outs ([`super::callout`]).

use super::callout::{self, Sent};
use super::route_status::route_status;
use crate::api::Api;
use crate::config::{Plan, Router};
use crate::errors::ApiError;
use crate::host::{CallResponse, Host};
use crate::metrics;
use crate::router::choice::{self, ChosenBy};
use crate::router::decision::{
    ClassifierOutcome, EnrichmentOutcome, RoutingDecision, SkippedRoute,
};
use crate::router::turns::{self, Turn};
use crate::router::{classifier, context, enrich, label, meta};

/// What the flow does next with a router's request.
#[derive(Debug)]
pub(super) enum Step {
    /// A call-out is out: the request stays held.
    Wait,
    /// Send the request on to route `route`'s model, with this body (the client's, enriched
    /// and transformed for the route; its `model` still the router's name).
    Serve { route: usize, body: Vec<u8> },
    /// Refuse it (a body whose conversation cannot be read).
    Refuse(ApiError),
}

/// The call-out a held request waits for.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    Classifier(Sent),
    /// The enrichment of the chosen route (its index).
    Enrichment(Sent, usize),
}

/// One request to a router, between its body and the route that serves it.
#[derive(Debug)]
pub(super) struct RouterRequest {
    /// The router's index in the plan.
    pub router: usize,
    api: Api,
    /// The client's body as it came.
    body: Vec<u8>,
    turns: Vec<Turn>,
    waiting: Option<Waiting>,
    /// How the request was (or is being) routed, for the session log and the stats.
    pub decision: RoutingDecision,
    /// Tokens the classifier's reply reported (stats only: no key pays them).
    pub classifier_tokens: u64,
    /// A route probe: the route is chosen, but nothing is enriched or generated.
    classify_only: bool,
}

impl RouterRequest {
    /// The API the request came on.
    pub fn api(&self) -> Api {
        self.api
    }

    /// Starts routing the request `body` (on `api`) that names router `router`: a META rule,
    /// or the classifier's call-out, or the default route when there is nothing to classify or
    /// no classifier to ask. `classify_only` (a route probe) stops once the route is chosen.
    pub fn start(
        host: &mut dyn Host,
        plan: &Plan,
        router: usize,
        api: Api,
        body: Vec<u8>,
        classify_only: bool,
    ) -> (Option<RouterRequest>, Step) {
        let Some(r) = plan.routers.get(router) else {
            return (None, Step::Refuse(ApiError::internal("unknown router")));
        };
        let read = match api {
            Api::Completions => turns::read_completions(&body),
            _ => turns::read_chat(&body),
        };
        let turns = match read {
            Ok(t) => t,
            Err(e) => {
                return (
                    None,
                    Step::Refuse(ApiError::bad_request(e.as_str().to_string())),
                )
            }
        };
        let mut req = RouterRequest {
            router,
            api,
            body,
            turns,
            waiting: None,
            decision: RoutingDecision {
                virtual_model: r.name.clone(),
                label: None,
                route: String::new(),
                model: String::new(),
                chosen_by: ChosenBy::Default,
                reason: String::new(),
                skipped: Vec::new(),
                classifier: None,
                enrichment: None,
            },
            classifier_tokens: 0,
            classify_only,
        };
        let step = req.classify(host, plan, r);
        (Some(req), step)
    }

    fn classify(&mut self, host: &mut dyn Host, plan: &Plan, r: &Router) -> Step {
        if let Some(route) = meta::detect(&r.meta, &self.turns) {
            self.decision.reason = "a META rule matched".into();
            return self.choose(host, plan, route, ChosenBy::Meta);
        }
        let c = &r.classifier;
        let Some(ctx) = context::build(&self.turns, c.context_budget_tokens) else {
            self.decision.reason = "no user message to classify".into();
            return self.choose(host, plan, r.default_route, ChosenBy::Default);
        };
        let sent = callout::pick(host, plan, Api::Chat, &c.model)
            .ok_or(callout::NotSent::NoTarget)
            .and_then(|(backend, backend_model)| {
                let labels = r.labels();
                let body = classifier::request_body(
                    &backend_model,
                    &c.prompt,
                    &c.template,
                    &labels,
                    &ctx,
                    c.max_tokens,
                );
                callout::send(host, plan, backend, Api::Chat, &body, c.timeout_ms)
            });
        match sent {
            Ok(sent) => {
                self.waiting = Some(Waiting::Classifier(sent));
                Step::Wait
            }
            Err(why) => {
                let error = format!("classifier not asked: {}", why.as_str());
                self.decision.reason = error.clone();
                self.decision.classifier = Some(ClassifierOutcome::new(None, None, Some(error), 0));
                self.choose(host, plan, r.default_route, ChosenBy::Default)
            }
        }
    }

    /// Counts the request for the router's stats, once its route `route` took it: the route's
    /// requests, the classifier's call (its latency, failure and tokens), a fallback, the
    /// enrichment.
    pub fn count(&self, host: &mut dyn Host, plan: &Plan, route: usize) {
        let Some(n) = plan.metric_names.routers.get(self.router) else {
            return;
        };
        metrics::add_at(host, &n.routes, route, 1);
        if let Some(c) = &self.decision.classifier {
            host.count(&n.classifier_calls);
            host.add(&n.classifier_latency_ms, c.latency_ms);
            host.add(&n.classifier_tokens, self.classifier_tokens);
            if c.error.is_some() {
                host.count(&n.classifier_failures);
            }
        }
        if !self.decision.skipped.is_empty() {
            host.count(&n.fallbacks);
        }
        if let Some(e) = &self.decision.enrichment {
            host.count(&n.enrich_calls);
            if !e.injected {
                host.count(&n.enrich_failures);
            }
        }
    }

    /// The answer of the call-out with `token`; `None` when it is not the one this request
    /// waits for.
    pub fn on_reply(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        token: u32,
        response: &CallResponse,
    ) -> Option<Step> {
        let waiting = self.waiting?;
        let now = host.now_ms();
        match waiting {
            Waiting::Classifier(sent) if sent.token == token => {
                self.waiting = None;
                let latency = now.saturating_sub(sent.at_ms);
                let r = plan.routers.get(self.router)?;
                Some(self.labelled(host, plan, r, response, latency))
            }
            Waiting::Enrichment(sent, route) if sent.token == token => {
                self.waiting = None;
                let latency = now.saturating_sub(sent.at_ms);
                Some(self.enriched(host, plan, route, response, latency))
            }
            _ => None,
        }
    }

    fn labelled(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        r: &Router,
        response: &CallResponse,
        latency_ms: u64,
    ) -> Step {
        let text = call_failure(response, classifier::MAX_REPLY_BODY_BYTES).map_or_else(
            || classifier::reply_text(&response.body).map_err(|e| e.to_string()),
            Err,
        );
        self.classifier_tokens = reported_tokens(&response.body);
        let labels = r.labels();
        let parsed = text.as_ref().map_err(Clone::clone).and_then(|t| {
            label::parse(t, &labels, r.classifier.min_confidence).map_err(|u| u.to_string())
        });
        let reply = text.as_deref().ok();
        match parsed {
            Ok(p) => {
                let name = labels.get(p.label).copied().unwrap_or_default();
                self.decision.label = Some(name.to_string());
                self.decision.reason = format!("the classifier answered {name}");
                self.decision.classifier = Some(ClassifierOutcome::new(
                    reply,
                    p.confidence,
                    None,
                    latency_ms,
                ));
                self.choose(host, plan, p.label, ChosenBy::Classifier)
            }
            Err(error) => {
                self.decision.reason = format!("no label: {error}");
                self.decision.classifier =
                    Some(ClassifierOutcome::new(reply, None, Some(error), latency_ms));
                self.choose(host, plan, r.default_route, ChosenBy::Default)
            }
        }
    }

    /// Chooses the route serving a request that wants `wanted`, then enriches or serves.
    fn choose(&mut self, host: &mut dyn Host, plan: &Plan, wanted: usize, by: ChosenBy) -> Step {
        let Some(r) = plan.routers.get(self.router) else {
            return Step::Refuse(ApiError::internal("unknown router"));
        };
        let fallback = r
            .routes
            .get(wanted)
            .map(|x| x.fallback.as_slice())
            .unwrap_or(&[]);
        let api = self.api;
        let mut can_serve = |i: usize| match r.routes.get(i) {
            Some(route) => route_status(host, plan, api, &route.model),
            None => Err(choice::Unavailable::Unconfigured),
        };
        let chosen = choice::choose(wanted, by, fallback, r.default_route, &mut can_serve);
        self.decision.skipped = chosen
            .skipped
            .iter()
            .filter_map(|(i, why)| {
                Some(SkippedRoute {
                    route: r.routes.get(*i)?.label.clone(),
                    reason: *why,
                })
            })
            .collect();
        if chosen.by == ChosenBy::Fallback || chosen.none_available {
            let passed: Vec<String> = self
                .decision
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.route, s.reason.as_str()))
                .collect();
            self.decision.reason = format!(
                "{}; passed over {}",
                self.decision.reason,
                passed.join(", ")
            );
        }
        self.decision.chosen_by = chosen.by;
        let Some(route) = r.routes.get(chosen.route) else {
            return Step::Refuse(ApiError::internal("unknown route"));
        };
        self.decision.route = route.label.clone();
        self.decision.model = route.model.clone();
        if self.classify_only {
            return Step::Serve {
                route: chosen.route,
                body: Vec::new(),
            };
        }
        match &route.enrich {
            Some(e) if self.api == Api::Chat => {
                let sent = context::build(&self.turns, e.context_budget_tokens)
                    .ok_or_else(|| "no user message to enrich".to_string())
                    .and_then(|ctx| {
                        let (backend, backend_model) =
                            callout::pick(host, plan, Api::Responses, &e.model)
                                .ok_or_else(|| callout::NotSent::NoTarget.as_str().to_string())?;
                        let body = enrich::request_body(
                            &backend_model,
                            e.instructions.as_deref(),
                            &e.tools,
                            &ctx,
                            e.max_output_tokens,
                        );
                        callout::send(host, plan, backend, Api::Responses, &body, e.timeout_ms)
                            .map_err(|n| n.as_str().to_string())
                    });
                match sent {
                    Ok(sent) => {
                        self.waiting = Some(Waiting::Enrichment(sent, chosen.route));
                        Step::Wait
                    }
                    Err(error) => {
                        self.decision.enrichment = Some(enrichment_failed(&e.model, error, 0));
                        self.serve(host, plan, chosen.route, None)
                    }
                }
            }
            _ => self.serve(host, plan, chosen.route, None),
        }
    }

    fn enriched(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        route: usize,
        response: &CallResponse,
        latency_ms: u64,
    ) -> Step {
        let Some(e) = plan
            .routers
            .get(self.router)
            .and_then(|r| r.routes.get(route))
            .and_then(|r| r.enrich.as_ref())
        else {
            return self.serve(host, plan, route, None);
        };
        let answer = call_failure(response, enrich::MAX_REPLY_BODY_BYTES).map_or_else(
            || enrich::answer(&response.body).map_err(|f| f.to_string()),
            Err,
        );
        match answer {
            Ok(a) => {
                self.decision.enrichment = Some(EnrichmentOutcome {
                    model: e.model.clone(),
                    injected: true,
                    error: None,
                    answer_bytes: a.text.len(),
                    answer_cut: a.cut,
                    latency_ms,
                });
                self.serve(host, plan, route, Some(&a.text))
            }
            Err(error) => {
                self.decision.enrichment = Some(enrichment_failed(&e.model, error, latency_ms));
                self.serve(host, plan, route, None)
            }
        }
    }

    /// The body route `route` gets: the enrichment's `answer` put in (when there is one), then
    /// the route's transforms.
    fn serve(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        route: usize,
        answer: Option<&str>,
    ) -> Step {
        let Some(r) = plan
            .routers
            .get(self.router)
            .and_then(|r| r.routes.get(route))
        else {
            return Step::Refuse(ApiError::internal("unknown route"));
        };
        let mut body = std::borrow::Cow::Borrowed(self.body.as_slice());
        if let (Some(answer), Some(e)) = (answer, &r.enrich) {
            match enrich::inject(&body, &e.template, answer, e.inject) {
                Ok(b) => body = std::borrow::Cow::Owned(b),
                Err(why) => {
                    if let Some(outcome) = self.decision.enrichment.as_mut() {
                        outcome.injected = false;
                        outcome.error = Some(why.as_str().to_string());
                    }
                }
            }
        }
        match r.transforms.apply(self.api, &body, host.now_ms()) {
            Ok(b) => Step::Serve {
                route,
                body: b.into_owned(),
            },
            Err(why) => Step::Refuse(ApiError::bad_request(why.as_str().to_string())),
        }
    }
}

/// Why a call-out's response cannot be read, if it cannot: no response, a status other than
/// 200, or a body over `max` bytes.
fn call_failure(response: &CallResponse, max: usize) -> Option<String> {
    match response.status {
        0 => Some("no response (timeout, refused or reset connection)".into()),
        200 if response.body_len > max || response.body_len > response.body.len() => {
            Some(format!("the reply is over {max} bytes"))
        }
        200 => None,
        status => Some(format!("status {status}")),
    }
}

fn enrichment_failed(model: &str, error: String, latency_ms: u64) -> EnrichmentOutcome {
    EnrichmentOutcome {
        model: model.to_string(),
        injected: false,
        error: Some(error),
        answer_bytes: 0,
        answer_cut: false,
        latency_ms,
    }
}

/// `usage.total_tokens` of a call-out's JSON reply (0 when it says none), bounded.
fn reported_tokens(body: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Usage {
        total_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<Reply>(body)
        .ok()
        .and_then(|r| r.usage?.total_tokens)
        .map_or(0, |t| t.min(crate::limits::MAX_USAGE_TOKENS))
}
