//! Loading `airouter.toml`: good files compile; every kind of mistake names file, line and key.

use super::*;
use crate::api::Api;
use crate::resolve::How;

fn env(name: &str) -> Option<String> {
    (name == "PROVIDER_KEY").then(|| "sk-from-env".to_string())
}

fn load(text: &str) -> Result<Plan, ConfigErrors> {
    compile("airouter.toml", text, &env)
}

fn first_error(text: &str) -> ConfigError {
    load(text).unwrap_err().0.remove(0)
}

const GOOD: &str = r#"
[listener]
port = 8080

[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"

[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "PROVIDER_KEY"

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = { backend = "local", model = "qwen2" }
default = true

[[models]]
name = "gpt-4*"
apis = ["chat"]
target = { backend = "hosted" }

[[models]]
name = "gpt-4o-mini"
apis = ["chat"]
target = { backend = "hosted", model = "gpt-4o-mini-2024-07-18" }

[[models]]
name = "chat"
apis = ["embeddings"]
target = { backend = "local", model = "bge" }

[[keys]]
name = "dev"
key = "sk-dev"
models = ["chat", "gpt-*"]
"#;

#[test]
fn a_good_file_compiles_to_a_plan() {
    let plan = load(GOOD).unwrap();
    assert_eq!(plan.backends.len(), 2);
    assert_eq!(plan.models.len(), 4);
    let hosted = plan.backends.iter().find(|b| b.name == "hosted").unwrap();
    assert_eq!(
        hosted.credential,
        Credential::Key(Secret("sk-from-env".into()))
    );
    assert!(hosted.url.tls);
    assert!(plan.missing_env.is_empty());
    assert_eq!(plan.listener.max_body_bytes, 32 * 1024 * 1024);
}

#[test]
fn resolution_prefers_exact_then_specific_patterns_then_default() {
    let plan = load(GOOD).unwrap();
    let t = plan.resolve(Api::Chat, "gpt-4o-mini").unwrap();
    assert_eq!(
        (t.how, t.backend_model.as_str()),
        (How::Exact, "gpt-4o-mini-2024-07-18")
    );
    let t = plan.resolve(Api::Chat, "gpt-4-turbo").unwrap();
    assert_eq!(
        (t.how, t.backend_model.as_str(), t.client_name.as_str()),
        (How::Pattern, "gpt-4-turbo", "gpt-4-turbo")
    );
    let t = plan.resolve(Api::Chat, "nope").unwrap();
    assert_eq!(
        (t.how, t.client_name.as_str(), t.backend_model.as_str()),
        (How::Default, "chat", "qwen2")
    );
    let t = plan.resolve(Api::Embeddings, "chat").unwrap();
    assert_eq!(t.backend_model, "bge");
    assert!(plan.resolve(Api::Embeddings, "nope").is_none());
    assert!(plan.resolve(Api::AudioSpeech, "chat").is_none());
}

#[test]
fn most_specific_pattern_wins_whatever_the_order() {
    let text = r#"
[backends.a]
kind = "openai"
url = "http://a"
[backends.b]
kind = "openai"
url = "http://b"
[[models]]
name = "*"
apis = ["chat"]
target = { backend = "a" }
[[models]]
name = "gpt-*"
apis = ["chat"]
target = { backend = "a" }
[[models]]
name = "gpt-4*"
apis = ["chat"]
target = { backend = "b" }
"#;
    let plan = load(text).unwrap();
    assert_eq!(plan.resolve(Api::Chat, "gpt-4o").unwrap().backend.name, "b");
    assert_eq!(
        plan.resolve(Api::Chat, "gpt-3").unwrap().model.name,
        "gpt-*"
    );
    assert_eq!(plan.resolve(Api::Chat, "llama").unwrap().model.name, "*");
}

#[test]
fn unknown_keys_are_refused_with_line_and_key() {
    let e = first_error("[listener]\nport = 8080\nprot = 1\n");
    assert_eq!((e.file.as_str(), e.line), ("airouter.toml", 3));
    assert_eq!(e.key, "listener.prot");
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn dangling_backend_is_refused() {
    let e = first_error(
        "[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"ghost\" }\n",
    );
    assert_eq!((e.line, e.key.as_str()), (4, "models[0].target.backend"));
    assert!(e.message.contains("ghost"));
}

#[test]
fn two_defaults_for_one_api_are_refused() {
    let text = r#"
[backends.a]
kind = "openai"
url = "http://a"
[[models]]
name = "m1"
apis = ["chat"]
target = { backend = "a" }
default = true
[[models]]
name = "m2"
apis = ["completions", "chat"]
target = { backend = "a" }
default = true
"#;
    let e = first_error(text);
    assert_eq!((e.line, e.key.as_str()), (14, "models[1].default"));
    assert!(
        e.message
            .contains("`chat` already has a default model, `m1`"),
        "{e}"
    );
}

#[test]
fn bad_patterns_and_values_are_refused() {
    let base = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\n";
    let cases = [
        ("[[models]]\nname = \"gpt-[45]\"\napis = [\"chat\"]\ntarget = { backend = \"a\" }\n", "models[0].name", 5),
        ("[[models]]\nname = \"m\"\napis = [\"chatt\"]\ntarget = { backend = \"a\" }\n", "models[0].apis", 6),
        ("[[models]]\nname = \"m\"\napis = []\ntarget = { backend = \"a\" }\n", "models[0].apis", 6),
        ("[[models]]\nname = \"m*\"\napis = [\"chat\"]\ntarget = { backend = \"a\" }\ndefault = true\n", "models[0].default", 8),
        ("[[keys]]\nname = \"k\"\nkey = \"x\"\nmodels = [\"{a,b}\"]\n", "keys[0].models[0]", 7),
        ("[[keys]]\nname = \"k\"\nsha256 = \"abc\"\n", "keys[0].sha256", 6),
        ("[[keys]]\nname = \"k\"\n", "keys[0].key", 5),
        ("[listener]\nmax_body_bytes = 0\n", "listener.max_body_bytes", 5),
    ];
    for (extra, key, line) in cases {
        let e = first_error(&format!("{base}{extra}"));
        assert_eq!((e.key.as_str(), e.line), (key, line), "{extra}: {e}");
    }
}

#[test]
fn backend_mistakes_are_refused() {
    let e = first_error("[backends.a]\nkind = \"openai\"\nurl = \"ftp://x\"\n");
    assert_eq!((e.key.as_str(), e.line), ("backends.a.url", 3));
    let e = first_error("[backends.a]\nkind = \"grpc\"\nurl = \"http://x\"\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unknown variant"), "{e}");
    let e = first_error("[backends.a]\nkind = \"openai\"\nurl = \"http://x\"\napi_key = \"k\"\npass_client_key = true\n");
    assert!(e.message.contains("choose one"), "{e}");
}

#[test]
fn duplicate_models_for_one_api_are_refused() {
    let text = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"a\" }\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"a\" }\n";
    let e = first_error(text);
    assert_eq!((e.key.as_str(), e.line), ("models[1].name", 9));
}

#[test]
fn missing_environment_keys_are_reported_not_fatal() {
    let text =
        "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\napi_key_env = \"NOT_SET_ANYWHERE\"\n";
    let plan = load(text).unwrap();
    assert_eq!(plan.missing_env, vec!["NOT_SET_ANYWHERE".to_string()]);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\napi_key = \"sk-very-secret\"\n[[keys]]\nname = \"k\"\nkey = \"sk-client-secret\"\n";
    let dump = format!("{:?}", load(text).unwrap());
    assert!(
        !dump.contains("sk-very-secret") && !dump.contains("sk-client-secret"),
        "{dump}"
    );
}

#[test]
fn secrets_never_show_in_the_raw_configs_debug_output() {
    let text = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\napi_key = \"sk-very-secret\"\n[[keys]]\nname = \"k\"\nkey = \"sk-client-secret\"\n[global_limits]\nredis = \"redis://:hunter2@r\"\n";
    let raw: raw::RawConfig = toml::from_str(text).unwrap();
    let dump = format!("{raw:?}");
    for secret in ["sk-very-secret", "sk-client-secret", "hunter2"] {
        assert!(!dump.contains(secret), "{dump}");
    }
}

#[test]
fn url_credentials_never_show_in_errors() {
    for text in [
        "[backends.a]\nkind = \"openai\"\nurl = \"https://user:pa55word@api.example.com/v1\"\n",
        "[backends.a]\nkind = \"openai\"\nurl = \"https://api.example.com/v1?api-key=pa55word\"\n",
        "[backends.a]\nkind = \"triton\"\nurl = \"http://user:pa55word@h\"\n",
        "[global_limits]\nredis = \"http://:pa55word@127.0.0.1:6379\"\n",
        "[listener]\nport = \"redis://:pa55word@h\"\n",
    ] {
        let errors = load(text).unwrap_err();
        let shown = format!("{errors}\n{errors:?}");
        assert!(!shown.contains("pa55word"), "{shown}");
        assert!(!errors.0.is_empty());
    }
}

#[test]
fn listener_limits_have_defaults_and_are_checked() {
    let plan = load("").unwrap();
    let l = &plan.listener;
    assert_eq!(
        (
            l.request_headers_timeout_ms,
            l.request_timeout_ms,
            l.stream_idle_timeout_ms,
            l.idle_timeout_ms,
            l.max_connection_duration_ms,
            l.max_connections
        ),
        (10_000, 300_000, 300_000, 60_000, 0, 10_000)
    );
    let plan = load("[listener]\nrequest_headers_timeout_ms = 0\nmax_connections = 3\n").unwrap();
    assert_eq!(
        (
            plan.listener.request_headers_timeout_ms,
            plan.listener.max_connections
        ),
        (0, 3)
    );
    let e = first_error("[listener]\nport = 1\nidle_timeout_ms = 86400001\n");
    assert_eq!((e.line, e.key.as_str()), (3, "listener.idle_timeout_ms"));
    let e = first_error("[listener]\n\nmax_connections = 0\n");
    assert_eq!((e.line, e.key.as_str()), (3, "listener.max_connections"));
}

#[test]
fn the_shipped_example_compiles() {
    // Its router's prompt files are read beside it, as `airouter` reads them; its time zone is
    // given one fixed offset (this crate has no tz database: `airouter` looks zones up).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/");
    let read =
        |path: &str| std::fs::read_to_string(format!("{dir}{path}")).map_err(|e| e.to_string());
    let zone = |_: &str| {
        Some(vec![crate::router::clock::Transition {
            at: 0,
            offset: 3600,
            abbreviation: "CET".into(),
        }])
    };
    let sources = Sources {
        env: &|_| None,
        read_file: &read,
        time_zone: &zone,
        plain_secrets: true,
    };
    let text = include_str!("../../../../examples/airouter.toml");
    let plan = compile_with("examples/airouter.toml", text, &sources).unwrap();
    assert!(!plan.models.is_empty());
    assert_eq!(plan.routers[0].name, "ai-router");
}

#[test]
fn targets_list_failover_order_and_refuse_repeats() {
    let base = "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\n[backends.b]\nkind = \"openai\"\nurl = \"http://b\"\n";
    let plan = load(&format!(
        "{base}[[models]]\nname = \"m\"\napis = [\"chat\"]\ntargets = [{{ backend = \"a\", model = \"x\" }}, {{ backend = \"b\" }}]\n"
    ))
    .unwrap();
    let targets = plan.models[0].targets();
    assert_eq!(targets.len(), 2);
    assert_eq!(
        (
            targets[0].backend_model.as_deref(),
            targets[1].backend_model.as_deref()
        ),
        (Some("x"), None)
    );
    let e = first_error(&format!(
        "{base}[[models]]\nname = \"m\"\napis = [\"chat\"]\ntargets = [{{ backend = \"a\" }}, {{ backend = \"a\" }}]\n"
    ));
    assert_eq!(e.key, "models[0].targets[1].backend");
    let e = first_error(&format!(
        "{base}[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = {{ backend = \"a\" }}\ntargets = [{{ backend = \"b\" }}]\n"
    ));
    assert!(
        e.message.contains("exactly one of `target` and `targets`"),
        "{e}"
    );
    let e = first_error(&format!(
        "{base}[[models]]\nname = \"m\"\napis = [\"chat\"]\ntargets = []\n"
    ));
    assert_eq!(e.key, "models[0].targets");
}

#[test]
fn admin_keys_take_no_allow_list() {
    let e = first_error("[[admin_keys]]\nname = \"ops\"\nkey = \"k\"\nmodels = [\"x\"]\n");
    assert_eq!((e.key.as_str(), e.line), ("admin_keys[0].models", 4));
}

#[test]
fn global_limits_bring_the_sidecar_and_keep_the_redis_url_secret() {
    let text = "[global_limits]\nredis = \"redis://:hunter2@127.0.0.1:6379/0\"\nfailure_mode = \"closed\"\n";
    let plan = load(text).unwrap();
    let g = plan.global_limits.as_ref().unwrap();
    assert!(!g.fail_open);
    assert_eq!((g.timeout_ms, g.default_max_tokens), (200, 1024));
    let sidecar = plan.sidecar.as_ref();
    assert!(
        sidecar.is_some(),
        "the sidecar serves the rate limit service"
    );
    assert_eq!(sidecar.map(|s| s.grpc_port), Some(8091), "on its gRPC port");
    assert!(!format!("{plan:?}").contains("hunter2"));
}

#[test]
fn global_limit_mistakes_are_refused_with_line_and_key() {
    let e = first_error("[global_limits]\nredis = \"http://127.0.0.1:6379\"\n");
    assert_eq!((e.line, e.key.as_str()), (2, "global_limits.redis"));
    let e = first_error("[global_limits]\nredis = \"redis://r\"\ntimeout_ms = 0\n");
    assert_eq!((e.line, e.key.as_str()), (3, "global_limits.timeout_ms"));
    let e = first_error(
        "[sidecar]\nport = 9000\n[global_limits]\nredis = \"redis://r\"\nport = 9000\n",
    );
    assert_eq!(e.key, "global_limits.port");
    let e = first_error("[global_limits]\nredis = \"redis://r\"\nfailure_mode = \"maybe\"\n");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn a_gguf_file_is_a_template_source_of_its_own() {
    let base = "[backends.t]\nkind = \"triton\"\nurl = \"grpc://t:8001\"\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"t\", model = \"llm\" }\n";
    let plan = load(&format!(
        "{base}triton = {{ family = \"vllm\", chat_template_gguf = \"models/smol.gguf\" }}\n"
    ))
    .unwrap();
    let t = plan.models[0].triton.as_ref().unwrap();
    assert_eq!(t.template, TemplateSource::Gguf("models/smol.gguf".into()));
    // The file's eos_token joins the stop strings once the sidecar reads it.
    assert!(t.eos_stops && t.stop_strings.is_empty());
    let plan = load(&format!(
        "{base}triton = {{ family = \"vllm\", chat_template_gguf = \"a.gguf\", stop_strings = [\"END\"] }}\n"
    ))
    .unwrap();
    let t = plan.models[0].triton.as_ref().unwrap();
    assert!(!t.eos_stops && t.stop_strings == ["END"]);
    for other in [
        "template = \"chatml\"",
        "chat_template = \"{{ x }}\"",
        "chat_template_file = \"t.jinja\"",
    ] {
        let e = first_error(&format!(
            "{base}triton = {{ family = \"vllm\", chat_template_gguf = \"a.gguf\", {other} }}\n"
        ));
        assert_eq!(e.key, "models[0].triton");
        assert!(e.message.contains("chat_template_gguf"), "{e}");
    }
    let e = first_error(&format!("{base}triton = {{ family = \"vllm\" }}\n"));
    assert!(e.message.contains("chat_template_gguf"), "{e}");
}

#[test]
fn the_sidecar_grpc_port_is_one_for_every_service_and_an_older_name_still_sets_it() {
    let port = |text: &str| load(text).unwrap().sidecar.unwrap().grpc_port;
    let limits = "[global_limits]\nredis = \"redis://r\"\n";
    assert_eq!(port(limits), 8091);
    assert_eq!(port(&format!("{limits}port = 9100\n")), 9100);
    assert_eq!(
        port(&format!("[sidecar]\ngrpc_port = 9200\n{limits}")),
        9200
    );
    assert_eq!(
        port(&format!(
            "[sidecar]\ngrpc_port = 9200\n{limits}port = 9200\n"
        )),
        9200
    );
    let e = first_error(&format!(
        "[sidecar]\ngrpc_port = 9200\n{limits}port = 9300\n"
    ));
    assert_eq!((e.line, e.key.as_str()), (5, "global_limits.port"));
    let e = first_error("[sidecar]\nport = 9000\ngrpc_port = 9000\n[session_log]\n");
    assert_eq!((e.line, e.key.as_str()), (3, "sidecar.grpc_port"));
}

#[test]
fn a_session_log_brings_the_sidecar_with_its_defaults() {
    let plan = load("[session_log]\n").unwrap();
    let log = plan.session_log.as_ref().unwrap();
    assert_eq!(log.capture, Capture::Metadata);
    assert_eq!(
        (
            log.max_record_bytes,
            log.dir.as_str(),
            log.max_age_days,
            log.max_files
        ),
        (65536, "sessions", 7, 5000)
    );
    assert!(plan.sidecar.is_some(), "the sidecar writes the records");
    assert!(
        load(GOOD).unwrap().session_log.is_none(),
        "off unless asked for"
    );
    let full = load("[session_log]\ncapture = \"full\"\nmax_record_bytes = 4096\ndir = \"/var/log/airouter\"\nmax_age_days = 1\nmax_files = 1\n").unwrap();
    let log = full.session_log.unwrap();
    assert_eq!(
        (log.capture, log.max_record_bytes, log.max_files),
        (Capture::Full, 4096, 1)
    );
}

#[test]
fn session_log_mistakes_are_refused_with_line_and_key() {
    for (text, line, key) in [
        ("capture = \"everything\"", 2, ""),
        ("max_record_bytes = 100", 2, "session_log.max_record_bytes"),
        (
            "max_record_bytes = 16777217",
            2,
            "session_log.max_record_bytes",
        ),
        ("dir = \" \"", 2, "session_log.dir"),
        ("max_age_days = 0", 2, "session_log.max_age_days"),
        ("max_files = 0", 2, "session_log.max_files"),
        ("rotate = true", 2, ""),
    ] {
        let e = first_error(&format!("[session_log]\n{text}\n"));
        assert_eq!(e.line, line, "{text}: {e}");
        if !key.is_empty() {
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}

#[test]
fn the_json_form_compiles_to_the_same_plan() {
    let json = serde_json::Value::Object(json::to_json(GOOD).unwrap()).to_string();
    let (a, b) = (load(&json).unwrap(), load(GOOD).unwrap());
    // Field by field: the resolver's hash maps print in no fixed order.
    assert_eq!(format!("{:?}", a.listener), format!("{:?}", b.listener));
    assert_eq!(format!("{:?}", a.backends), format!("{:?}", b.backends));
    assert_eq!(format!("{:?}", a.models), format!("{:?}", b.models));
    assert_eq!(format!("{:?}", a.keys), format!("{:?}", b.keys));
    for name in ["chat", "gpt-4o", "gpt-4o-mini", "other"] {
        let t = |p: &Plan| p.resolve(Api::Chat, name).map(|t| t.backend_model.clone());
        assert_eq!(t(&a), t(&b));
    }
    let pretty = serde_json::to_string_pretty(&json::to_json(GOOD).unwrap()).unwrap();
    assert!(load(&pretty).is_ok());
}

#[test]
fn the_json_form_is_checked_like_toml() {
    let e = first_error(r#"{"listener": {"port": 8080, "colour": "blue"}}"#);
    assert_eq!(e.file, "airouter.toml");
    assert!(e.message.contains("colour"), "{e}");
    let e = first_error(r#"{"listener": null}"#);
    assert!(e.message.starts_with("listener: null"), "{e}");
}

#[test]
fn tracing_is_off_unless_configured_and_takes_its_defaults() {
    assert!(load(GOOD).unwrap().tracing.is_none());
    let plan = load(&format!(
        "{GOOD}\n[tracing]\nendpoint = \"otel-collector:4317\"\n"
    ))
    .unwrap();
    let t = plan.tracing.unwrap();
    assert_eq!(
        (t.endpoint.host.as_str(), t.endpoint.port),
        ("otel-collector", 4317)
    );
    assert_eq!(t.service_name, "airouter");
    assert_eq!(t.sidecar_service_name(), "airouter-sidecar");
    assert!((t.sampling_percent - 100.0).abs() < f64::EPSILON);
    // Tracing alone brings no sidecar: Envoy exports its spans itself.
    assert!(plan.sidecar.is_none());
}

#[test]
fn tracing_mistakes_are_refused_with_line_and_key() {
    for (text, key) in [
        (
            "endpoint = \"http://collector:4317/v1/traces\"",
            "tracing.endpoint",
        ),
        ("endpoint = \"collector\"", "tracing.endpoint"),
        (
            "endpoint = \"c:4317\"\nservice_name = \"my service\"",
            "tracing.service_name",
        ),
        (
            "endpoint = \"c:4317\"\nsampling = 100.5",
            "tracing.sampling",
        ),
        ("endpoint = \"c:4317\"\nsampling = -1.0", "tracing.sampling"),
        ("endpoint = \"c:4317\"\nheaders = {}", ""),
    ] {
        let e = first_error(&format!("[tracing]\n{text}\n"));
        let line = text.lines().count() + 1;
        assert_eq!(e.line, line, "{text}: {e}");
        if !key.is_empty() {
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}

#[test]
fn telemetry_is_off_by_default_and_the_section_turns_each_part_on() {
    let off = load(GOOD).unwrap();
    assert!(!off.measures_gen_ai());
    let on = load(&format!("{GOOD}\n[telemetry]\n")).unwrap();
    assert!(on.telemetry.metrics && on.telemetry.access_log && on.measures_gen_ai());
    let part = load(&format!("{GOOD}\n[telemetry]\nmetrics = false\n")).unwrap();
    assert!(!part.telemetry.metrics && part.telemetry.access_log);
    let traced = load(&format!("{GOOD}\n[tracing]\nendpoint = \"c:4317\"\n")).unwrap();
    assert!(traced.measures_gen_ai() && !traced.telemetry.metrics);
}

#[test]
fn tracing_and_telemetry_take_the_json_form_too() {
    // As Istio passes it from a google.protobuf.Struct: every number a double.
    let plan = load(
        r#"{"listener": {"port": 8080.0},
            "tracing": {"endpoint": "otel-collector:4317", "sampling": 10.0},
            "telemetry": {"access_log": false}}"#,
    )
    .unwrap();
    let t = plan.tracing.unwrap();
    assert_eq!(t.endpoint.port, 4317);
    assert!((t.sampling_percent - 10.0).abs() < f64::EPSILON);
    assert!(plan.telemetry.metrics && !plan.telemetry.access_log);
}
