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
        eos_stops: true,
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

#[test]
fn a_gguf_files_template_and_eos_token_are_used() {
    let dir = std::env::temp_dir().join(format!("airouter-gguf-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/chat.gguf"), gguf::tests::chatml_file()).unwrap();
    let t = ChatTemplate::load(
        &model(TemplateSource::Gguf("models/chat.gguf".into())),
        &dir,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        t.render(&[msg("user", "Hi")]).unwrap(),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(t.eos_token(), "<|im_end|>");
    // The file's eos_token ends generated text unless stop_strings are configured.
    let toml = |extra: &str| {
        format!("[backends.t]\nkind = \"triton\"\nurl = \"grpc://t:1\"\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = {{ backend = \"t\", model = \"x\" }}\ntriton = {{ family = \"vllm\", chat_template_gguf = \"models/chat.gguf\"{extra} }}\n")
    };
    for (extra, stops) in [
        ("", vec!["<|im_end|>"]),
        (", eos_token = \"END\"", vec!["END"]),
        (", stop_strings = [\"###\"]", vec!["###"]),
    ] {
        let mut plan = airouter_core::config::compile("a.toml", &toml(extra), &|_| None).unwrap();
        let templates = crate::serve::compile_templates(&plan, &dir).unwrap();
        crate::serve::add_eos_stops(&mut plan, &templates);
        let t = plan.models[0].triton.as_ref().unwrap();
        assert_eq!(t.stop_strings, stops, "{extra}");
    }
    let missing = ChatTemplate::load(
        &model(TemplateSource::Gguf("models/none.gguf".into())),
        &dir,
    );
    assert!(missing.err().unwrap().contains("models/none.gguf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn block_tags_on_their_own_lines_leave_no_whitespace_as_in_hugging_face() {
    // Rendered by Jinja2 with transformers' settings (trim_blocks, lstrip_blocks).
    let hf = "{% for m in messages %}\n    {% if m.role == \"user\" %}\n<|user|>{{ m.content }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}\n<|assistant|>\n{% endif %}";
    let t = ChatTemplate::load(&model(TemplateSource::Inline(hf.into())), Path::new("."))
        .unwrap()
        .unwrap();
    assert_eq!(
        t.render(&[msg("user", "Hi")]).unwrap(),
        "<|user|>Hi\n<|assistant|>\n"
    );
}
