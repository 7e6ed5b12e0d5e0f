//! Talking to Triton: the generated KServe v2 client, tensor encoding and decoding, a lazily
//! connected client per backend with model-configuration discovery, the trace context sent as
//! gRPC metadata, and the `ModelStreamInfer` driver of chat and completions.

pub mod client;
pub mod stream;
pub mod tensors;
pub mod trace;

/// The KServe v2 messages and client generated from `proto/kserve`.
#[allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
pub mod pb {
    tonic::include_proto!("inference");
}
