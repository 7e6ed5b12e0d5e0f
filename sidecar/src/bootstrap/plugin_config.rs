//! The filter's configuration as Envoy holds it. Envoy shows its whole configuration on the admin
//! port (`/config_dump`), so the `airouter.toml` it carries keeps only what the data plane needs,
//! with no secret in it:
//!
//! - client and admin keys written as `key = "..."` become `sha256 = "<hex digest>"` (the filter
//!   compares digests anyway);
//! - a backend's `api_key = "..."` becomes `api_key_env = "AIROUTER_BACKEND_KEY_<NAME>"`, and the
//!   value goes to Envoy through its environment ([`PluginConfig::env`]), as `api_key_env` keys
//!   always did;
//! - `[global_limits] redis` (read by the sidecar only) loses its password and query string.
//!
//! And it holds what the filter cannot look up itself (it reads no files and has no tz
//! database), through [`Sources`]:
//!
//! - a router's `*_file` keys (prompts, templates) become their inline keys holding the files'
//!   text (`prompt_file = "p.md"` becomes `prompt = "..."`);
//! - the time zones routes name get their offset changes in `[time_zones]`.
//!
//! Comments go too (they may hold anything). The plan the filter compiles from the result is the
//! operator's plan: [`same_behaviour`] checks it before anything is written.

use std::collections::BTreeSet;

use airouter_core::auth::KeyRing;
use airouter_core::config::{url, Plan, Secret, Sources};
use toml::{Table, Value};

/// The prefix of the environment variables that carry keys written in the file.
pub const ENV_PREFIX: &str = "AIROUTER_BACKEND_KEY_";

/// The configuration text for Envoy and the environment it needs (`Debug` hides the values).
#[derive(Debug)]
pub struct PluginConfig {
    /// The TOML text Envoy hands the filter: no plain key, password or comment.
    pub text: String,
    /// `(variable, value)` for every backend `api_key` written in the file, in backend order:
    /// Envoy must be started with these set.
    pub env: Vec<(String, Secret)>,
}

/// The first line of the text, for whoever reads it in a config dump.
const HEADER: &str = "# Rendered by `airouter envoy`: client keys as SHA-256 digests, backend keys from the environment.\n";

/// Rewrites `text` (already compiled without errors, its files and zones looked up through
/// `sources`) for Envoy. Fails on a backend key that no environment can carry (a line break or
/// NUL in it), and on a file or zone that can no longer be looked up (naming its key).
pub fn sanitize(text: &str, sources: &Sources) -> Result<PluginConfig, String> {
    // The JSON form compiles as the TOML it maps to; Envoy gets that TOML either way.
    let text = airouter_core::config::json::toml_text(text)?;
    let mut doc: Table = toml::from_str(&text).map_err(|e| e.message().to_string())?;
    inline_router_files(&mut doc, sources)?;
    for section in ["keys", "admin_keys"] {
        let entries = doc.get_mut(section).and_then(Value::as_array_mut);
        for entry in entries
            .into_iter()
            .flatten()
            .filter_map(Value::as_table_mut)
        {
            if let Some(Value::String(plain)) = entry.remove("key") {
                entry.insert("sha256".into(), Value::String(hex(&KeyRing::hash(&plain))));
            }
        }
    }
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let backends = doc.get("backends").and_then(Value::as_table);
    for b in backends.into_iter().flat_map(Table::values) {
        if let Some(var) = b.get("api_key_env").and_then(Value::as_str) {
            taken.insert(var.to_string());
        }
    }
    if let Some(var) = doc
        .get("sidecar")
        .and_then(|s| s.get("secret_env"))
        .and_then(Value::as_str)
    {
        taken.insert(var.to_string());
    }
    let mut env = Vec::new();
    let backends = doc.get_mut("backends").and_then(Value::as_table_mut);
    for (name, b) in backends.into_iter().flat_map(|t| t.iter_mut()) {
        let Some(b) = b.as_table_mut() else { continue };
        let Some(Value::String(key)) = b.remove("api_key") else {
            continue;
        };
        if key.contains(['\n', '\r', '\0']) {
            return Err(format!(
                "backends.{name}.api_key: a key with a line break or NUL cannot be passed to Envoy"
            ));
        }
        let var = env_name(name, &taken);
        taken.insert(var.clone());
        b.insert("api_key_env".into(), Value::String(var.clone()));
        env.push((var, Secret::new(key)));
    }
    if let Some(Value::String(redis)) = doc
        .get_mut("global_limits")
        .and_then(Value::as_table_mut)
        .and_then(|g| g.get_mut("redis"))
    {
        *redis = url::redact(redis).into_owned();
    }
    let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(PluginConfig {
        text: format!("{HEADER}{body}"),
        env,
    })
}

/// The `*_file` keys of the routers of `doc`, with the table each is in and its path there.
const FILE_KEYS: [(&str, &str); 5] = [
    ("classifier", "prompt_file"),
    ("classifier", "template_file"),
    ("route", "system_prompt_file"),
    ("enrich", "prompt_file"),
    ("enrich", "template_file"),
];

/// Replaces each router's `*_file` keys by their inline forms holding the files' text, and
/// writes the rules of every time zone a route names into `[time_zones]` (keeping entries the
/// file gave itself).
fn inline_router_files(doc: &mut Table, sources: &Sources) -> Result<(), String> {
    let mut zones: Vec<String> = Vec::new();
    let routers = doc.get_mut("routers").and_then(Value::as_array_mut);
    for (i, router) in routers.into_iter().flatten().enumerate() {
        let Some(router) = router.as_table_mut() else {
            continue;
        };
        if let Some(c) = router.get_mut("classifier").and_then(Value::as_table_mut) {
            inline_files(
                c,
                &format!("routers[{i}].classifier"),
                "classifier",
                sources,
            )?;
        }
        let routes = router.get_mut("routes").and_then(Value::as_array_mut);
        for (j, route) in routes.into_iter().flatten().enumerate() {
            let Some(route) = route.as_table_mut() else {
                continue;
            };
            let at = format!("routers[{i}].routes[{j}]");
            inline_files(route, &at, "route", sources)?;
            if let Some(e) = route.get_mut("enrich").and_then(Value::as_table_mut) {
                inline_files(e, &format!("{at}.enrich"), "enrich", sources)?;
            }
            if let Some(zone) = route.get("time_zone").and_then(Value::as_str) {
                if !zones.iter().any(|z| z == zone) {
                    zones.push(zone.to_string());
                }
            }
        }
    }
    if zones.is_empty() {
        return Ok(());
    }
    let rules = doc
        .entry("time_zones")
        .or_insert_with(|| Value::Table(Table::new()));
    let Some(rules) = rules.as_table_mut() else {
        return Err("time_zones: must be a table".into());
    };
    for zone in zones {
        if rules.contains_key(&zone) {
            continue;
        }
        let changes = (sources.time_zone)(&zone)
            .ok_or_else(|| format!("time zone `{zone}`: unknown to the tz database"))?;
        let list = changes
            .into_iter()
            .map(|t| {
                Value::Array(vec![
                    Value::Integer(t.at),
                    Value::Integer(i64::from(t.offset)),
                    Value::String(t.abbreviation),
                ])
            })
            .collect();
        rules.insert(zone, Value::Array(list));
    }
    Ok(())
}

/// Replaces the `*_file` keys of `table` (a router's `kind` of table, at `at`) by their inline
/// forms.
fn inline_files(table: &mut Table, at: &str, kind: &str, sources: &Sources) -> Result<(), String> {
    for (_, key) in FILE_KEYS.iter().filter(|(k, _)| *k == kind) {
        let Some(Value::String(path)) = table.remove(*key) else {
            continue;
        };
        let text = (sources.read_file)(&path)
            .map_err(|why| format!("{at}.{key}: cannot read `{path}`: {why}"))?;
        let inline = key.trim_end_matches("_file");
        table.insert(inline.to_string(), Value::String(text));
    }
    Ok(())
}

/// `AIROUTER_BACKEND_KEY_<NAME>`: the backend's name in capitals, other characters as `_`,
/// suffixed `_2`, `_3`, ... when another variable of the file already has that name.
fn env_name(backend: &str, taken: &BTreeSet<String>) -> String {
    let base: String = ENV_PREFIX
        .chars()
        .chain(backend.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }))
        .collect();
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two plans route, authenticate, limit and credential requests alike: everything but
/// where a backend key comes from and the Redis URL (which the filter never reads).
pub fn same_behaviour(a: &Plan, b: &Plan) -> bool {
    let backends = a.backends.len() == b.backends.len()
        && a.backends.iter().zip(&b.backends).all(|(x, y)| {
            x.name == y.name
                && x.kind == y.kind
                && x.url == y.url
                && x.credential == y.credential
                && (x.connect_timeout_ms, x.timeout_ms, x.idle_timeout_ms)
                    == (y.connect_timeout_ms, y.timeout_ms, y.idle_timeout_ms)
                && format!("{:?}{:?}", x.rate_limit, x.health_check)
                    == format!("{:?}{:?}", y.rate_limit, y.health_check)
        });
    let limits = |p: &Plan| {
        p.global_limits
            .as_ref()
            .map(|g| (g.fail_open, g.timeout_ms, g.default_max_tokens))
    };
    // The resolver is built from the models (and its maps print in random order).
    let dump = |p: &Plan| {
        format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            p.listener,
            p.admin,
            p.models,
            p.keys,
            p.admin_keys,
            p.sidecar,
            p.session_log,
            p.metric_names,
            p.discovery
        )
    };
    backends && limits(a) == limits(b) && dump(a) == dump(b) && a.routers == b.routers
}

#[cfg(test)]
mod tests {
    use super::*;
    use airouter_core::config::{compile, Credential};

    const WITH_SECRETS: &str = r#"
# old key: sk-in-a-comment
[listener]
port = 8080

[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key = "sk-backend-secret"

[backends.other-one]
kind = "openai"
url = "http://127.0.0.1:8001/v1"
api_key = "sk-other-secret"

[backends.env]
kind = "openai"
url = "http://127.0.0.1:8002/v1"
api_key_env = "AIROUTER_BACKEND_KEY_HOSTED"

[[models]]
name = "chat"
apis = ["chat"]
targets = [{ backend = "hosted", model = "x" }, { backend = "other-one" }]

[[keys]]
name = "dev"
key = "sk-client-secret"
models = ["chat"]

[[admin_keys]]
name = "ops"
key = "sk-admin-secret"

[global_limits]
redis = "redis://:redis-secret@10.0.0.7:6379/0"
"#;

    fn env(name: &str) -> Option<String> {
        (name == "AIROUTER_BACKEND_KEY_HOSTED").then(|| "sk-from-env".into())
    }

    fn no_files() -> Sources<'static> {
        Sources::env_only(&|_| None)
    }

    #[test]
    fn the_text_holds_no_secret_and_compiles_to_the_same_plan() {
        let original = compile("a.toml", WITH_SECRETS, &env).unwrap();
        let p = sanitize(WITH_SECRETS, &no_files()).unwrap();
        for secret in [
            "sk-in-a-comment",
            "sk-backend-secret",
            "sk-other-secret",
            "sk-client-secret",
            "sk-admin-secret",
            "redis-secret",
        ] {
            assert!(!p.text.contains(secret), "{secret} in\n{}", p.text);
        }
        let vars: Vec<(&str, &str)> = p
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        // `hosted`'s natural name is taken by another backend's api_key_env.
        assert_eq!(
            vars,
            [
                ("AIROUTER_BACKEND_KEY_HOSTED_2", "sk-backend-secret"),
                ("AIROUTER_BACKEND_KEY_OTHER_ONE", "sk-other-secret"),
            ]
        );
        let lookup = |name: &str| {
            p.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.expose().to_string())
                .or_else(|| env(name))
        };
        let rendered = compile("a.toml", &p.text, &lookup).unwrap();
        assert!(same_behaviour(&original, &rendered));
        assert!(rendered.keys.position("sk-client-secret").is_some());
        assert!(rendered.admin_keys.position("sk-admin-secret").is_some());
        let hosted = rendered
            .backends
            .iter()
            .find(|b| b.name == "hosted")
            .unwrap();
        assert_eq!(
            hosted.credential,
            Credential::Key(Secret::new("sk-backend-secret".into()))
        );
        assert!(rendered.missing_env.is_empty());
    }

    #[test]
    fn a_different_plan_is_noticed() {
        let a = compile("a.toml", WITH_SECRETS, &env).unwrap();
        let b = compile("a.toml", WITH_SECRETS, &|_| None).unwrap();
        assert!(!same_behaviour(&a, &b), "a backend key differs");
        let c = compile(
            "a.toml",
            &WITH_SECRETS.replace("sk-client-secret", "sk-other"),
            &env,
        )
        .unwrap();
        assert!(!same_behaviour(&a, &c), "a client key differs");
    }

    #[test]
    fn a_file_without_secrets_keeps_its_meaning() {
        // Its router's prompt files are read beside it and its time zone looked up, as
        // `airouter envoy` does; the filter compiles what is rendered from its text alone.
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/airouter.toml");
        let files = crate::config_files::ConfigFiles::beside(example);
        let read = |path: &str| files.read(path);
        let sources = Sources {
            env: &|_| None,
            read_file: &read,
            time_zone: &crate::config_files::zone_transitions,
            plain_secrets: true,
        };
        let text = include_str!("../../../examples/airouter.toml");
        let p = sanitize(text, &sources).unwrap();
        assert!(p.env.is_empty());
        let a = airouter_core::config::compile_with("e.toml", text, &sources).unwrap();
        let b = compile("e.toml", &p.text, &|_| None).unwrap();
        assert!(same_behaviour(&a, &b));
    }

    const WITH_ROUTER: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"

[[models]]
name = "chat"
apis = ["chat", "responses"]
target = { backend = "local", model = "qwen3" }

[[routers]]
name = "ai-router"
default_route = "simple"
classifier = { model = "chat", prompt_file = "prompts/classify.md" }

[[routers.routes]]
label = "simple"
model = "chat"
system_prompt_file = "prompts/simple.md"
time_zone = "Europe/Berlin"

[[routers.routes]]
label = "enrich"
model = "chat"
enrich = { model = "chat", template_file = "prompts/enrich.md" }
"#;

    fn read(path: &str) -> Result<String, String> {
        match path {
            "prompts/classify.md" => Ok("Labels: {{labels}}.\nAnswer with one.".into()),
            "prompts/simple.md" => Ok("It is {{datetime}}. Be \"brief\".".into()),
            "prompts/enrich.md" => Ok("Search said:\n{{answer}}".into()),
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }

    #[test]
    fn router_files_and_zones_are_inlined_for_the_filter() {
        let none = |_: &str| None;
        let sources = Sources {
            env: &none,
            read_file: &read,
            time_zone: &crate::config_files::zone_transitions,
            plain_secrets: true,
        };
        let original =
            airouter_core::config::compile_with("a.toml", WITH_ROUTER, &sources).unwrap();
        let p = sanitize(WITH_ROUTER, &sources).unwrap();
        assert!(!p.text.contains("_file"), "{}", p.text);
        assert!(p.text.contains("[time_zones]"), "{}", p.text);
        // The filter reads no files and has no tz database: the text alone is the plan.
        let for_envoy = compile("a.toml", &p.text, &none).unwrap();
        assert!(same_behaviour(&original, &for_envoy));
        assert_eq!(
            for_envoy.routers[0].routes[0]
                .transforms
                .system_text(1_743_296_400_000)
                .unwrap(),
            "It is Sunday, 2025-03-30 03:00 CEST (Europe/Berlin, UTC+02:00). Be \"brief\"."
        );
        // A file gone by the time the configuration is rendered is named with its key.
        let gone = |path: &str| {
            if path == "prompts/enrich.md" {
                Err("gone".to_string())
            } else {
                read(path)
            }
        };
        let sources = Sources {
            read_file: &gone,
            ..sources
        };
        let err = sanitize(WITH_ROUTER, &sources).unwrap_err();
        assert_eq!(
            err,
            "routers[0].routes[1].enrich.template_file: cannot read `prompts/enrich.md`: gone"
        );
    }

    #[test]
    fn keys_no_environment_can_carry_are_refused() {
        let text = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\napi_key = \"x\\ny\"\n";
        assert!(sanitize(text, &no_files())
            .unwrap_err()
            .contains("backends.a.api_key"));
    }
}
