//! A model's `triton` table as written: the model family, the chat template and the text
//! settings. Read only by the sidecar, which drives Triton.

use serde::Deserialize;

/// How a Triton model is driven (see docs/config.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TritonFamily {
    /// Triton's vLLM backend: no batch dimension, `sampling_parameters` JSON.
    #[serde(rename = "vllm")]
    Vllm,
    /// A TensorRT-LLM `ensemble`: batch dimension, one tensor per parameter.
    #[serde(rename = "trtllm")]
    Trtllm,
    /// TensorRT-LLM's `tensorrt_llm_bls` model: as `trtllm`, possibly cumulative text.
    #[serde(rename = "trtllm-bls")]
    TrtllmBls,
    /// Text in (`BYTES [N,1]`), vectors out (`FP32 [N,D]`).
    #[serde(rename = "embeddings")]
    Embeddings,
}

impl TritonFamily {
    /// The name written in `airouter.toml`.
    pub fn config_name(self) -> &'static str {
        match self {
            TritonFamily::Vllm => "vllm",
            TritonFamily::Trtllm => "trtllm",
            TritonFamily::TrtllmBls => "trtllm-bls",
            TritonFamily::Embeddings => "embeddings",
        }
    }
}

/// Whether streamed text arrives as deltas or as the whole text so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum StreamText {
    Delta,
    Cumulative,
    /// Decided from the first two responses: cumulative only if the second strictly extends the first.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTritonModel {
    /// The model family: `vllm`, `trtllm`, `trtllm-bls` or `embeddings`.
    pub family: TritonFamily,
    /// A built-in chat template: `llama3`, `chatml`, `mistral`, `gemma` or `plain`.
    pub template: Option<String>,
    /// A Hugging Face `chat_template` (Jinja), inline.
    pub chat_template: Option<String>,
    /// A file holding a Hugging Face `chat_template`, relative to this file.
    pub chat_template_file: Option<String>,
    /// A GGUF model file, relative to this file, whose metadata holds the Hugging Face
    /// `chat_template` and the `bos_token`/`eos_token` (only its header is read).
    pub chat_template_gguf: Option<String>,
    /// `bos_token` for templates.
    pub bos_token: Option<String>,
    /// `eos_token` for templates; also removed from the end of generated text.
    pub eos_token: Option<String>,
    /// `max_tokens` when the client gives none (default 256).
    pub max_tokens: Option<u32>,
    /// Streamed text shape (default `auto`).
    #[serde(default)]
    pub stream_text: StreamText,
    /// Strings removed from the end of generated text (default: the template's end-of-turn
    /// marker and `eos_token`).
    pub stop_strings: Option<Vec<String>>,
}
