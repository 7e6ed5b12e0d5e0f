//! One KServe v2 response of a text-generation model → the piece of text it carries, its
//! finish reason and token counts, and whether it ends the request.

use super::llm_request::Extras;
use crate::triton::pb::ModelInferResponse;
use crate::triton::tensors::{self, DecodeError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    pub text: Vec<u8>,
    /// `stop` or `length`, when the model says (vLLM sends `None` until the end).
    pub finish_reason: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub is_final: bool,
}

pub fn decode(
    resp: &ModelInferResponse,
    extras: Extras,
    decoupled: bool,
) -> Result<Piece, DecodeError> {
    let mut piece = Piece {
        is_final: !decoupled || tensors::is_final(resp),
        ..Default::default()
    };
    if let Some((_, raw)) = tensors::output(resp, "text_output") {
        piece.text = tensors::decode_bytes(&raw)?.concat();
    }
    if extras.finish_reason {
        if let Some((_, raw)) = tensors::output(resp, "finish_reason") {
            let reason = tensors::decode_bytes(&raw)?.concat();
            let reason = String::from_utf8_lossy(&reason).trim().to_ascii_lowercase();
            if reason == "stop" || reason == "length" {
                piece.finish_reason = Some(reason);
            }
        }
    }
    let count = |name: &str| -> Result<Option<u64>, DecodeError> {
        match tensors::output(resp, name) {
            Some((meta, raw)) => tensors::decode_count(&meta.datatype, &raw).map(Some),
            None => Ok(None),
        }
    };
    if extras.num_input_tokens {
        piece.input_tokens = count("num_input_tokens")?;
    }
    if extras.num_output_tokens {
        piece.output_tokens = count("num_output_tokens")?;
    }
    Ok(piece)
}
