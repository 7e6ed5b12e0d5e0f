"""`airouter istio` and `airouter envoy-gateway` on examples/airouter.toml, validated offline:
Kubernetes' own kinds against Kubernetes' OpenAPI schemas (kubernetes-validate, strict), Istio's
and Envoy Gateway's kinds field by field against their API definitions (api_fields.py), and the
Envoy configuration inside the EnvoyFilter's patches by real Envoy 1.40 (`envoy --mode
validate` on a bootstrap assembled from exactly those values, as Istio would apply them to a
gateway). No secret may appear in any manifest."""

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from kubernetes_validate.utils import validate as validate_kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from api_fields import schema_for  # noqa: E402
from stack import AIROUTER, ROOT, WASM, envoy_binary, free_port  # noqa: E402

CONFIG = ROOT / "examples" / "airouter.toml"
# Every section the renderer has a part for: an https backend, failover, Triton, [global_limits],
# [session_log].
ALL_FEATURES = ROOT / "sidecar" / "tests" / "configs" / "all_features.toml"
IMAGE = "oci://registry.example/airouter/filter:0.1.0"
KUBERNETES = "1.33.0"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
# Secrets of the demo: the client key (its digest is in the file) and the hosted backend's key.
SECRETS = ["sk-demo-hosted-backend", "sk-ant-demo-backend", "sk-demo\""]


def render(command, *extra, config=CONFIG):
    out = subprocess.run([str(AIROUTER), command, str(config), "--wasm-image", IMAGE, *extra],
                         capture_output=True, text=True, check=False,
                         env={"PATH": "/usr/bin:/bin", "DEMO_HOSTED_KEY": "sk-demo-hosted-backend",
                              "DEMO_ANTHROPIC_KEY": "sk-ant-demo-backend"})
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def istio_for(config):
    text, stderr = render("istio", "--namespace", "ai", "--wasm-sha256", "0" * 64, config=config)
    return text, stderr, [d for d in yaml.safe_load_all(text) if d is not None]


@pytest.fixture(scope="module")
def istio():
    return istio_for(CONFIG)


@pytest.fixture(scope="module", params=[CONFIG, ALL_FEATURES], ids=["example", "all_features"])
def each_istio(request):
    return istio_for(request.param)


def test_every_object_has_the_fields_its_api_defines(istio):
    _, _, docs = istio
    _, _, all_features = istio_for(ALL_FEATURES)
    older, _ = render("istio", "--api", "wasm-plugin")
    gateway, _ = render("envoy-gateway", "--gateway", "ai-gateway")
    gateway_all_features, _ = render("envoy-gateway", config=ALL_FEATURES)
    everything = (docs + all_features + list(yaml.safe_load_all(older)) + list(yaml.safe_load_all(gateway))
                  + list(yaml.safe_load_all(gateway_all_features)))
    checked = set()
    for doc in filter(None, everything):
        schema = schema_for(doc)
        if schema is None:
            validate_kubernetes(doc, KUBERNETES, strict=True)
        else:
            jsonschema.validate(doc, schema)
        checked.add(doc["kind"])
    assert checked >= {"TrafficExtension", "WasmPlugin", "EnvoyFilter", "Gateway", "VirtualService",
                       "ServiceEntry", "DestinationRule", "Deployment", "Service", "EnvoyExtensionPolicy",
                       "EnvoyProxy"}


def test_a_misspelt_field_would_be_caught(istio):
    _, _, docs = istio
    broken = copy.deepcopy(docs[0])
    broken["spec"]["wasm"]["pluginConfg"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema_for(broken))
    broken = copy.deepcopy(docs[0])
    broken["spec"]["phase"] = "FIRST"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema_for(broken))


def test_no_secret_is_written_and_the_needed_variables_are_named(istio):
    text, stderr, _ = istio
    for secret in SECRETS:
        assert secret not in text
    assert "DEMO_HOSTED_KEY" in stderr and "DEMO_ANTHROPIC_KEY" in stderr and "airouter-keys" in stderr


def test_the_plugin_config_is_the_json_form_of_the_file_envoy_holds(istio):
    _, _, docs = istio
    config = docs[0]["spec"]["wasm"]["pluginConfig"]
    assert config["listener"]["port"] == 8080
    assert config["backends"]["demo-hosted"]["api_key_env"] == "DEMO_HOSTED_KEY"
    assert all("key" not in k for k in config["keys"])  # digests only


def patches(docs, apply_to):
    envoy_filter = next(d for d in docs if d["kind"] == "EnvoyFilter")
    return [p for p in envoy_filter["spec"]["configPatches"] if p["applyTo"] == apply_to]


def local_code(typed_config):
    """The Wasm configuration with the module read from the local build, as Istio's agent does
    with the image it pulled."""
    typed = copy.deepcopy(typed_config)
    typed["config"]["vm_config"]["code"] = {"local": {"filename": str(WASM)}}
    return typed


def needed_variables(stderr):
    """The variables `airouter istio` says the proxy's environment needs."""
    found = re.search(r"the proxy's environment needs (.*) \(from the Secret", stderr)
    return found.group(1).split(", ") if found else []


def test_envoy_accepts_the_patch_values_as_istio_applies_them(each_istio, tmp_path):
    _, stderr, docs = each_istio
    listener_filter, upstream_filter = (p["patch"]["value"] for p in patches(docs, "EXTENSION_CONFIG"))
    assert listener_filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] is True
    clusters = []
    for p in patches(docs, "CLUSTER"):
        c = copy.deepcopy(p["patch"]["value"])
        options = c.get("typed_extension_protocol_options", {}).get(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
        for f in options.get("http_filters") or []:
            if f.get("name") == upstream_filter["name"]:
                assert f["config_discovery"]["type_urls"] == [WASM_TYPE]
                del f["config_discovery"]
                f["typed_config"] = local_code(upstream_filter["typed_config"])
        clusters.append(c)
    hcm = dict(patches(docs, "NETWORK_FILTER")[0]["patch"]["value"]["typed_config"])
    routes = [p["patch"]["value"] for p in patches(docs, "HTTP_ROUTE")]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 404}})
    hcm.update({
        "stat_prefix": "gateway",
        "route_config": {"virtual_hosts": [{"name": "gateway", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {"name": listener_filter["name"], "typed_config": local_code(listener_filter["typed_config"])},
            *[p["patch"]["value"] for p in patches(docs, "HTTP_FILTER")],
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    })
    listener = {
        "name": "gateway",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}},
        **patches(docs, "LISTENER")[0]["patch"]["value"],
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }
    bootstrap = tmp_path / "gateway.json"
    bootstrap.write_text(json.dumps({"static_resources": {"listeners": [listener], "clusters": clusters}}))
    # Validation starts the module on its configuration: it needs the keys in the environment, as
    # the gateway has them from the Secret.
    env = {**os.environ, **{var: "sk-validate" for var in needed_variables(stderr)}}
    out = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(bootstrap), "--disable-hot-restart"],
                         capture_output=True, text=True, check=False, env=env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]


def test_the_sidecar_runs_from_secrets_as_a_non_root_workload(istio):
    _, _, docs = istio
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # In its pod the sidecar listens on every interface, whatever [sidecar] address says.
    assert container["args"] == ["serve", "/etc/airouter/airouter.toml", "--listen-address", "0.0.0.0"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["volumes"][0]["secret"]["secretName"] == "airouter-config"
    service = next(d for d in docs if d["kind"] == "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == {8103, 8106}
    triton = next(p["patch"]["value"] for p in patches(docs, "CLUSTER")
                  if p["patch"]["value"]["name"] == "airouter_backend_demo-triton")
    address = triton["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"]["address"] == "airouter-sidecar.ai.svc.cluster.local"


def test_envoy_gateway_traces_with_the_span_attributes_of_the_rendered_bootstrap():
    text, stderr = render("envoy-gateway", "--namespace", "ai", config=ALL_FEATURES)
    proxy = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "EnvoyProxy")
    assert "spec.infrastructure.parametersRef" in stderr
    tracing = proxy["spec"]["telemetry"]["tracing"]
    bootstrap = subprocess.run([str(AIROUTER), "envoy", str(ALL_FEATURES), "--wasm", str(WASM)],
                               capture_output=True, text=True, check=True).stdout
    hcm = json.loads(bootstrap)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert tracing["tags"] == {t["tag"]: t["value"] for t in hcm["tracing"]["custom_tags"]}
    assert tracing["samplingRate"] == hcm["tracing"]["random_sampling"]["value"]
    merged = yaml.safe_load(proxy["spec"]["bootstrap"]["value"])
    stats = json.loads(bootstrap)["stats_config"]
    assert merged["stats_config"]["stats_tags"] == stats["stats_tags"]
    assert merged["stats_config"]["histogram_bucket_settings"] == stats["histogram_bucket_settings"]


def test_istio_needs_the_bootstrap_from_istiod_for_its_bootstrap_patch(istio):
    _, stderr, docs = istio
    assert patches(docs, "BOOTSTRAP")[0]["patch"]["operation"] == "MERGE"
    assert "BOOTSTRAP_XDS_AGENT=true" in stderr


DIGEST = "8b2b470c57085a8b16b758aaf74d63c256abaac54d8d7c82c2121da2bb136512"
KEYED = """[listener]
port = 8080

[backends.hosted]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "OPENAI_API_KEY"

[[models]]
name = "m"
apis = ["chat"]
target = { backend = "hosted", model = "gpt-4o" }
"""


def test_envoy_gateway_hands_the_vm_its_keys_pins_the_digest_and_lands_beside_the_quickstart_gateway(tmp_path):
    config = tmp_path / "keyed.toml"
    config.write_text(KEYED)
    text, stderr = render("envoy-gateway", "--gateway", "eg", "--wasm-sha256", "sha256:" + DIGEST, config=config)
    (policy,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "EnvoyExtensionPolicy"]
    jsonschema.validate(policy, schema_for(policy))
    wasm = policy["spec"]["wasm"][0]
    assert wasm["env"] == {"hostKeys": ["OPENAI_API_KEY"]} and "OPENAI_API_KEY" in stderr
    assert wasm["code"]["image"] == {"url": IMAGE.removeprefix("oci://"), "sha256": DIGEST}
    # Envoy Gateway's quickstart puts its Gateway `eg` in `default`.
    assert policy["metadata"]["namespace"] == "default"
    assert all(d["metadata"]["namespace"] == "gw"
               for d in yaml.safe_load_all(render("envoy-gateway", "--namespace", "gw")[0]) if d)


def test_istio_takes_the_digest_as_pack_wasm_prints_it():
    _, _, bare = istio_for(CONFIG)
    text, _ = render("istio", "--wasm-sha256", "sha256:" + DIGEST)
    extension = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "TrafficExtension")
    assert extension["spec"]["wasm"]["sha256"] == DIGEST
    assert extension["metadata"]["namespace"] == "istio-system"
    assert bare[0]["spec"]["phase"] == "AUTHN"


def test_every_subcommand_prints_its_usage_on_help():
    for command in ("istio", "envoy-gateway", "envoy", "serve", "check"):
        out = subprocess.run([str(AIROUTER), command, "--help"], capture_output=True, text=True, check=False)
        assert out.returncode == 0 and "airouter istio FILE" in out.stdout, (command, out.stderr)


def test_the_sidecar_pod_is_reachable_and_the_operator_told_what_it_lacks(istio):
    _, stderr, docs = istio
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--listen-address", "0.0.0.0"]
    # examples/airouter.toml: [sidecar] address = 127.0.0.1 and no secret_env.
    assert 'not on [sidecar] address = "127.0.0.1"' in stderr
    assert "[sidecar] secret_env is not set" in stderr


def test_the_session_log_gets_a_writable_volume_where_the_sidecar_writes(istio):
    _, _, docs = istio
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    # dir is relative to the file, which the pod has at /etc/airouter/airouter.toml.
    written = os.path.normpath(os.path.join("/etc/airouter", tomllib.loads(CONFIG.read_text())["session_log"]["dir"]))
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == written)
    assert not mount.get("readOnly")
    assert next(v for v in pod["volumes"] if v["name"] == mount["name"]) == {"name": mount["name"], "emptyDir": {}}


def test_the_files_the_file_names_resolve_in_the_pod_as_here(istio, tmp_path):
    """The config Secret made with the command `airouter istio` prints, projected as the
    Deployment's volume says, plus what it says the Secret cannot hold at the paths it names: the
    file checks there (prompts, chat templates) as it does here."""
    _, stderr, docs = istio
    command = re.search(r"kubectl .*create secret generic airouter-config .*", stderr).group(0)
    data = dict(arg.removeprefix("--from-file=").split("=", 1) for arg in shlex.split(command)
                if arg.startswith("--from-file="))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "config")["secret"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config")["mountPath"]
    assert {i["key"] for i in volume["items"]} == set(data)
    root = tmp_path / "pod"
    for item in volume["items"]:
        target = root / mount.lstrip("/") / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(data[item["key"]]).read_bytes())
    elsewhere = re.findall(r": (\S+) cannot be in the Secret airouter-config .* must hold it at (\S+)", stderr)
    assert elsewhere  # the demo's GGUF model, beside the repository
    for written, there in elsewhere:
        target = root / there.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((CONFIG.parent / written).resolve())
    out = subprocess.run([str(AIROUTER), "check", str(root / mount.lstrip("/") / "airouter.toml")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_the_grpc_client_api_is_said_to_be_outside_the_istio_recipe():
    _, stderr, docs = istio_for(ALL_FEATURES)
    assert "[grpc_api] is not part of the Istio recipe" in stderr
    assert all(p["patch"]["value"]["name"] != "airouter_grpc_api" for p in patches(docs, "CLUSTER"))
