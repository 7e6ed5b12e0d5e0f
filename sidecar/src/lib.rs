//! AI Router's native side: the Envoy bootstrap renderer, and the sidecar that serves Triton
//! models to OpenAI clients (templates, translators, the KServe v2 client, the HTTP server) and
//! the gRPC client API (`grpc_api`), and its own OpenTelemetry spans (`otel`).

pub mod bootstrap;
pub mod config_files;
#[cfg(test)]
mod golden;
pub mod grpc_api;
pub mod istio;
pub mod kserve;
pub mod otel;
pub mod ratelimit;
pub mod serve;
pub mod session_log;
pub mod templates;
pub mod translate;
pub mod triton;
