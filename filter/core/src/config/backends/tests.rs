//! `kind = "anthropic"` backends: defaults, their table, and what they may serve.

use crate::config::{compile, BackendKind, ConfigError, Plan};

fn load(text: &str) -> Result<Plan, ConfigError> {
    compile("airouter.toml", text, &|_| None).map_err(|mut e| e.0.remove(0))
}

const BASE: &str = r#"
[backends.claude]
kind = "anthropic"
url = "https://api.anthropic.com/v1"
api_key = "sk-ant-test"
"#;

#[test]
fn an_anthropic_backend_gets_the_defaults() {
    let plan = load(&format!(
        "{BASE}\n[[models]]\nname = \"c\"\napis = [\"chat\"]\ntarget = {{ backend = \"claude\", model = \"claude-x\" }}\n"
    ))
    .unwrap();
    let b = &plan.backends[0];
    assert_eq!(b.kind, BackendKind::Anthropic);
    let a = b.anthropic.as_ref().unwrap();
    assert_eq!(
        (a.version.as_str(), a.default_max_tokens, a.drop_unsupported),
        ("2023-06-01", 4096, false)
    );
}

#[test]
fn its_table_is_read_and_checked() {
    let text = format!(
        "{BASE}[backends.claude.anthropic]\nversion = \"2024-01-01\"\ndefault_max_tokens = 100\nunsupported_parameters = \"drop\"\n"
    );
    let plan = load(&text).unwrap();
    let a = plan.backends[0].anthropic.clone().unwrap();
    assert_eq!(
        (a.version.as_str(), a.default_max_tokens, a.drop_unsupported),
        ("2024-01-01", 100, true)
    );
    let e = load(&format!(
        "{BASE}[backends.claude.anthropic]\ndefault_max_tokens = 0\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "backends.claude.anthropic.default_max_tokens");
    let e = load(&format!(
        "{BASE}[backends.claude.anthropic]\nversion = \"a b\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "backends.claude.anthropic.version");
    let e = load(&format!(
        "{BASE}[backends.claude.anthropic]\nunsupported_parameters = \"ignore\"\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("unknown variant"), "{e}");
}

#[test]
fn only_anthropic_backends_take_the_table_and_they_serve_only_chat() {
    let e =
        load("[backends.o]\nkind = \"openai\"\nurl = \"http://x/v1\"\n[backends.o.anthropic]\n")
            .unwrap_err();
    assert_eq!((e.key.as_str(), e.line), ("backends.o.anthropic", 4));
    let e = load(&format!(
        "{BASE}\n[[models]]\nname = \"c\"\napis = [\"chat\", \"embeddings\"]\ntarget = {{ backend = \"claude\" }}\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "models[0].apis");
    assert!(e.message.contains("only `chat`"), "{e}");
    let e = load("[backends.c]\nkind = \"anthropic\"\nurl = \"grpc://x:1\"\n").unwrap_err();
    assert_eq!(e.key, "backends.c.url");
}
