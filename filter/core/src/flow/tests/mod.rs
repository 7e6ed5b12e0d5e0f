//! The request flow driven through an in-memory host: what Envoy would see the filter do. One
//! shared test host (`host.rs`), and the tests of each part of the flow in the file named for it.

mod host;

mod admission;
mod anthropic;
mod anthropic_direct;
mod discovery;
mod local;
mod response;
mod response_body;
mod route_status;
mod router;
mod routing;
mod session;
mod session_sequence;
mod settlement;
mod stream_usage;
mod targets;
mod telemetry;
mod upstream;
