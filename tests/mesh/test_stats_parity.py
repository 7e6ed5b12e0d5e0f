"""The filter's Prometheus series on an Istio or Envoy Gateway proxy are those of `airouter envoy`.

Real Envoy 1.40 with the release filter, the demo backend as the provider, three Envoys from the
same configuration (and a fourth, the control: Istio's settings without the patch):
- `airouter envoy`'s bootstrap as rendered (the reference);
- the same with Istio's stats settings in place of ours, merged with the `EnvoyFilter`'s
  `BOOTSTRAP` patch (`airouter istio`). Istio's settings, from its bootstrap template
  (istio/istio `tools/packaging/common/envoy_bootstrap.json`, `pkg/bootstrap/config.go`): Envoy's
  default tags off, its own tags, and a stats inclusion list (whose required prefix `wasm` keeps
  the filter's `wasmcustom.*` stats);
- the same without a `stats_config` (Envoy Gateway's bootstrap sets none), merged with the
  `EnvoyProxy`'s `bootstrap.value` (`airouter envoy-gateway`).
istiod (`proto.Merge`) and Envoy Gateway (`type: Merge`) merge those values into the proxy's
bootstrap as protobufs merge, which is what Envoy's `--config-yaml` does with the bootstrap of
`-c`, so each Envoy is started that way. The same requests go through all four; the
`airouter_*` and `gen_ai_*` series (names, labels, bucket boundaries) of the first three must be
the same, and the control's must not.
"""

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from stack import AIROUTER, Stack, envoy_binary, free_port, wait_http  # noqa: E402

KEY = "sk-parity-client"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.demo]
kind = "openai"
url = "http://127.0.0.1:{backend}/v1"

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "demo", model = "acme-chat-7b" }}

[[keys]]
name = "parity-team"
key = "{key}"

[telemetry]
"""

# Istio's bootstrap `stats_config`, in substance: no Envoy default tags, tags of its own, and its
# inclusion list (the required prefixes and suffixes, `reporter=`, `component`, `istio`).
ISTIO_STATS_CONFIG = {
    "use_all_default_tags": False,
    "stats_tags": [
        {"tag_name": "cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
        {"tag_name": "tcp_prefix", "regex": r"^tcp\.((.*?)\.)\w+?$"},
        {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
        {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
        {"tag_name": "http_conn_manager_prefix", "regex": r"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"},
        {"tag_name": "cache", "regex": r"(cache\.(.+?)\.)"},
        {"tag_name": "component", "regex": r"(component\.(.+?)\.)"},
        {"tag_name": "tag", "regex": r"(tag\.(.+?);\.)"},
        {"tag_name": "wasm_filter", "regex": r"(wasm_filter\.(.+?)\.)"},
    ],
    "stats_matcher": {"inclusion_list": {"patterns": [
        *({"prefix": p} for p in ("reporter=", "cluster_manager", "listener_manager", "server",
                                  "cluster.xds-grpc", "wasm", "component", "istio")),
        *({"suffix": s} for s in ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")),
        {"safe_regex": {"regex": r"vhost\.*\.route\.*"}},
    ]}},
}


def control_plane_values(config):
    """The `EnvoyFilter`'s `BOOTSTRAP` patch value and the `EnvoyProxy`'s bootstrap value for
    `config`, as `airouter istio` and `airouter envoy-gateway` render them."""
    def render(command):
        out = subprocess.run([str(AIROUTER), command, str(config), "--wasm-image", "oci://registry.example/f:1"],
                             capture_output=True, text=True, check=True)
        return [d for d in yaml.safe_load_all(out.stdout) if d]
    envoy_filter = next(d for d in render("istio") if d["kind"] == "EnvoyFilter")
    istio = next(p["patch"]["value"] for p in envoy_filter["spec"]["configPatches"] if p["applyTo"] == "BOOTSTRAP")
    envoy_proxy = next(d for d in render("envoy-gateway") if d["kind"] == "EnvoyProxy")
    return istio, yaml.safe_load(envoy_proxy["spec"]["bootstrap"]["value"])


def start(s, work, name, backend, stats_config, merge):
    """Envoy for the demo configuration on ports of its own, its `stats_config` replaced (or
    removed, when None) and `merge` merged into its bootstrap; returns its ports."""
    ports = {"port": free_port(), "admin": free_port()}
    config = work / (name + ".toml")
    config.write_text(CONFIG.format(key=KEY, backend=backend, **ports))
    bootstrap = s.render(config, name + ".json")
    doc = json.loads(bootstrap.read_text())
    doc.pop("stats_config")
    if stats_config is not None:
        doc["stats_config"] = stats_config
    bootstrap.write_text(json.dumps(doc))
    argv = [envoy_binary(), "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1", "-l", "warning"]
    if merge is not None:
        argv += ["--config-yaml", json.dumps(merge)]
    proc, log = s._spawn(name, argv)
    wait_http("http://127.0.0.1:%d/ready" % ports["admin"], proc=proc, log=log)
    return ports


def series(ports):
    """The filter's series on Envoy's Prometheus endpoint, without their values, once the GenAI
    histograms show the requests (Envoy merges histograms when it flushes stats, every 5 s)."""
    url = "http://127.0.0.1:%d/stats/prometheus" % ports["admin"]
    deadline = time.monotonic() + 20
    while True:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        # Tagged (`NAME_count{...}`) or not (`NAME_TAG_VALUE..._count`).
        found = re.search(r"^gen_ai_server_time_to_first_token\S*_count(\{.*\})? [1-9]", text, re.M)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith(("airouter_", "gen_ai_"))}


def requests(ports):
    client = OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key=KEY, max_retries=0)
    answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "count me"}])
    assert answer.model == "chat"
    chunks = list(client.chat.completions.create(
        model="chat", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream several words to me please"}]))
    assert any(c.usage for c in chunks)


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    work = tmp_path_factory.mktemp("stats-parity")
    s = Stack(work)
    try:
        backend = free_port()
        s.start_backend("demo", backend)
        probe = work / "probe.toml"
        probe.write_text(CONFIG.format(key=KEY, backend=backend, port=1, admin=2))
        istio, envoy_gateway = control_plane_values(probe)
        reference = json.loads(s.render(probe, "reference.json").read_text())["stats_config"]
        yield {
            "airouter envoy": start(s, work, "reference", backend, reference, None),
            "istio": start(s, work, "istio", backend, ISTIO_STATS_CONFIG, istio),
            "envoy gateway": start(s, work, "envoy-gateway", backend, None, envoy_gateway),
            # The control: Istio's settings alone.
            "istio without the patch": start(s, work, "istio-alone", backend, ISTIO_STATS_CONFIG, None),
        }, s
    finally:
        s.stop()


def test_the_control_planes_proxies_show_the_series_airouter_envoy_shows(proxies):
    ports, s = proxies
    for p in ports.values():
        requests(p)
    seen = {name: series(p) for name, p in ports.items()}
    reference = seen["airouter envoy"]
    # The reference is tagged and bucketed as the conventions say.
    assert 'airouter_model_requests{model="chat"}' in reference, sorted(reference)
    assert any(x.startswith("gen_ai_server_request_duration_milliseconds_bucket{") and 'gen_ai_request_model="chat"' in x
               and 'key_name="parity-team"' in x and 'le="20"' in x for x in reference), sorted(reference)
    assert any(x.startswith("gen_ai_client_token_usage_bucket{") and 'gen_ai_token_type="output"' in x
               and 'le="67108864"' in x for x in reference), sorted(reference)
    for name in ("istio", "envoy gateway"):
        assert seen[name] == reference, (name, sorted(seen[name] ^ reference), s.logs())
    # Without the patch, Istio's proxy names the same stats without their tags.
    alone = seen["istio without the patch"]
    assert alone != reference and not any("gen_ai_request_model=" in x for x in alone), sorted(alone)
