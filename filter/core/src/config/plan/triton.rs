//! A Triton model's settings as compiled (`models[].triton`): the family, the chat template and
//! the text to strip. Read only by the sidecar, which drives Triton; the filter never looks.

use crate::config::{StreamText, TritonFamily};

/// Where a Triton model's chat template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// No template: legacy completions only.
    None,
    /// One of [`BUILTIN_TEMPLATES`].
    Builtin(String),
    /// A Hugging Face `chat_template`, inline.
    Inline(String),
    /// A file holding one, as written in the config (relative to the config file).
    File(String),
    /// A GGUF model file whose metadata holds one (`tokenizer.chat_template`) and the special
    /// tokens, as written in the config (relative to the config file).
    Gguf(String),
}

/// Built-in chat templates and the end-of-turn strings their models emit.
pub const BUILTIN_TEMPLATES: [(&str, &[&str]); 5] = [
    ("llama3", &["<|eot_id|>", "<|end_of_text|>"]),
    ("chatml", &["<|im_end|>"]),
    ("mistral", &["</s>"]),
    ("gemma", &["<end_of_turn>"]),
    ("plain", &[]),
];

/// A Triton model's settings, checked.
#[derive(Debug, Clone)]
pub struct TritonModel {
    pub family: TritonFamily,
    pub template: TemplateSource,
    pub bos_token: String,
    pub eos_token: String,
    pub max_tokens: u32,
    pub stream_text: StreamText,
    /// Strings removed from the end of generated text.
    pub stop_strings: Vec<String>,
    /// `stop_strings` was not configured, so the template's `eos_token` is one too: for a GGUF
    /// template it is known only once the sidecar has read the file.
    pub eos_stops: bool,
}
