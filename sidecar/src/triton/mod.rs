//! Talking to Triton: a lazily connected KServe v2 client per backend with model-configuration
//! discovery, the trace context sent as gRPC metadata, and the `ModelStreamInfer` driver of chat
//! and completions. The protocol's messages and tensors are [`crate::kserve`].

pub mod client;
pub mod stream;
pub mod trace;
