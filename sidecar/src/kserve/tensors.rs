//! KServe v2 tensors: typed inputs built from Rust values, raw outputs decoded with every length
//! checked. BYTES elements are `[u32 little-endian length][bytes]`, repeated.

use std::fmt;

use super::pb::model_infer_request::InferInputTensor;
use super::pb::model_infer_response::InferOutputTensor;
use super::pb::{
    infer_parameter::ParameterChoice, InferParameter, InferTensorContents, ModelInferResponse,
};

/// An output that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn input(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
    contents: InferTensorContents,
) -> InferInputTensor {
    InferInputTensor {
        name: name.to_string(),
        datatype: datatype.to_string(),
        shape,
        parameters: Default::default(),
        contents: Some(contents),
    }
}

pub fn bytes(name: &str, values: Vec<Vec<u8>>, shape: Vec<i64>) -> InferInputTensor {
    input(
        name,
        "BYTES",
        shape,
        InferTensorContents {
            bytes_contents: values,
            ..Default::default()
        },
    )
}

pub fn boolean(name: &str, value: bool, shape: Vec<i64>) -> InferInputTensor {
    input(
        name,
        "BOOL",
        shape,
        InferTensorContents {
            bool_contents: vec![value],
            ..Default::default()
        },
    )
}

pub fn int32(name: &str, value: i32, shape: Vec<i64>) -> InferInputTensor {
    input(
        name,
        "INT32",
        shape,
        InferTensorContents {
            int_contents: vec![value],
            ..Default::default()
        },
    )
}

pub fn uint64(name: &str, value: u64, shape: Vec<i64>) -> InferInputTensor {
    input(
        name,
        "UINT64",
        shape,
        InferTensorContents {
            uint64_contents: vec![value],
            ..Default::default()
        },
    )
}

pub fn fp32(name: &str, value: f32, shape: Vec<i64>) -> InferInputTensor {
    input(
        name,
        "FP32",
        shape,
        InferTensorContents {
            fp32_contents: vec![value],
            ..Default::default()
        },
    )
}

pub fn bool_param(value: bool) -> InferParameter {
    InferParameter {
        parameter_choice: Some(ParameterChoice::BoolParam(value)),
    }
}

/// Splits a raw BYTES tensor into its elements.
pub fn decode_bytes(raw: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let (len_bytes, tail) = rest.split_first_chunk::<4>().ok_or_else(|| {
            DecodeError(format!(
                "BYTES tensor: {} stray bytes where a length was expected",
                rest.len()
            ))
        })?;
        let len = u32::from_le_bytes(*len_bytes) as usize;
        if len > tail.len() {
            return Err(DecodeError(format!(
                "BYTES tensor: element of {len} bytes but only {} left",
                tail.len()
            )));
        }
        let (elem, after) = tail.split_at(len);
        out.push(elem.to_vec());
        rest = after;
    }
    Ok(out)
}

/// Reads a raw FP32 tensor (little-endian).
pub fn decode_fp32(raw: &[u8]) -> Result<Vec<f32>, DecodeError> {
    if !raw.len().is_multiple_of(4) {
        return Err(DecodeError(format!(
            "FP32 tensor of {} bytes is not a whole number of floats",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads the first element of an integer tensor of any width, as u64.
pub fn decode_count(datatype: &str, raw: &[u8]) -> Result<u64, DecodeError> {
    let first = |n: usize| {
        raw.get(..n)
            .ok_or_else(|| DecodeError(format!("{datatype} tensor is empty")))
    };
    let mut buf = [0u8; 8];
    let v = match datatype {
        "UINT32" | "INT32" => {
            buf[..4].copy_from_slice(first(4)?);
            let v = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if datatype == "INT32" {
                (v as i32).max(0) as u64
            } else {
                u64::from(v)
            }
        }
        "UINT64" | "INT64" => {
            buf.copy_from_slice(first(8)?);
            let v = u64::from_le_bytes(buf);
            if datatype == "INT64" {
                (v as i64).max(0) as u64
            } else {
                v
            }
        }
        other => {
            return Err(DecodeError(format!(
                "a count of type {other} is not supported"
            )))
        }
    };
    Ok(v)
}

/// An output of a response, by name: its metadata and raw bytes (raw contents, or typed contents
/// re-encoded when the server sent those). Never assumes an output's position.
pub fn output<'r>(
    resp: &'r ModelInferResponse,
    name: &str,
) -> Option<(&'r InferOutputTensor, Vec<u8>)> {
    let idx = resp.outputs.iter().position(|o| o.name == name)?;
    let meta = resp.outputs.get(idx)?;
    if let Some(raw) = resp.raw_output_contents.get(idx) {
        return Some((meta, raw.clone()));
    }
    let c = meta.contents.as_ref()?;
    let mut raw = Vec::new();
    for b in &c.bytes_contents {
        raw.extend_from_slice(&(b.len() as u32).to_le_bytes());
        raw.extend_from_slice(b);
    }
    for f in &c.fp32_contents {
        raw.extend_from_slice(&f.to_le_bytes());
    }
    for u in &c.uint_contents {
        raw.extend_from_slice(&u.to_le_bytes());
    }
    for i in &c.int_contents {
        raw.extend_from_slice(&i.to_le_bytes());
    }
    Some((meta, raw))
}

/// Whether a response carries `triton_final_response = true`.
pub fn is_final(resp: &ModelInferResponse) -> bool {
    matches!(
        resp.parameters
            .get("triton_final_response")
            .and_then(|p| p.parameter_choice.as_ref()),
        Some(ParameterChoice::BoolParam(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(elems: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in elems {
            out.extend_from_slice(&(e.len() as u32).to_le_bytes());
            out.extend_from_slice(e);
        }
        out
    }

    #[test]
    fn bytes_round_trip_and_malformed_lengths_are_errors() {
        let raw = framed(&[b"hello", b"", b"\xf0\x9f"]);
        assert_eq!(
            decode_bytes(&raw).unwrap(),
            vec![b"hello".to_vec(), vec![], b"\xf0\x9f".to_vec()]
        );
        assert!(decode_bytes(&raw[..raw.len() - 1]).is_err());
        assert!(decode_bytes(&[5, 0, 0]).is_err());
        assert!(decode_bytes(&[255, 255, 255, 255, 1]).is_err());
        for cut in 0..raw.len() {
            let _ = decode_bytes(&raw[..cut]);
        }
    }

    #[test]
    fn floats_and_counts_decode() {
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(decode_fp32(&raw).unwrap(), vec![1.5, -2.0]);
        assert!(decode_fp32(&raw[..5]).is_err());
        assert_eq!(decode_count("UINT32", &7u32.to_le_bytes()).unwrap(), 7);
        assert_eq!(decode_count("INT64", &9i64.to_le_bytes()).unwrap(), 9);
        assert!(decode_count("UINT32", &[1]).is_err());
        assert!(decode_count("FP32", &[0; 4]).is_err());
    }

    #[test]
    fn outputs_are_found_by_name_not_position() {
        let resp = ModelInferResponse {
            outputs: vec![
                InferOutputTensor {
                    name: "finish_reason".into(),
                    datatype: "BYTES".into(),
                    ..Default::default()
                },
                InferOutputTensor {
                    name: "text_output".into(),
                    datatype: "BYTES".into(),
                    ..Default::default()
                },
            ],
            raw_output_contents: vec![framed(&[b"stop"]), framed(&[b"hi"])],
            ..Default::default()
        };
        let (_, raw) = output(&resp, "text_output").unwrap();
        assert_eq!(decode_bytes(&raw).unwrap(), vec![b"hi".to_vec()]);
        assert!(output(&resp, "missing").is_none());
    }
}
