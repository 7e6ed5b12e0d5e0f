//! AI Router's pure core: everything the Envoy filter and the sidecar decide, with no host in sight.
//!
//! A request enters at [`flow`]: the wasm glue adapts Envoy's proxy-wasm calls to the
//! [`host::Host`] seam and forwards each callback of the listener's filter to
//! [`flow::HttpFlow`], and each callback of a failover cluster's upstream filter (one per
//! attempt) to [`flow::UpstreamFlow`]. The sidecar uses [`config`] to check files and render
//! Envoy bootstraps, and [`contract`] for the names both sides share. Everything here runs
//! natively, so it is unit-tested and benchmarked directly.
//!
//! The other modules, by the side of the request they serve:
//! - request side: [`auth`] (client keys), [`api`] (the OpenAI APIs by path), [`resolve`]
//!   (model names to models), [`json_body`] and [`multipart`] (the `model` in a body, found and
//!   replaced), [`json_edit`] (other in-place edits of a JSON body), [`json_scan`] (reading JSON
//!   without parsing it), [`router`] (classifier routing: labels, routes, transforms,
//!   enrichment), [`models_list`] and [`admin`] (what the filter answers itself), [`discovery`]
//!   (the backends' own models, fetched by the root context's timer);
//! - response side: [`model_names`] (backend names renamed in bodies), [`sse`] (event streams),
//!   [`response_headers`] (the headers a client may see), [`backend_errors`] (a backend's errors
//!   and Envoy's failures in OpenAI's envelope);
//! - shared: [`config`] (the compiled plan), [`contract`] (the wire names shared with Envoy's
//!   config and the sidecar), [`host`] (the seam), [`limits`] and [`global_limits`] (rate limits
//!   and token budgets), [`metrics`] (counter names), [`errors`] (OpenAI's error envelope),
//!   [`session`] (the per-request session record), [`telemetry`] (the GenAI span attributes,
//!   access-log fields and histograms), [`text`] (cheap string building).

pub mod admin;
pub mod anthropic;
pub mod api;
pub mod auth;
pub mod backend_errors;
pub mod config;
pub mod contract;
pub mod discovery;
pub mod errors;
pub mod flow;
pub mod global_limits;
pub mod host;
pub mod json_body;
pub mod json_edit;
pub mod json_scan;
pub mod limits;
pub mod metrics;
pub mod model_names;
pub mod models_list;
pub mod multipart;
pub mod pattern;
pub mod request_shape;
pub mod resolve;
pub mod response_headers;
pub mod router;
pub mod session;
pub mod sse;
pub mod telemetry;
#[cfg(test)]
mod test_json;
pub mod text;
pub mod token_estimate;
