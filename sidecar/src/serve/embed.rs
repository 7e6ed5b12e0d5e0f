//! `POST /v1/embeddings` for a Triton embeddings model, split into the model's batch size.

use airouter_core::config::TritonFamily;
use airouter_core::errors::ApiError;
use hyper::Response;
use serde_json::Value;

use super::{json_response, Body};
use crate::translate::{
    embeddings, estimate_tokens, kserve_error, kserve_request, openai_response,
};
use crate::triton::client::TritonBackend;
use crate::triton::trace::{with_trace, TraceContext};

/// Answers one request, batch by batch.
pub async fn handle(
    backend: &TritonBackend,
    triton_model: &str,
    client_model: &str,
    body: &Value,
    trace: &TraceContext,
) -> Result<Response<Body>, ApiError> {
    let req = embeddings::parse(body)?;
    let info = backend
        .model_info(triton_model)
        .await
        .map_err(|s| kserve_error::from_status(&s, client_model))?;
    kserve_request::check(TritonFamily::Embeddings, &info).map_err(|e| {
        ApiError::internal(&format!(
            "model `{client_model}` cannot be served as embeddings: {}",
            e.0
        ))
    })?;
    let batch = if info.max_batch_size > 0 {
        info.max_batch_size as usize
    } else {
        req.inputs.len()
    };
    let mut vectors = Vec::with_capacity(req.inputs.len());
    for (k, texts) in req.inputs.chunks(batch.max(1)).enumerate() {
        let request = embeddings::build(
            &info,
            triton_model,
            &format!("{}-{k}", trace.request_id),
            texts,
        )
        .ok_or_else(|| ApiError::internal("the embeddings model has no usable input or output"))?;
        let resp = backend
            .client()
            .model_infer(with_trace(request, trace))
            .await
            .map_err(|s| kserve_error::from_status(&s, client_model))?
            .into_inner();
        vectors.extend(embeddings::decode(&info, &resp, texts.len())?);
    }
    let tokens = req.inputs.iter().map(|t| estimate_tokens(t)).sum();
    Ok(json_response(
        200,
        &openai_response::embeddings(client_model, &vectors, req.base64, tokens),
    ))
}
