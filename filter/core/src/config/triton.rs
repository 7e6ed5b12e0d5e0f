//! `models[].triton` checked: the family fits the model's APIs, one template source (a built-in,
//! an inline Hugging Face template, a file, or a GGUF model file's metadata), a template for chat,
//! and the stop strings (the built-in template's end-of-turn markers and `eos_token` unless
//! given; a GGUF file's `eos_token` joins them when the sidecar reads it). Used only by the
//! sidecar, which drives Triton; the filter routes such models to the sidecar and reads none of it.

use std::ops::Range;

use super::error::{ConfigError, Locator};
use super::raw::RawTritonModel;
use super::{TemplateSource, TritonFamily, TritonModel, BUILTIN_TEMPLATES};
use crate::api::{Api, ApiSet};

/// Checks model `i`'s `triton` table (at `span`) for a model serving `apis`, pushing what is
/// wrong to `errs`.
pub(super) fn compile_triton(
    loc: &Locator,
    i: usize,
    t: &RawTritonModel,
    span: Range<usize>,
    apis: ApiSet,
    errs: &mut Vec<ConfigError>,
) -> Option<TritonModel> {
    let key = format!("models[{i}].triton");
    let mut fail = |msg: String| errs.push(loc.error(span.clone(), key.clone(), msg));
    let llm_apis: ApiSet = [Api::Chat, Api::Completions].into_iter().collect();
    let fits = match t.family {
        TritonFamily::Embeddings => apis.iter().all(|a| a == Api::Embeddings),
        _ => apis.iter().all(|a| llm_apis.contains(a)),
    };
    if !fits {
        fail(
            "this family serves only `embeddings`; LLM families serve `chat` and `completions`"
                .into(),
        );
        return None;
    }
    let sources = [
        t.template.is_some(),
        t.chat_template.is_some(),
        t.chat_template_file.is_some(),
        t.chat_template_gguf.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        fail(
            "choose one of template, chat_template, chat_template_file and chat_template_gguf"
                .into(),
        );
        return None;
    }
    let template = if let Some(name) = &t.template {
        match BUILTIN_TEMPLATES.iter().find(|(n, _)| n == name) {
            Some(_) => TemplateSource::Builtin(name.clone()),
            None => {
                let known: Vec<&str> = BUILTIN_TEMPLATES.iter().map(|(n, _)| *n).collect();
                fail(format!(
                    "unknown template `{name}` (built in: {})",
                    known.join(", ")
                ));
                return None;
            }
        }
    } else if let Some(inline) = &t.chat_template {
        TemplateSource::Inline(inline.clone())
    } else if let Some(file) = &t.chat_template_file {
        TemplateSource::File(file.clone())
    } else if let Some(file) = &t.chat_template_gguf {
        TemplateSource::Gguf(file.clone())
    } else {
        TemplateSource::None
    };
    if apis.contains(Api::Chat) && template == TemplateSource::None {
        fail(
            "a chat model needs template, chat_template, chat_template_file or chat_template_gguf"
                .into(),
        );
        return None;
    }
    if t.max_tokens == Some(0) {
        fail("max_tokens must be above 0".into());
        return None;
    }
    let eos_token = t.eos_token.clone().unwrap_or_default();
    let stop_strings = match &t.stop_strings {
        Some(list) => list.clone(),
        None => {
            let mut list: Vec<String> = match &template {
                TemplateSource::Builtin(name) => BUILTIN_TEMPLATES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, stops)| stops.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            if !eos_token.is_empty() && !list.contains(&eos_token) {
                list.push(eos_token.clone());
            }
            list
        }
    };
    Some(TritonModel {
        family: t.family,
        template,
        bos_token: t.bos_token.clone().unwrap_or_default(),
        eos_token,
        max_tokens: t.max_tokens.unwrap_or(256),
        stream_text: t.stream_text,
        stop_strings: stop_strings.into_iter().filter(|s| !s.is_empty()).collect(),
        eos_stops: t.stop_strings.is_none(),
    })
}
