//! AI Router's pure core: everything the Envoy filter and the sidecar decide, with no host in sight.
//!
//! The wasm crate adapts Envoy's proxy-wasm calls to the [`host::Host`] seam and forwards each
//! callback to [`flow::HttpFlow`]; the sidecar uses [`config`] to check files and render Envoy
//! bootstraps. Everything here runs natively, so it is unit-tested and benchmarked directly.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backend_errors;
pub mod config;
pub mod contract;
pub mod errors;
pub mod flow;
pub mod global_limits;
pub mod host;
pub mod json_body;
pub mod json_scan;
pub mod limits;
pub mod metrics;
pub mod model_names;
pub mod models_list;
pub mod multipart;
pub mod resolve;
pub mod response_headers;
pub mod sse;
#[cfg(test)]
mod test_json;
pub mod text;
