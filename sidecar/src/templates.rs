//! Prompt formatting: chat messages rendered into one prompt string with a Jinja chat template
//! (minijinja), as Hugging Face tokenizers do. Built-in templates for common model families, or any
//! `chat_template` from a model's `tokenizer_config.json`, inline or from a file, or the one a GGUF
//! model file carries in its metadata ([`gguf`]).

pub mod gguf;

use std::path::Path;

use airouter_core::config::{TemplateSource, TritonModel};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde::Serialize;

/// One message as templates see it: the role and the text content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Built-in templates, written for this project from the models' published prompt formats.
fn builtin(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    // (template, default bos_token, default eos_token)
    Some(match name {
        "llama3" => (
            "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
            "<|begin_of_text|>",
            "<|eot_id|>",
        ),
        "chatml" => (
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
            "",
            "<|im_end|>",
        ),
        "mistral" => (
            "{{ bos_token }}{% set ns = namespace(system='') %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.system = ns.system ~ m.content ~ '\n\n' %}{% elif m.role == 'user' %}[INST] {{ ns.system }}{{ m.content }} [/INST]{% set ns.system = '' %}{% elif m.role == 'assistant' %}{{ m.content }}{{ eos_token }}{% else %}{{ raise_exception('the mistral template has no role ' ~ m.role) }}{% endif %}{% endfor %}",
            "<s>",
            "</s>",
        ),
        "gemma" => (
            "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}\n{{ m.content | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
            "<bos>",
            "<end_of_turn>",
        ),
        "plain" => (
            "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
            "",
            "",
        ),
        _ => return None,
    })
}

/// A compiled chat template with its special tokens.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// Why a conversation could not be rendered; the template's own `raise_exception` message when
/// it raised one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError(pub String);

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    /// Compiles the model's template (reading a file relative to `config_dir`), then renders
    /// sample conversations so a broken template is refused at start-up, not at the first request.
    pub fn load(model: &TritonModel, config_dir: &Path) -> Result<Option<ChatTemplate>, String> {
        let (source, bos, eos) = match &model.template {
            TemplateSource::None => return Ok(None),
            TemplateSource::Builtin(name) => {
                let (t, b, e) =
                    builtin(name).ok_or_else(|| format!("unknown built-in template `{name}`"))?;
                (t.to_string(), b.to_string(), e.to_string())
            }
            TemplateSource::Inline(text) => (text.clone(), String::new(), String::new()),
            TemplateSource::File(file) => {
                let path = config_dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (text, String::new(), String::new())
            }
            TemplateSource::Gguf(file) => {
                let chat = gguf::read(&config_dir.join(file))?;
                let (bos, eos) = (chat.bos_token, chat.eos_token);
                (
                    chat.chat_template,
                    bos.unwrap_or_default(),
                    eos.unwrap_or_default(),
                )
            }
        };
        let pick = |configured: &str, default: String| {
            if configured.is_empty() {
                default
            } else {
                configured.to_string()
            }
        };
        let mut env = Environment::new();
        // As Hugging Face renders chat templates (transformers' `apply_chat_template`, and
        // llama.cpp's Jinja formatter): a block tag's own line leaves no blank line behind.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source)
            .map_err(|e| format!("chat template does not compile: {e}"))?;
        let template = ChatTemplate {
            env,
            bos_token: pick(&model.bos_token, bos),
            eos_token: pick(&model.eos_token, eos),
        };
        template.check()?;
        Ok(Some(template))
    }

    fn check(&self) -> Result<(), String> {
        let probe = "airouter template probe";
        let samples = [
            vec![msg("user", probe)],
            vec![msg("system", "Be brief."), msg("user", probe)],
            vec![
                msg("user", "Hi"),
                msg("assistant", "Hello."),
                msg("user", probe),
            ],
        ];
        for (i, sample) in samples.iter().enumerate() {
            match self.render(sample) {
                Ok(text) if text.contains(probe) => {}
                Ok(_) => {
                    return Err(format!(
                        "chat template drops the user's message (sample conversation {})",
                        i + 1
                    ))
                }
                // A template may refuse some shapes (e.g. no system role); the plain one must work.
                Err(e) if i > 0 => {
                    tracing::debug!("chat template refuses sample {}: {}", i + 1, e.0)
                }
                Err(e) => {
                    return Err(format!(
                        "chat template fails on a one-message conversation: {}",
                        e.0
                    ))
                }
            }
        }
        Ok(())
    }

    /// The `eos_token` templates see: the configured one, else the template source's.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation into the prompt, with the generation prompt added.
    pub fn render(&self, messages: &[Message]) -> Result<String, RenderError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| RenderError(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            add_generation_prompt => true,
        })
        .map_err(|e| {
            let detail = if e.kind() == ErrorKind::InvalidOperation {
                e.detail()
                    .unwrap_or("the chat template refused this conversation")
                    .to_string()
            } else {
                e.to_string()
            };
            RenderError(detail)
        })
    }
}

fn msg(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
    }
}

#[cfg(test)]
mod tests;
