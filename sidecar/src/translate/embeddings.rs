//! OpenAI embeddings ↔ a Triton embeddings model: text `BYTES [N, 1]` in, `FP32 [N, D]` out.
//! The OpenAI response is [`super::openai_response::embeddings`].

use airouter_core::errors::ApiError;
use serde_json::Value;

use crate::kserve::model_info::ModelInfo;
use crate::kserve::pb::model_infer_request::InferRequestedOutputTensor;
use crate::kserve::pb::{DataType, ModelInferRequest, ModelInferResponse};
use crate::kserve::tensors;

/// An embeddings request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    pub inputs: Vec<String>,
    pub base64: bool,
}

/// A `POST /v1/embeddings` body: `input` as text, `encoding_format` float or base64.
pub fn parse(body: &Value) -> Result<EmbeddingsRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::not_an_object());
    }
    let inputs = super::chat_request::text_list(body, "input")?;
    if inputs.len() > 2048 {
        return Err(ApiError::invalid_param(
            "input",
            "At most 2048 inputs per request.",
        ));
    }
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "encoding_format",
                "'encoding_format' must be 'float' or 'base64'.",
            ))
        }
    };
    Ok(EmbeddingsRequest { inputs, base64 })
}

/// The model's text input and vector output names: `text`/`embedding` when declared, else the
/// first BYTES input and the first output.
pub fn tensor_names(info: &ModelInfo) -> Option<(String, String)> {
    let input = if info.input_type("text") == Some(DataType::TypeString) {
        "text".to_string()
    } else {
        let mut names: Vec<&String> = info
            .inputs
            .iter()
            .filter(|(_, (t, _))| *t == DataType::TypeString)
            .map(|(n, _)| n)
            .collect();
        names.sort();
        names.first().map(|n| n.to_string())?
    };
    let output = if info.has_output("embedding") {
        "embedding".to_string()
    } else {
        info.outputs.first()?.clone()
    };
    Some((input, output))
}

/// The request for one batch of `texts`; `None` when the model has no usable input or output.
pub fn build(
    info: &ModelInfo,
    model: &str,
    id: &str,
    texts: &[String],
) -> Option<ModelInferRequest> {
    let (input, output) = tensor_names(info)?;
    let n = texts.len() as i64;
    let shape = if info.max_batch_size > 0 {
        vec![n, 1]
    } else {
        vec![n]
    };
    Some(ModelInferRequest {
        model_name: model.to_string(),
        id: id.to_string(),
        inputs: vec![tensors::bytes(
            &input,
            texts.iter().map(|t| t.as_bytes().to_vec()).collect(),
            shape,
        )],
        outputs: vec![InferRequestedOutputTensor {
            name: output,
            parameters: Default::default(),
        }],
        ..Default::default()
    })
}

/// The `N` vectors of a response; a count or size that does not fit is a 502 (the backend broke
/// its contract, the client did nothing wrong).
pub fn decode(
    info: &ModelInfo,
    resp: &ModelInferResponse,
    n: usize,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let broken = |why: String| {
        ApiError::with_status(
            502,
            format!("The embeddings backend sent an unusable answer: {why}."),
            Some("bad_upstream_response"),
        )
    };
    let (_, output) = tensor_names(info).ok_or_else(|| broken("no output".into()))?;
    let (meta, raw) = tensors::output(resp, &output)
        .ok_or_else(|| broken(format!("output `{output}` is missing")))?;
    if meta.datatype != "FP32" {
        return Err(broken(format!(
            "output `{output}` is {} rather than FP32",
            meta.datatype
        )));
    }
    let values = tensors::decode_fp32(&raw).map_err(|e| broken(e.0))?;
    let rows = meta.shape.first().copied().unwrap_or(0);
    if rows != n as i64 || n == 0 || !values.len().is_multiple_of(n) {
        return Err(broken(format!("{rows} vectors for {n} inputs")));
    }
    let dim = values.len() / n;
    Ok(values.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::kserve::pb::model_infer_response::InferOutputTensor;

    fn info() -> ModelInfo {
        ModelInfo {
            decoupled: false,
            max_batch_size: 16,
            inputs: HashMap::from([("text".to_string(), (DataType::TypeString, false))]),
            outputs: vec!["embedding".into()],
        }
    }

    fn resp(rows: i64, values: &[f32]) -> ModelInferResponse {
        ModelInferResponse {
            outputs: vec![InferOutputTensor {
                name: "embedding".into(),
                datatype: "FP32".into(),
                shape: vec![rows, 2],
                ..Default::default()
            }],
            raw_output_contents: vec![values.iter().flat_map(|f| f.to_le_bytes()).collect()],
            ..Default::default()
        }
    }

    #[test]
    fn requests_are_n_by_1_bytes() {
        let req = build(&info(), "embed", "r", &["a".into(), "b".into()]).unwrap();
        assert_eq!(
            (req.inputs[0].name.as_str(), req.inputs[0].shape.clone()),
            ("text", vec![2, 1])
        );
        assert_eq!(req.outputs[0].name, "embedding");
    }

    #[test]
    fn vectors_decode_and_mismatches_are_502() {
        assert_eq!(
            decode(&info(), &resp(2, &[1.0, 2.0, 3.0, 4.0]), 2).unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        assert_eq!(
            decode(&info(), &resp(1, &[1.0, 2.0]), 2)
                .unwrap_err()
                .status,
            502
        );
    }

    #[test]
    fn parse_and_render() {
        assert_eq!(
            parse(&json!({"input":[1,2]})).unwrap_err().param,
            Some("input")
        );
        assert_eq!(
            parse(&json!({"input":"x","encoding_format":"hex"}))
                .unwrap_err()
                .param,
            Some("encoding_format")
        );
        let body = crate::translate::openai_response::embeddings("m", &[vec![1.0]], true, 1);
        assert_eq!(body["data"][0]["embedding"], "AACAPw==");
        assert_eq!(body["object"], "list");
    }
}
