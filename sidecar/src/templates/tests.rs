//! Golden renders of every built-in template, and load-time refusal of broken templates.

use super::*;
use airouter_core::config::{StreamText, TritonFamily};

fn model(template: TemplateSource) -> TritonModel {
    TritonModel {
        family: TritonFamily::Vllm,
        template,
        bos_token: String::new(),
        eos_token: String::new(),
        max_tokens: 16,
        stream_text: StreamText::Auto,
        stop_strings: vec![],
    }
}

fn conversation() -> Vec<Message> {
    vec![
        msg("system", "You are terse."),
        msg("user", "Hi there"),
        msg("assistant", "Hello."),
        msg("user", "Count dots"),
    ]
}

#[test]
fn builtin_templates_render_their_golden_prompts() {
    for name in ["llama3", "chatml", "mistral", "gemma", "plain"] {
        let t = ChatTemplate::load(&model(TemplateSource::Builtin(name.into())), Path::new("."))
            .unwrap()
            .unwrap();
        let got = t.render(&conversation()).unwrap();
        crate::golden::check(&format!("templates/{name}.txt"), &got);
    }
}

#[test]
fn hugging_face_templates_work_with_python_methods() {
    let hf = "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'].strip() + eos_token }}{% elif message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + eos_token }}{% else %}{{ '<|assistant|>\\n' + message['content'] + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
    let mut m = model(TemplateSource::Inline(hf.into()));
    m.eos_token = "</s>".into();
    let t = ChatTemplate::load(&m, Path::new(".")).unwrap().unwrap();
    assert_eq!(
        t.render(&[msg("user", "  hi  ")]).unwrap(),
        "<|user|>\nhi</s><|assistant|>"
    );
}

#[test]
fn raise_exception_becomes_a_render_error_with_its_message() {
    let t = ChatTemplate::load(
        &model(TemplateSource::Builtin("mistral".into())),
        Path::new("."),
    )
    .unwrap()
    .unwrap();
    let err = t.render(&[msg("tool", "x")]).unwrap_err();
    assert!(
        err.0.contains("the mistral template has no role tool"),
        "{}",
        err.0
    );
}

#[test]
fn broken_templates_are_refused_at_load() {
    let syntax = ChatTemplate::load(
        &model(TemplateSource::Inline("{% for m in messages %}".into())),
        Path::new("."),
    );
    assert!(syntax.err().unwrap().contains("does not compile"));
    let drops = ChatTemplate::load(
        &model(TemplateSource::Inline("static".into())),
        Path::new("."),
    );
    assert!(drops.err().unwrap().contains("drops the user's message"));
    let missing = ChatTemplate::load(
        &model(TemplateSource::File("no/such/file.jinja".into())),
        Path::new("/tmp"),
    );
    assert!(missing.err().unwrap().contains("no/such/file.jinja"));
}
