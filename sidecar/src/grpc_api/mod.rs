//! The gRPC client API (`[grpc_api]`, `proto/airouter/v1/router.proto`): `airouter.v1.Router`
//! served beside the standard health service (`grpc.health.v1`) and, when the file asks for it,
//! server reflection (`grpc.reflection.v1` and `v1alpha`), on the sidecar's one gRPC port. Envoy's
//! `[grpc_api]` listener routes clients here (`sidecar/src/bootstrap/grpc_api.rs`).
//!
//! Each call becomes one OpenAI request sent over HTTP to Envoy's OpenAI listener, so the filter
//! applies keys, limits, failover and renaming to it as to any client:
//! - `request`: the call's message → the OpenAI request body (chat for `messages`, legacy
//!   completions for `prompt`), its mistakes refused as `INVALID_ARGUMENT`;
//! - `upstream`: the HTTP client (hyper) sending it, with the call's credentials;
//! - `response`: the OpenAI answer (JSON, or SSE events cut by the core's framer) → messages;
//! - `status`: an HTTP error answer → the gRPC status (the mapping is in its doc);
//! - `deadline`: the call's `grpc-timeout`;
//! - `limits`: tonic's message-size refusals as `RESOURCE_EXHAUSTED`;
//! - `service`: the `Router` service tying them together, unary and streamed.
//!
//! The sidecar keeps no state between calls, so any number of replicas can serve behind Envoy.

mod deadline;
mod limits;
mod request;
mod response;
mod service;
mod status;
mod upstream;

#[cfg(test)]
mod tests;

use airouter_core::config::{GrpcApi, Listener};

pub use service::RouterApi;

/// The code generated from `router.proto`.
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("airouter.v1");
}

/// The encoded descriptor set of `router.proto` with its imports and `google.api.http` options:
/// what reflection serves and Envoy's gRPC-JSON transcoder reads (`proto_descriptor_bin`).
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/airouter_v1_descriptor.bin"));

/// The descriptor set Envoy's gRPC-JSON transcoder reads: [`DESCRIPTOR_SET`], then the
/// `google.rpc` error detail types (`tonic-types`' descriptors) it does not hold. The transcoder
/// writes a failed call's `grpc-status-details-bin` as JSON only when it knows every type in it
/// (`ErrorInfo`, `RetryInfo`, `BadRequest`), and otherwise passes no body at all. Two encoded
/// descriptor sets one after the other are one set with the files of both.
pub fn transcoder_descriptor_set() -> Vec<u8> {
    use prost::Message;
    use prost_types::FileDescriptorSet;
    let ours: Vec<String> = FileDescriptorSet::decode(DESCRIPTOR_SET)
        .map(|s| s.file.into_iter().filter_map(|f| f.name).collect())
        .unwrap_or_default();
    let details = FileDescriptorSet::decode(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .map(|s| FileDescriptorSet {
            file: s
                .file
                .into_iter()
                .filter(|f| f.name.as_ref().is_some_and(|n| !ours.contains(n)))
                .collect(),
        })
        .unwrap_or_default();
    let mut out = DESCRIPTOR_SET.to_vec();
    out.extend(details.encode_to_vec());
    out
}

/// The full name of the service, as Envoy's transcoder and the health service name it.
pub const SERVICE_NAME: &str = "airouter.v1.Router";

/// `router` with the client API's services added for `api`: the router calling Envoy's OpenAI
/// listener, health (the server and `airouter.v1.Router` SERVING), reflection when configured.
/// `listener` is `[listener]`: calls are taken up to its body limit, and pooled connections to
/// Envoy are let go before its idle timeout would close them. Fails only on a descriptor set
/// reflection cannot read (a bug).
pub async fn add_to(
    router: tonic::transport::server::Router,
    api: &GrpcApi,
    listener: &Listener,
) -> Result<tonic::transport::server::Router, String> {
    let max_request = usize::try_from(listener.max_body_bytes).unwrap_or(usize::MAX);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<proto::router_server::RouterServer<RouterApi>>()
        .await;
    let mut router = router
        .add_service(
            RouterApi::new(&api.openai, listener.idle_timeout_ms, max_request).into_server(),
        )
        .add_service(health);
    if api.reflection {
        let sets = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let bad = |e: tonic_reflection::server::Error| format!("grpc_api reflection: {e}");
        router = router
            .add_service(sets().build_v1().map_err(bad)?)
            .add_service(sets().build_v1alpha().map_err(bad)?);
    }
    Ok(router)
}
