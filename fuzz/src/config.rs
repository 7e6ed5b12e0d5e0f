//! The config loader (`config::compile`) and what `airouter envoy` makes of a plan
//! (`bootstrap::render`).
//!
//! Input: the text of an `airouter.toml`. Properties:
//! - every error names the file and a line and column inside the text;
//! - a config that compiles renders; each plugin configuration in the rendered bootstrap (the
//!   text the filter compiles inside Envoy) compiles again to the same plan, and that plan
//!   renders the same bootstrap.

use std::path::Path;

use airouter_core::api::Api;
use airouter_core::config::{compile, ConfigErrors, Credential, Plan, Sources};
use airouter_sidecar::bootstrap::{self, plugin_config};
use serde_json::Value;

const FILE: &str = "fuzz.toml";

/// Environment variables as the filter sees them: some set, some not, the same every time.
fn env(name: &str) -> Option<String> {
    (!name.len().is_multiple_of(3)).then(|| format!("value-of-{name}"))
}

fn render(plan: &Plan, text: &str) -> Value {
    bootstrap::render(bootstrap::parts(
        plan,
        text,
        bootstrap::FilterModule::Wasm(Path::new("/airouter.wasm")),
        Path::new("/ca.pem"),
    ))
}

/// Every plugin configuration (`configuration.value` of a wasm filter) in a bootstrap.
fn plugin_configs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("configuration").and_then(|c| c.get("value"))
            {
                out.push(text.clone());
            }
            map.values().for_each(|x| plugin_configs(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| plugin_configs(x, out)),
        _ => {}
    }
}

/// What a plan decides, for comparing two plans: its `Debug` form (secrets redacted, so they are
/// added) with the model resolver's hash map, printed in a random order, replaced by how it
/// resolves every configured name and a few others on every API.
fn fingerprint(plan: &Plan) -> String {
    let debug = format!("{plan:?}");
    let debug = match debug.find("resolver: ModelResolver {") {
        Some(start) => {
            let end = start + struct_len(&debug[start..]);
            format!("{}{}", &debug[..start], &debug[end..])
        }
        None => debug,
    };
    let probes = ["", "gpt-4o", "chat", "x"];
    let names = plan.models.iter().map(|m| m.name.as_str()).chain(probes);
    let resolved: Vec<String> = names
        .flat_map(|n| {
            Api::ALL.map(|api| format!("{n}/{api:?}: {:?}", plan.resolver.resolve(api, n)))
        })
        .collect();
    let secrets: Vec<&str> = plan
        .backends
        .iter()
        .filter_map(|b| match &b.credential {
            Credential::Key(s) => Some(s.expose()),
            _ => None,
        })
        .collect();
    format!("{debug}\n{resolved:?}\n{secrets:?}")
}

/// The length of the `Debug` struct at the start of `text`, up to its closing brace (braces inside
/// quoted strings skipped).
fn struct_len(text: &str) -> usize {
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (true, false, _) => {}
            (false, _, '"') => quoted = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

fn check_errors(text: &str, errs: &ConfigErrors) {
    let lines = text.split('\n').count();
    assert!(!errs.0.is_empty(), "refused without an error: {text:?}");
    for e in &errs.0 {
        assert!(
            e.file == FILE
                && (1..=lines).contains(&e.line)
                && e.column >= 1
                && !e.message.is_empty(),
            "error {e:?} does not point into the text: {text:?}"
        );
    }
}

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plan = match compile(FILE, text, &env) {
        Ok(plan) => plan,
        Err(errs) => return check_errors(text, &errs),
    };
    // What Envoy holds: the text without secrets, compiling to a plan that behaves the same.
    let Ok(cleaned) = plugin_config::sanitize(text, &Sources::env_only(&env)) else {
        // Refused only for a backend key no environment variable can carry.
        return;
    };
    let env_for_envoy = |name: &str| {
        cleaned
            .env
            .iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.expose().to_string())
            .or_else(|| env(name))
    };
    let for_envoy = compile(&plan.source, &cleaned.text, &env_for_envoy).unwrap_or_else(|e| {
        panic!(
            "the text for Envoy does not compile: {e}\n  input: {text:?}\n  cleaned: {:?}",
            cleaned.text
        )
    });
    assert!(
        plugin_config::same_behaviour(&plan, &for_envoy),
        "the text for Envoy behaves differently\n  input: {text:?}\n  cleaned: {:?}",
        cleaned.text
    );
    let rendered = render(&for_envoy, &cleaned.text);
    let mut configs = Vec::new();
    plugin_configs(&rendered, &mut configs);
    assert!(
        !configs.is_empty(),
        "the bootstrap carries no plugin configuration: {text:?}"
    );
    let want = fingerprint(&for_envoy);
    for config in configs {
        let again = compile(&plan.source, &config, &env_for_envoy)
            .unwrap_or_else(|e| panic!("the rendered configuration does not compile: {e}\n  input: {text:?}\n  rendered: {config:?}"));
        assert!(
            fingerprint(&again) == want,
            "the rendered configuration compiles to another plan\n  input: {text:?}\n  rendered: {config:?}"
        );
        assert!(
            render(&again, &config) == rendered,
            "the recompiled plan renders another bootstrap\n  input: {text:?}"
        );
    }
}
