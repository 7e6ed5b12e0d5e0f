"""The filter configured by the JSON form of airouter.toml, as Istio's TrafficExtension/WasmPlugin
and Envoy Gateway pass it (a Struct serialized as JSON text): real Envoy with the release module
on a bootstrap rendered with `airouter envoy --plugin-config json`, for the listener's filter and
the failover cluster's upstream filter alike; the openai SDK as the client."""

import json
import os
import sys
from pathlib import Path

import pytest
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from stack import Stack, envoy_binary, filter_configuration, free_port, wait_http  # noqa: E402

KEY = "sk-json-client"
PROVIDER_KEY = "sk-json-provider"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.plain]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.keyed]
kind = "openai"
url = "http://127.0.0.1:{b}/openai/v1"
api_key_env = "AIROUTER_JSON_PROVIDER_KEY"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 500

[[models]]
name = "json-chat"
apis = ["chat"]
target = {{ backend = "keyed", model = "acme-llama-3-8b-instruct" }}

[[models]]
name = "json-failover"
apis = ["chat"]
targets = [{{ backend = "dead", model = "acme-llama-3-8b-instruct" }}, {{ backend = "plain", model = "bravo-chat-70b" }}]

[[keys]]
name = "json-client"
key = "{key}"
"""


def wasm_configurations(node):
    """Every AI Router filter's configuration text in a rendered bootstrap (either build)."""
    if isinstance(node, dict):
        slot = filter_configuration(node)
        if slot is not None:
            holder, key = slot
            yield holder[key]
        for v in node.values():
            yield from wasm_configurations(v)
    elif isinstance(node, list):
        for v in node:
            yield from wasm_configurations(v)


@pytest.fixture(scope="module")
def json_stack():
    stack = Stack()
    ports = dict(port=free_port(), admin=free_port(), a=free_port(), b=free_port(), dead=free_port(), key=KEY)
    config = stack.workdir / "airouter.toml"
    config.write_text(CONFIG.format(**ports))
    try:
        stack.start_backend("plain", ports["a"], "/v1")
        stack.start_backend("keyed", ports["b"], "/openai/v1", api_key=PROVIDER_KEY)
        bootstrap = stack.render(config, "envoy-json.json", ["--plugin-config", "json"])
        env = {"AIROUTER_JSON_PROVIDER_KEY": PROVIDER_KEY, **stack.env_of(bootstrap)}
        code, output = stack.validate(bootstrap, env={**os.environ, **env})
        assert code == 0, output[-3000:]
        argv = [envoy_binary(), "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1", "-l", "warning"]
        proc, log = stack._spawn("envoy-json", argv, {**os.environ, **env})
        wait_http("http://127.0.0.1:%d/ready" % ports["admin"], proc=proc, log=log)
        yield stack, bootstrap, ports
    finally:
        stack.stop()


def test_the_bootstrap_carries_the_json_form_to_both_filters(json_stack):
    _, bootstrap, _ = json_stack
    values = list(wasm_configurations(json.loads(Path(bootstrap).read_text())))
    assert len(values) == 2  # the listener's filter and the failover cluster's upstream filter
    for v in values:
        doc = json.loads(v)
        assert doc["backends"]["keyed"]["api_key_env"] == "AIROUTER_JSON_PROVIDER_KEY"
        assert "key" not in doc["keys"][0]  # a digest, as in the TOML form
    assert PROVIDER_KEY not in Path(bootstrap).read_text() and KEY not in Path(bootstrap).read_text()


def test_requests_are_authenticated_routed_and_renamed(json_stack):
    _, _, ports = json_stack
    client = OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key=KEY, max_retries=0)
    answer = client.chat.completions.create(model="json-chat", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "json-chat"
    assert "acme" not in answer.model_dump_json()
    bad = OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key="sk-wrong", max_retries=0)
    with pytest.raises(Exception) as refused:
        bad.chat.completions.create(model="json-chat", messages=[{"role": "user", "content": "hi"}])
    assert getattr(refused.value, "status_code", None) == 401


def test_failover_runs_the_upstream_filter_from_the_json_form(json_stack):
    _, _, ports = json_stack
    client = OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key=KEY, max_retries=0)
    answer = client.chat.completions.create(model="json-failover", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "json-failover"
    assert "bravo" not in answer.model_dump_json()
