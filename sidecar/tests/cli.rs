//! The `airouter` command line: check, envoy rendering and the checked-in JSON Schema.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

// The crate's golden-file check (`AIROUTER_BLESS=1` rewrites the files under `sidecar/golden/`).
#[cfg(test)]
#[path = "../src/golden.rs"]
mod golden;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn airouter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airouter"))
        .args(args)
        .current_dir(root())
        .env_remove("DEMO_HOSTED_KEY")
        .env_remove("DEMO_ANTHROPIC_KEY")
        .output()
        .expect("run airouter")
}

#[test]
fn check_accepts_the_example_and_warns_about_unset_keys() {
    let out = airouter(&["check", "examples/airouter.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok (6 backends, 13 models, 2 client keys)")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEMO_HOSTED_KEY"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEMO_ANTHROPIC_KEY"));
}

#[test]
fn check_refuses_a_bad_file_naming_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("airouter-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[backends.a]\nkind = \"openai\"\nurl = \"http://a\"\n\n[[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"b\" }\n",
    )
    .unwrap();
    let out = airouter(&["check", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:8:")
            && err.contains("models[0].target.backend: no backend named `b` (defined: a)"),
        "{err}"
    );
}

#[test]
fn envoy_renders_clusters_routes_and_the_filter() {
    let out = airouter(&[
        "envoy",
        "examples/airouter.toml",
        "--wasm",
        "/opt/airouter.wasm",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clusters = doc["static_resources"]["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "airouter_backend_demo",
            "airouter_backend_demo-anthropic",
            "airouter_backend_demo-hosted",
            "airouter_backend_demo-llama",
            "airouter_backend_demo-triton",
            "airouter_backend_demo-unreachable",
            "airouter_failover_6_0",
            "airouter_session_log",
            "airouter_grpc_api",
        ]
    );
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    // The example keeps a session log: its records go to the sidecar's access log service.
    let session_log = &hcm["access_log"][1]["typed_config"]["common_config"];
    assert_eq!(
        session_log["filter_state_objects_to_log"],
        serde_json::json!(["wasm.airouter_session"])
    );
    let wasm = &hcm["http_filters"][0]["typed_config"]["config"];
    assert_eq!(
        wasm["vm_config"]["code"]["local"]["filename"],
        "/opt/airouter.wasm"
    );
    assert_eq!(
        wasm["vm_config"]["environment_variables"]["host_env_keys"],
        serde_json::json!(["DEMO_ANTHROPIC_KEY", "DEMO_HOSTED_KEY"])
    );
    assert_eq!(wasm["allow_on_headers_stop_iteration"], true);
    // The example's plain client key reaches Envoy as its digest only.
    let config = wasm["configuration"]["value"].as_str().unwrap();
    assert!(!config.contains("sk-demo"), "{config}");
    assert!(config.contains(&sha256_hex("sk-demo")), "{config}");
    assert_eq!(
        doc["admin"]["address"]["socket_address"]["port_value"],
        9901
    );
    assert_eq!(hcm["request_headers_timeout"], "10.000s");
    assert_eq!(
        hcm["common_http_protocol_options"]["idle_timeout"],
        "60.000s"
    );
    assert_eq!(
        doc["overload_manager"]["resource_monitors"][0]["typed_config"]
            ["max_active_downstream_connections"],
        10000
    );
    assert!(
        hcm["local_reply_config"]["mappers"]
            .as_array()
            .unwrap()
            .len()
            > 5
    );
    // The example serves the gRPC client API on its own listener: the transcoder with the
    // descriptor set, routes to the sidecar for the API, health and reflection only.
    let grpc = &doc["static_resources"]["listeners"][1];
    assert_eq!(grpc["address"]["socket_address"]["port_value"], 50051);
    let grpc_hcm = &grpc["filter_chains"][0]["filters"][0]["typed_config"];
    let transcoder = &grpc_hcm["http_filters"][0]["typed_config"];
    assert_eq!(
        transcoder["services"],
        serde_json::json!(["airouter.v1.Router"])
    );
    assert!(transcoder["proto_descriptor_bin"].as_str().unwrap().len() > 1000);
    let prefixes: Vec<&str> = grpc_hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["match"]["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(
        prefixes,
        [
            "/airouter.v1.Router/",
            "/grpc.health.v1.Health/",
            "/grpc.reflection.v1.ServerReflection/",
            "/grpc.reflection.v1alpha.ServerReflection/"
        ]
    );
}

/// The whole bootstrap `airouter envoy` prints for `config`, compared with `golden/envoy/<name>`.
/// The paths in it are fixed: the config as given (relative to the repository), and the `.wasm`
/// and CA file named on the command line.
#[test]
fn envoy_with_filter_native_renders_the_dynamic_module_in_both_places() {
    let out = airouter(&[
        "envoy",
        "examples/airouter.toml",
        "--filter",
        "native",
        "--native",
        "/opt/libairouter_native.so",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let listener = &hcm["http_filters"][0];
    let failover = doc["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "airouter_failover_6_0")
        .unwrap();
    let upstream = &failover["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"][0];
    for (filter, name) in [(listener, "airouter"), (upstream, "airouter-upstream")] {
        assert_eq!(filter["name"], "envoy.filters.http.dynamic_modules");
        let config = &filter["typed_config"];
        assert_eq!(config["filter_name"], name);
        assert_eq!(
            config["dynamic_module_config"]["module"]["local"]["filename"],
            "/opt/libairouter_native.so"
        );
        assert_eq!(config["dynamic_module_config"]["do_not_close"], true);
        let value = &config["filter_config"]["value"];
        assert_eq!(value["name"], "examples/airouter.toml");
        assert!(value["configuration"]
            .as_str()
            .unwrap()
            .contains("[listener]"));
    }
    let bad = airouter(&["envoy", "examples/airouter.toml", "--filter", "lua"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--filter takes wasm or native, not lua"));
}

fn check_rendered_bootstrap(config: &str, name: &str) {
    let out = airouter(&[
        "envoy",
        config,
        "--wasm",
        "/opt/airouter/airouter_filter.wasm",
        "--ca-file",
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    golden::check(
        &format!("envoy/{name}"),
        &String::from_utf8_lossy(&out.stdout),
    );
}

#[test]
fn the_example_renders_its_golden_bootstrap() {
    check_rendered_bootstrap("examples/airouter.toml", "example.json");
}

/// TLS, health checks, every listener timeout, a three-target failover, [global_limits],
/// [tracing] and [telemetry]: the parts the example does not use.
#[test]
fn a_config_using_every_bootstrap_feature_renders_its_golden_bootstrap() {
    check_rendered_bootstrap(
        "sidecar/tests/configs/all_features.toml",
        "all_features.json",
    );
}

fn sha256_hex(s: &str) -> String {
    airouter_core::auth::KeyRing::hash(s)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("airouter-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const WITH_SECRETS: &str = r#"
[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key = "sk-backend-secret"

[[models]]
name = "chat"
apis = ["chat"]
target = { backend = "hosted" }

[[keys]]
name = "dev"
key = "sk-client-secret"

[[admin_keys]]
name = "ops"
key = "sk-admin-secret"

[global_limits]
redis = "redis://:redis-secret@127.0.0.1:6379/0"
"#;

#[test]
fn envoy_renders_no_secret_and_writes_backend_keys_to_a_private_env_file() {
    use std::os::unix::fs::PermissionsExt;

    let dir = temp_dir("secrets");
    let file = dir.join("airouter.toml");
    std::fs::write(&file, WITH_SECRETS).unwrap();
    let env_file = dir.join("envoy.env");
    let out = airouter(&[
        "envoy",
        file.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "sk-backend-secret",
        "sk-client-secret",
        "sk-admin-secret",
        "redis-secret",
    ] {
        assert!(!rendered.contains(secret), "{secret} in the bootstrap");
    }
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "AIROUTER_BACKEND_KEY_HOSTED=sk-backend-secret\n"
    );
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let doc: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(
        hcm["http_filters"][0]["typed_config"]["config"]["vm_config"]["environment_variables"]
            ["host_env_keys"],
        serde_json::json!(["AIROUTER_BACKEND_KEY_HOSTED"])
    );

    // Without --env-file the variable is named (never its value) on stderr.
    let out = airouter(&["envoy", file.to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AIROUTER_BACKEND_KEY_HOSTED") && err.contains("--env-file"));
    assert!(!err.contains("sk-backend-secret"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_never_prints_url_credentials() {
    let dir = temp_dir("redact");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[backends.a]\nkind = \"openai\"\nurl = \"https://user:pa55word@api.example.com/v1\"\n\n[backends.b]\nkind = \"openai\"\nurl = \"https://api.example.com/v1?key=pa55word\"\n",
    )
    .unwrap();
    for cmd in ["check", "envoy"] {
        let out = airouter(&[cmd, file.to_str().unwrap()]);
        assert!(!out.status.success());
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            shown.contains("bad.toml:3:") && shown.contains("bad.toml:7:"),
            "{shown}"
        );
        assert!(
            shown.contains("https://<redacted>@api.example.com/v1"),
            "{shown}"
        );
        assert!(!shown.contains("pa55word"), "{shown}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checked_in_schema_matches_the_config_types() {
    let out = airouter(&["schema"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root().join("docs/airouter.schema.json")).unwrap();
    // A bool, not assert_eq: a stale schema needs `make schema`, not a page of JSON.
    let fresh = String::from_utf8_lossy(&out.stdout) == committed;
    assert!(
        fresh,
        "docs/airouter.schema.json is stale: run `make schema`"
    );
}

#[test]
fn unknown_commands_print_usage() {
    let out = airouter(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

#[test]
fn every_subcommand_prints_its_usage_on_help() {
    for cmd in [
        "check",
        "envoy",
        "reload",
        "istio",
        "envoy-gateway",
        "serve",
        "schema",
    ] {
        let out = airouter(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("usage:"),
            "{cmd}"
        );
    }
}

#[test]
fn envoy_with_an_xds_dir_writes_watched_files_and_reload_rewrites_them() {
    let dir = std::env::temp_dir().join(format!("airouter-xds-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let out = airouter(&["envoy", "examples/airouter.toml", "--xds-dir", dir_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["dynamic_resources"]["lds_config"]["path_config_source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("lds.json")
    );
    assert!(doc.get("static_resources").is_none());
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let first = read("lds.json")["version_info"].clone();
    assert_eq!(read("cds.json")["resources"].as_array().unwrap().len(), 9);
    // The OpenAI listener and the gRPC client API's.
    assert_eq!(read("lds.json")["resources"].as_array().unwrap().len(), 2);
    let out = airouter(&["reload", "examples/airouter.toml", "--xds-dir", dir_arg]);
    assert!(out.status.success());
    assert_ne!(
        read("lds.json")["version_info"],
        first,
        "a reload is a new version"
    );
    let out = airouter(&["reload", "examples/airouter.toml"]);
    assert!(!out.status.success(), "reload needs the directory");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The router example: `check` reads its prompt files, and the configuration `envoy` hands the
/// filter carries their text and the time zone's rules, not the files' names.
#[test]
fn the_router_example_checks_and_renders_its_prompts_inline() {
    let out = airouter(&["check", "examples/router.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = airouter(&["envoy", "examples/router.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let config = hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    assert!(!config.contains("_file"), "{config}");
    assert!(
        config.contains("You route a user's request to the model best suited"),
        "{config}"
    );
    assert!(config.contains("[time_zones]"), "{config}");
    assert!(config.contains("\"Europe/Berlin\""), "{config}");
    // A missing prompt file is refused with the file, line and key that name it.
    let dir = std::env::temp_dir().join(format!("airouter-router-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root().join("examples/router.toml")).unwrap();
    let file = dir.join("router.toml");
    std::fs::write(&file, &text).unwrap();
    let out = airouter(&["check", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text[..text.find("prompt_file = \"prompts/classify.md\"").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert!(
        err.contains(&format!("router.toml:{line}:"))
            && err.contains("routers[0].classifier.prompt_file: cannot read `prompts/classify.md`"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
