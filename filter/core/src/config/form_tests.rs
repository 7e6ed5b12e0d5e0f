//! Errors of both configuration forms: where they point (the file's own line and the dotted
//! key) and what the configuration Envoy holds may not carry.

use super::*;

fn errors(text: &str) -> Vec<ConfigError> {
    compile("c", text, &|_| None).unwrap_err().0
}

fn in_envoy(text: &str) -> Vec<ConfigError> {
    compile_in_envoy("c", text, &|v| {
        (v == "K").then(|| "sk-from-env".to_string())
    })
    .unwrap_err()
    .0
}

const BACKEND: &str = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\n";

#[test]
fn a_toml_type_error_names_the_dotted_key_not_the_value() {
    let e = &errors("[listener]\naddress = 1\n")[0];
    assert_eq!((e.key.as_str(), e.line), ("listener.address", 2), "{e}");
    let text = format!(
        "{BACKEND}[[models]]\nname = \"x\"\napis = [\"chat\"]\ntarget = {{ backend = \"a\" }}\n\
         [[models]]\nname = \"y\"\napis = [\"chat\"]\n[models.target]\nbackend = 7\n"
    );
    let e = &errors(&text)[0];
    assert_eq!(
        (e.key.as_str(), e.line),
        ("models[1].target.backend", 12),
        "{e}"
    );
}

#[test]
fn a_json_error_points_into_the_json_file() {
    let text = "{\n  \"backends\": {\"a\": {\"kind\": \"openai\", \"url\": \"http://a\"}},\n  \"models\": [\n    {\"name\": \"m\", \"apis\": [\"chat\"],\n     \"target\": {\"backend\": \"nope\"}}\n  ]\n}\n";
    let e = &errors(text)[0];
    assert_eq!(e.key, "models[0].target.backend", "{e}");
    assert_eq!((e.line, e.column), (5, 17), "{e}");
    // A type error on one line: the key, not the value, and the JSON's own column.
    let text = r#"{"listener": {"port": 8080, "address": 1}}"#;
    let e = &errors(text)[0];
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("listener.address", 1, 29),
        "{e}"
    );
}

#[test]
fn a_json_syntax_error_has_the_json_parsers_line() {
    let e = &errors("{\n  \"listener\": {\"port\": 8080,}\n}\n")[0];
    assert_eq!(e.line, 2, "{e}");
    // An error at a line's end (serde_json's column 0) is still a column of the text.
    let e = &errors("{\"redis://r\n")[0];
    assert!(e.line >= 1 && e.column >= 1, "{e}");
}

#[test]
fn a_json_key_written_twice_is_refused_as_in_toml() {
    let e = &errors(r#"{"listener": {"port": 8080, "port": 9090}}"#)[0];
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("listener.port", 1, 29),
        "{e}"
    );
    assert!(e.message.contains("duplicate"), "{e}");
    let e = &errors("[listener]\nport = 8080\nport = 9090\n")[0];
    assert!(e.message.contains("duplicate"), "{e}");
}

#[test]
fn envoy_refuses_every_plain_secret_with_its_key() {
    let text = format!(
        "{BACKEND}api_key = \"sk-plain\"\n[backends.b]\nkind = \"openai\"\nurl = \"http://b\"\n\
         api_key_env = \"K\"\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = {{ backend = \"a\" }}\n\
         [[keys]]\nname = \"t\"\nkey = \"sk-client\"\n[[admin_keys]]\nname = \"ops\"\nkey = \"sk-admin\"\n\
         [global_limits]\nredis = \"redis://:pw@10.0.0.7:6379/0\"\n"
    );
    assert!(compile("c", &text, &|_| None).is_ok());
    let errs = in_envoy(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "backends.a.api_key",
            "keys[0].key",
            "admin_keys[0].key",
            "global_limits.redis"
        ]
    );
    for e in &errs {
        assert!(e.message.contains("/config_dump"), "{e}");
        let shown = e.to_string();
        for secret in ["sk-plain", "sk-client", "sk-admin", ":pw@"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[test]
fn envoy_takes_what_airouter_envoy_writes() {
    let digest = "0".repeat(64);
    let text = format!(
        "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\napi_key_env = \"K\"\n[[models]]\nname = \"m\"\n\
         apis = [\"chat\"]\ntarget = {{ backend = \"a\" }}\n[[keys]]\nname = \"t\"\nsha256 = \"{digest}\"\n\
         [global_limits]\nredis = \"redis://10.0.0.7:6379/0\"\n"
    );
    compile_in_envoy("c", &text, &|v| (v == "K").then(|| "sk".to_string())).unwrap();
}
