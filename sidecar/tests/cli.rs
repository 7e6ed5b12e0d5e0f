//! The `airouter` command line: check, envoy rendering and the checked-in JSON Schema.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns should fail loudly too"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn airouter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airouter"))
        .args(args)
        .current_dir(root())
        .env_remove("DEMO_HOSTED_KEY")
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
        String::from_utf8_lossy(&out.stdout).contains("ok (4 backends, 8 models, 2 client keys)")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEMO_HOSTED_KEY"));
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
            "airouter_backend_demo-hosted",
            "airouter_backend_demo-triton",
            "airouter_backend_demo-unreachable",
            "airouter_failover_6_0",
        ]
    );
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let wasm = &hcm["http_filters"][0]["typed_config"]["config"];
    assert_eq!(
        wasm["vm_config"]["code"]["local"]["filename"],
        "/opt/airouter.wasm"
    );
    assert_eq!(
        wasm["vm_config"]["environment_variables"]["host_env_keys"][0],
        "DEMO_HOSTED_KEY"
    );
    assert_eq!(wasm["allow_on_headers_stop_iteration"], true);
    let toml = std::fs::read_to_string(root().join("examples/airouter.toml")).unwrap();
    assert_eq!(wasm["configuration"]["value"], toml.as_str());
    assert_eq!(
        doc["admin"]["address"]["socket_address"]["port_value"],
        9901
    );
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
    assert_eq!(read("cds.json")["resources"].as_array().unwrap().len(), 5);
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
