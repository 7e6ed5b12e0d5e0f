//! Talking to Triton: the generated KServe v2 client, tensor encoding and decoding, and a lazily
//! connected client per backend with model-configuration discovery.

pub mod client;
pub mod tensors;

/// The KServe v2 messages and client generated from `proto/kserve`.
#[allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
pub mod pb {
    tonic::include_proto!("inference");
}
