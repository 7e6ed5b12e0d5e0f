//! Classifier routing (`[[routers]]`): one virtual model whose requests a classifier model
//! labels, each label picking a route (a configured model, with request transforms and an
//! optional enrichment). This module is the pure core of it; the flow wires it to Envoy.
//!
//! The pieces, each a pure function of its inputs:
//! - [`turns`]: the conversation read from a chat (or legacy completions) body;
//! - [`meta`]: META rules, which skip the classifier;
//! - [`context`]: the conversation within the classifier's budget;
//! - [`classifier`]: the classifier's request body, and the answer text of its reply;
//! - [`label`]: that answer read strictly as one label;
//! - [`choice`]: the route that serves, passing over routes that cannot;
//! - [`transforms`]: the route's edits of the client's body; [`clock`] its date and time;
//! - [`enrich`]: the Responses API request, its answer, and the answer put into the body;
//! - [`decision`]: the record of all that, for the session log and the stats;
//! - [`template`]: the placeholders of prompts and templates.
//!
//! # How the flow uses them (the glue still to be written)
//!
//! A router is found where a model is resolved today, in `flow/routing.rs` (`route`), before
//! [`crate::config::Plan::resolve`]: when the body's model names a router for the API
//! ([`crate::config::Plan::router`]) and the key's allow-list allows that name, the request is
//! a router's. Its key was authenticated and held to its limits at the headers, as for any
//! model. Then:
//!
//! 1. **Read.** [`turns::read_chat`] (or `read_completions`); a body whose conversation cannot
//!    be read is refused with a 400, as a body without a model is.
//! 2. **META.** [`meta::detect`] over the router's rules: a match wants the rule's route,
//!    chosen by [`choice::ChosenBy::Meta`]; no classifier call.
//! 3. **Classify.** Otherwise [`context::build`] within the classifier's budget (no user turn:
//!    the default route, reason recorded), and [`classifier::request_body`] for the
//!    classifier model's first target that can serve ([`choice::model_availability`] over its
//!    targets; none: the default route) with that target's backend model name
//!    ([`crate::config::Model::name_at`]). The flow returns `Pause` from the body callback and
//!    dispatches the body as an HTTP call-out (a new `Host` method over proxy-wasm's
//!    `dispatch_http_call`) to the target backend's cluster
//!    ([`crate::config::Backend::cluster_name`]), `:path` the backend's prefix plus
//!    `/chat/completions`, `:authority` its host, `content-type: application/json`, the
//!    backend's own credentials as `target_request` sets them (never the client's key), with
//!    the classifier's `timeout_ms`. Its tokens are counted in the stats, charged to no key.
//! 4. **Label.** On the call-out's reply (a new callback): a non-200 status, a failure or the
//!    timeout is no label; otherwise [`classifier::reply_text`] then [`label::parse`] with
//!    [`crate::config::Router::labels`] and `min_confidence`. A label wants its route
//!    ([`choice::ChosenBy::Classifier`]); no label wants the default route
//!    ([`choice::ChosenBy::Default`]), the reason recorded.
//! 5. **Choose.** [`choice::choose`] from the wanted route with its `fallback` and the default
//!    route, asking for each route whether its model can serve: the model is
//!    [`crate::config::Plan::resolve`]d on the request's API (`None`: `Unconfigured`), and each
//!    of its targets' [`choice::TargetState`] is filled from what the flow already keeps:
//!    `keyless` from [`crate::config::Backend::is_keyless`] (an `api_key_optional` backend
//!    whose variable was missing); `unhealthy` from the
//!    failure `admin::record_failure` noted within `admin::UNHEALTHY_FOR_MS`; `cooling_down`
//!    from [`crate::limits::cooling_until`] at the target's [`crate::limits::target_key`];
//!    `limited` from [`crate::limits::remaining`] being 0 (read without counting: the normal
//!    routing counts the request when it picks the target). Envoy's own health checks are not
//!    visible to the filter; its failover still skips what they mark unhealthy.
//!    `flow/route_status.rs` does exactly this ([`crate::flow::route_status::route_status`]).
//! 6. **Enrich.** When the chosen route has `enrich`: [`context::build`] within its budget,
//!    [`enrich::request_body`] to its model's first available target (as for the classifier,
//!    `/responses`, its `timeout_ms`), still paused; on the reply [`enrich::answer`] and
//!    [`enrich::inject`]. Any failure leaves the body as it was, recorded.
//! 7. **Transform.** [`transforms::Transforms::apply`] with the host's clock (`now_ms`).
//! 8. **Re-enter the normal routing**, as if the client had named the route's model: the
//!    resolved target, `targets::choose` (cool-downs and limits, counting the request),
//!    `to_backend` or `to_failover` with the transformed body, with one difference: the name
//!    the client sees (`Routed::client_name`, the [`crate::model_names::NameRewriter`]'s
//!    target) is the router's name, so every response, chunk, error and header carries the
//!    virtual model and never the route's model or its backend names. The body is replaced in
//!    the host's buffer once, with the transforms and the model rewrite together, and the
//!    request resumed (a new `Host` method over proxy-wasm's `resume_http_request`).
//! 9. **Record.** The [`decision::RoutingDecision`] goes to the session log and the stats
//!    (per-route counts, classifier latency), and a route tag (its label, bounded by the
//!    configuration) to Envoy's stats.
//!
//! A streaming request pauses the same way: nothing is sent to the client until the route's
//! model answers, so the stream it gets is the route model's, renamed.

pub mod choice;
pub mod classifier;
pub mod clock;
pub mod context;
pub mod decision;
pub mod enrich;
pub mod label;
pub mod meta;
pub mod template;
pub mod transforms;
pub mod turns;
