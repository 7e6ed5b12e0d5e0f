//! The Istio and Envoy Gateway manifests: what each object carries, taken from the same Envoy
//! pieces as the bootstrap, and no secret anywhere.

use super::files;
use super::*;
use airouter_core::config::compile;
use airouter_core::contract;

const TEXT: &str = r#"
[listener]
port = 8080

[sidecar]
secret_env = "SIDECAR_SECRET"

[backends.local]
kind = "openai"
url = "http://10.0.0.5:8000/v1"

[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "PROVIDER_KEY"

[backends.triton]
kind = "triton"
url = "grpc://10.0.0.6:8001"

[[models]]
name = "chat"
apis = ["chat"]
targets = [{ backend = "local", model = "m" }, { backend = "hosted", model = "gpt" }]

[[models]]
name = "llama"
apis = ["chat"]
target = { backend = "triton", model = "vllm_model" }
triton = { family = "vllm", template = "chatml" }
"#;

const SECRET: &str = "sk-secret-that-must-not-leak";

fn plan(text: &str) -> Plan {
    compile("airouter.toml", text, &|_| Some(SECRET.to_string())).unwrap()
}

fn options(extra: &[&str]) -> Options {
    let mut args: Vec<String> = [
        "--wasm-image",
        "oci://registry.example/airouter/filter:1.0",
        "--namespace",
        "ai",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(extra.iter().map(ToString::to_string));
    Options::parse(&args).unwrap()
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter().map(|d| d["kind"].as_str().unwrap()).collect()
}

#[test]
fn istio_gets_the_extension_the_patches_the_gateway_egress_and_the_sidecar() {
    let docs = render(plan(TEXT), TEXT, &options(&[])).unwrap();
    assert_eq!(
        kinds(&docs),
        [
            "TrafficExtension",
            "EnvoyFilter",
            "Gateway",
            "VirtualService",
            "ServiceEntry",
            "DestinationRule",
            "Deployment",
            "Service"
        ]
    );
    let wasm = &docs[0]["spec"]["wasm"];
    assert_eq!(wasm["url"], "oci://registry.example/airouter/filter:1.0");
    assert_eq!(wasm["pluginName"], contract::ROOT_ID);
    assert_eq!(wasm["pluginConfig"], plugin_config(TEXT).unwrap());
    assert_eq!(
        wasm["vmConfig"]["env"],
        json!([{ "name": "PROVIDER_KEY", "valueFrom": "HOST" }, { "name": "SIDECAR_SECRET", "valueFrom": "HOST" }])
    );
    assert_eq!(docs[0]["spec"]["match"][0]["ports"][0]["number"], 8080);
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "ai"));
    let all = serde_json::to_string(&docs).unwrap();
    assert!(!all.contains(SECRET));
}

#[test]
fn the_plugin_config_compiles_to_the_plan_of_the_toml() {
    let json = plugin_config(TEXT).unwrap().to_string();
    let (a, b) = (plan(&json), plan(TEXT));
    assert_eq!(format!("{:?}", a.backends), format!("{:?}", b.backends));
    assert_eq!(format!("{:?}", a.models), format!("{:?}", b.models));
}

#[test]
fn older_istio_gets_a_wasm_plugin_with_the_same_fields_at_the_top() {
    let docs = render(plan(TEXT), TEXT, &options(&["--api", "wasm-plugin"])).unwrap();
    assert_eq!(docs[0]["kind"], "WasmPlugin");
    assert_eq!(docs[0]["spec"]["pluginName"], contract::ROOT_ID);
    assert_eq!(docs[0]["spec"]["phase"], "AUTHN");
    assert!(docs[0]["spec"]["wasm"].is_null());
}

#[test]
fn the_envoy_filter_carries_what_the_extension_cannot() {
    let docs = render(
        plan(TEXT),
        TEXT,
        &options(&["--wasm-sha256", &"a".repeat(64)]),
    )
    .unwrap();
    let patches = docs[1]["spec"]["configPatches"].as_array().unwrap();
    let of = |apply: &'static str| patches.iter().filter(move |p| p["applyTo"] == apply);
    let ecds: Vec<&Value> = of("EXTENSION_CONFIG").collect();
    assert_eq!(ecds[0]["patch"]["operation"], "REPLACE");
    assert_eq!(ecds[0]["patch"]["value"]["name"], "ai.airouter");
    let config = &ecds[0]["patch"]["value"]["typed_config"]["config"];
    assert_eq!(config["allow_on_headers_stop_iteration"], true);
    assert_eq!(config["root_id"], contract::ROOT_ID);
    assert_eq!(config["vm_config"]["vm_id"], contract::VM_ID);
    let remote = &config["vm_config"]["code"]["remote"];
    assert_eq!(
        remote["http_uri"]["uri"],
        "oci://registry.example/airouter/filter:1.0"
    );
    assert_eq!(remote["sha256"], "a".repeat(64));
    let upstream = &ecds[1]["patch"]["value"];
    assert_eq!(upstream["name"], "ai.airouter-upstream");
    assert_eq!(
        upstream["typed_config"]["config"]["root_id"],
        contract::UPSTREAM_ROOT_ID
    );

    let clusters: Vec<&Value> = of("CLUSTER").map(|p| &p["patch"]["value"]).collect();
    let names: Vec<&str> = clusters
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"airouter_backend_hosted"));
    assert!(names.contains(&contract::failover_cluster(0, 0).as_str()));
    let failover = clusters
        .iter()
        .find(|c| c["name"] == contract::failover_cluster(0, 0))
        .unwrap();
    let first = &failover["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"][0];
    assert_eq!(first["name"], "ai.airouter-upstream");
    assert!(first["typed_config"].is_null());
    let triton = clusters
        .iter()
        .find(|c| c["name"] == "airouter_backend_triton")
        .unwrap();
    let endpoint = &triton["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    assert_eq!(
        endpoint["address"]["socket_address"]["address"],
        "airouter-sidecar.ai.svc.cluster.local"
    );
    assert_eq!(triton["type"], "LOGICAL_DNS");
    assert!(triton.get("typed_extension_protocol_options").is_none());

    // One route per backend and per failover; the VirtualService stands for the catch-all.
    assert_eq!(of("HTTP_ROUTE").count(), 3 + 1);
    assert!(of("HTTP_ROUTE").all(|r| r["patch"]["value"]["match"]["filter_state"].is_array()));
    let hcm = &of("NETWORK_FILTER").next().unwrap()["patch"]["value"]["typed_config"];
    assert!(hcm["local_reply_config"]["mappers"].is_array());
    assert!(hcm["access_log"].is_null());
}

#[test]
fn egress_objects_are_for_hosted_hosts_only() {
    let docs = render(plan(TEXT), TEXT, &options(&[])).unwrap();
    let se: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceEntry")
        .collect();
    assert_eq!(se.len(), 1);
    assert_eq!(se[0]["spec"]["hosts"], json!(["api.example.com"]));
    let dr = docs
        .iter()
        .find(|d| d["kind"] == "DestinationRule")
        .unwrap();
    assert_eq!(
        dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["sni"],
        "api.example.com"
    );
}

#[test]
fn no_sidecar_objects_without_a_sidecar() {
    let text = "[backends.b]\nkind = \"openai\"\nurl = \"http://10.0.0.5:8000/v1\"\n\n\
                [[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"b\" }\n";
    let docs = render(plan(text), text, &options(&[])).unwrap();
    assert_eq!(
        kinds(&docs),
        [
            "TrafficExtension",
            "EnvoyFilter",
            "Gateway",
            "VirtualService"
        ]
    );
    assert!(docs[0]["spec"]["wasm"]["vmConfig"].is_null());
}

#[test]
fn envoy_gateway_gets_an_extension_policy_with_the_image_reference() {
    let p = envoy_extension_policy(&plan(TEXT), TEXT, &options(&["--gateway", "ai-gw"])).unwrap();
    assert_eq!(p["kind"], "EnvoyExtensionPolicy");
    assert_eq!(p["spec"]["targetRefs"][0]["name"], "ai-gw");
    let wasm = &p["spec"]["wasm"][0];
    assert_eq!(
        wasm["code"],
        json!({ "type": "Image", "image": { "url": "registry.example/airouter/filter:1.0" } })
    );
    assert_eq!(wasm["rootID"], contract::ROOT_ID);
    assert_eq!(wasm["config"], plugin_config(TEXT).unwrap());
}

#[test]
fn envoy_gateway_hands_the_vm_the_key_variables_and_pins_the_digest() {
    let digest = "b".repeat(64);
    let o = options(&["--wasm-sha256", &format!("sha256:{digest}")]);
    let p = envoy_extension_policy(&plan(TEXT), TEXT, &o).unwrap();
    let wasm = &p["spec"]["wasm"][0];
    assert_eq!(
        wasm["env"],
        json!({ "hostKeys": ["PROVIDER_KEY", "SIDECAR_SECRET"] })
    );
    assert_eq!(wasm["code"]["image"]["sha256"], digest);
    let keyless = "[backends.b]\nkind = \"openai\"\nurl = \"http://10.0.0.5:8000/v1\"\n\n\
                   [[models]]\nname = \"m\"\napis = [\"chat\"]\ntarget = { backend = \"b\" }\n";
    let p = envoy_extension_policy(&plan(keyless), keyless, &options(&[])).unwrap();
    assert!(p["spec"]["wasm"][0]["env"].is_null());
    assert!(p["spec"]["wasm"][0]["code"]["image"]["sha256"].is_null());
}

#[test]
fn each_command_has_its_own_default_namespace() {
    let args = vec!["--wasm-image".to_string(), "oci://x".to_string()];
    assert_eq!(
        Options::parse_for("istio", &args).unwrap().namespace,
        "istio-system"
    );
    assert_eq!(
        Options::parse_for("envoy-gateway", &args)
            .unwrap()
            .namespace,
        "default"
    );
}

#[test]
fn a_digest_is_taken_bare_or_as_pack_wasm_prints_it() {
    let hex = "0123456789abcdef".repeat(4);
    let bare = options(&["--wasm-sha256", &hex]);
    let prefixed = options(&["--wasm-sha256", &format!("sha256:{hex}")]);
    assert_eq!(bare.wasm_sha256.as_deref(), Some(hex.as_str()));
    assert_eq!(prefixed.wasm_sha256, bare.wasm_sha256);
}

#[test]
fn options_are_checked() {
    assert!(Options::parse(&[]).unwrap_err().contains("--wasm-image"));
    let bad = |a: &[&str]| {
        Options::parse(&a.iter().map(ToString::to_string).collect::<Vec<_>>()).is_err()
    };
    assert!(bad(&["--wasm-image", "oci://x", "--api", "envoyfilter"]));
    assert!(bad(&["--wasm-image", "oci://x", "--wasm-sha256", "ABC"]));
    assert!(bad(&[
        "--wasm-image",
        "oci://x",
        "--wasm-sha256",
        "sha512:abc"
    ]));
    assert!(bad(&["--wasm-image", "oci://x", "--selector", "novalue"]));
    assert!(bad(&["--wasm-image"]));
}

#[test]
fn the_stream_is_yaml_documents() {
    let out = yaml_stream(&[json!({ "kind": "A" }), json!({ "kind": "B" })], "f.toml").unwrap();
    assert!(out.starts_with("# f.toml"));
    assert_eq!(out.lines().filter(|l| *l == "---").count(), 2);
}

#[test]
fn with_tracing_the_gateway_span_gets_the_gen_ai_attributes_and_istio_keeps_its_tracer() {
    let text = format!("{TEXT}\n[tracing]\nendpoint = \"otel-collector.observability:4317\"\n");
    let docs = render(plan(&text), &text, &options(&[])).unwrap();
    let patches = docs[1]["spec"]["configPatches"].as_array().unwrap();
    let hcm = patches
        .iter()
        .find(|p| p["applyTo"] == "NETWORK_FILTER")
        .map(|p| &p["patch"]["value"]["typed_config"])
        .unwrap();
    let tags = hcm["tracing"]["custom_tags"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["tag"] == "gen_ai.request.model"));
    // Istio's provider and sampling stay; its own tracer exports.
    assert!(hcm["tracing"]["provider"].is_null());
    assert!(hcm["tracing"]["random_sampling"].is_null());
    assert!(!patches
        .iter()
        .any(|p| p["patch"]["value"]["name"] == contract::TRACING_CLUSTER));
}

/// The `BOOTSTRAP` patch of the `EnvoyFilter`.
fn bootstrap_patch(docs: &[Value]) -> &Value {
    docs[1]["spec"]["configPatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["applyTo"] == "BOOTSTRAP")
        .unwrap()
}

#[test]
fn istio_gets_the_stats_tags_and_buckets_of_the_bootstrap_as_a_bootstrap_merge() {
    let text = format!("{TEXT}\n[telemetry]\n");
    let p = plan(&text);
    let parts = crate::bootstrap::parts(
        &p,
        &text,
        FilterModule::Wasm(&PathBuf::from("unused.wasm")),
        &PathBuf::from("/ca.pem"),
    );
    let docs = render(plan(&text), &text, &options(&[])).unwrap();
    let patch = bootstrap_patch(&docs);
    assert_eq!(patch["patch"]["operation"], "MERGE");
    assert!(patch.get("match").is_none());
    let stats = &patch["patch"]["value"]["stats_config"];
    // The bootstrap's own tags and buckets, without overriding Istio's default-tags choice.
    assert_eq!(stats["stats_tags"], parts.stats_config["stats_tags"]);
    assert_eq!(
        stats["histogram_bucket_settings"],
        parts.stats_config["histogram_bucket_settings"]
    );
    assert!(stats["stats_tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["tag_name"] == "gen_ai_request_model"));
    assert!(stats.get("use_all_default_tags").is_none());
}

#[test]
fn without_metrics_the_bootstrap_merge_holds_the_counters_tags_only() {
    let docs = render(plan(TEXT), TEXT, &options(&[])).unwrap();
    let stats = &bootstrap_patch(&docs)["patch"]["value"]["stats_config"];
    let tags: Vec<&str> = stats["stats_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap())
        .collect();
    assert!(tags.contains(&"backend") && !tags.contains(&"gen_ai_request_model"));
    assert!(stats.get("histogram_bucket_settings").is_none());
}

fn gateway_proxy(text: &str) -> Value {
    let p = plan(text);
    let o = options(&["--gateway", "ai-gw"]);
    let parts = crate::bootstrap::parts(
        &p,
        text,
        FilterModule::Wasm(&PathBuf::from("unused.wasm")),
        &o.ca_file,
    );
    envoy_proxy(&p, &parts, &o).unwrap()
}

#[test]
fn envoy_gateway_gets_an_envoy_proxy_merging_the_stats_config_into_its_bootstrap() {
    let text = format!("{TEXT}\n[telemetry]\n");
    let proxy = gateway_proxy(&text);
    assert_eq!(proxy["kind"], "EnvoyProxy");
    assert_eq!(proxy["metadata"]["name"], NAME);
    assert_eq!(proxy["spec"]["bootstrap"]["type"], "Merge");
    let value: Value =
        serde_json::from_str(proxy["spec"]["bootstrap"]["value"].as_str().unwrap()).unwrap();
    let buckets = value["stats_config"]["histogram_bucket_settings"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), 4);
    assert!(value["stats_config"]["stats_tags"].is_array());
    // No tracing without [tracing].
    assert!(proxy["spec"]["telemetry"].is_null());
}

#[test]
fn with_tracing_envoy_gateway_traces_to_the_endpoint_with_the_gen_ai_tags() {
    let text = format!(
        "{TEXT}\n[tracing]\nendpoint = \"otel-collector.observability:4317\"\nsampling = 25.0\n"
    );
    let tracing = &gateway_proxy(&text)["spec"]["telemetry"]["tracing"];
    assert_eq!(tracing["provider"]["type"], "OpenTelemetry");
    assert_eq!(
        tracing["provider"]["backendRefs"],
        json!([{ "name": "otel-collector", "namespace": "observability", "port": 4317 }])
    );
    assert_eq!(tracing["samplingRate"], 25);
    assert_eq!(
        tracing["tags"]["gen_ai.request.model"],
        "%FILTER_STATE(wasm.airouter_model:PLAIN)%"
    );
    assert_eq!(
        tracing["tags"].as_object().unwrap().len(),
        airouter_core::telemetry::span::SPAN_ATTRIBUTES.len()
    );

    // A host outside the cluster: host and port; a fractional percentage: a fraction.
    let text = format!("{TEXT}\n[tracing]\nendpoint = \"otlp.example.com:4317\"\nsampling = 0.5\n");
    let tracing = &gateway_proxy(&text)["spec"]["telemetry"]["tracing"];
    assert_eq!(tracing["provider"]["host"], "otlp.example.com");
    assert_eq!(tracing["provider"]["port"], 4317);
    assert!(tracing["provider"]["backendRefs"].is_null());
    assert_eq!(
        tracing["samplingFraction"],
        json!({ "numerator": 50, "denominator": 10000 })
    );
    assert!(tracing["samplingRate"].is_null());

    // A bare Service name is in the gateway's namespace.
    let text = format!("{TEXT}\n[tracing]\nendpoint = \"otel-collector:4317\"\n");
    let tracing = &gateway_proxy(&text)["spec"]["telemetry"]["tracing"];
    assert_eq!(tracing["provider"]["backendRefs"][0]["namespace"], "ai");
}

fn deployment_spec(docs: &[Value]) -> &Value {
    &docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"]
}

#[test]
fn the_sidecar_listens_on_every_interface_and_writes_its_sessions_where_the_file_says() {
    let text = format!("{TEXT}\n[session_log]\ndir = \"../sessions\"\n");
    let docs = render(plan(&text), &text, &options(&[])).unwrap();
    let pod = deployment_spec(&docs);
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "serve",
            "/etc/airouter/airouter.toml",
            "--listen-address",
            "0.0.0.0"
        ])
    );
    // Relative to the file, which the pod has at /etc/airouter/airouter.toml.
    let sessions = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "sessions")
        .unwrap();
    assert_eq!(sessions["mountPath"], "/etc/sessions");
    assert!(sessions["readOnly"].is_null());
    assert!(pod["volumes"]
        .as_array()
        .unwrap()
        .contains(&json!({ "name": "sessions", "emptyDir": {} })));
}

#[test]
fn a_session_log_inside_the_read_only_config_mount_is_refused() {
    let text = format!("{TEXT}\n[session_log]\ndir = \"sessions\"\n");
    let e = render(plan(&text), &text, &options(&[])).unwrap_err();
    assert!(
        e.contains("[session_log] dir") && e.contains("/etc/airouter/sessions"),
        "{e}"
    );
}

#[test]
fn the_config_secret_projects_each_named_file_beside_the_toml() {
    let named = files::NamedFiles {
        in_secret: vec![("prompts_a.md".into(), "prompts/a.md".into())],
        elsewhere: vec![("../m.gguf".into(), "/etc/m.gguf".into())],
    };
    let docs = render_with_files(plan(TEXT), TEXT, &named, &options(&[])).unwrap();
    assert_eq!(
        deployment_spec(&docs)["volumes"][0]["secret"],
        json!({ "secretName": CONFIG_SECRET, "items": [
            { "key": "airouter.toml", "path": "airouter.toml" },
            { "key": "prompts_a.md", "path": "prompts/a.md" }
        ]})
    );
    let notes = files::notes("conf/airouter.toml", "ai", &named).join("\n");
    assert!(notes.contains(
        "kubectl -n ai create secret generic airouter-config --from-file=airouter.toml=conf/airouter.toml --from-file=prompts_a.md=conf/prompts/a.md"
    ));
    assert!(
        notes.contains("../m.gguf cannot be in the Secret") && notes.contains("at /etc/m.gguf")
    );
}

#[test]
fn the_operator_hears_of_a_loopback_address_and_a_missing_secret() {
    let p = plan("[sidecar]\naddress = \"127.0.0.1\"\n\n[backends.t]\nkind = \"triton\"\nurl = \"grpc://10.0.0.6:8001\"\n\n[[models]]\nname = \"l\"\napis = [\"chat\"]\ntarget = { backend = \"t\", model = \"m\" }\ntriton = { family = \"vllm\", template = \"chatml\" }\n");
    let notes = workload::notes("f.toml", p.sidecar.as_ref().unwrap()).join("\n");
    assert!(notes.contains("listens on 0.0.0.0") && notes.contains("127.0.0.1"));
    assert!(notes.contains("secret_env is not set"));
    let quiet = plan(TEXT);
    let s = quiet.sidecar.as_ref().unwrap();
    assert!(workload::notes("f.toml", s)
        .iter()
        .all(|n| !n.contains("secret_env")));
}
