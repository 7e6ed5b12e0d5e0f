//! The KServe v2 inference protocol as Triton speaks it over gRPC: the messages and client
//! generated from `proto/kserve`, and the tensor encoding and decoding built on them. Both the
//! translators (`crate::translate`) and the Triton client (`crate::triton`) use it; it uses
//! neither.

pub mod model_info;
pub mod tensors;

/// The KServe v2 messages and client generated from `proto/kserve`.
#[allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
pub mod pb {
    tonic::include_proto!("inference");
}
