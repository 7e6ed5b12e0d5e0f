"""The configuration's two forms (TOML and the JSON Istio and Envoy Gateway pass) and what Envoy's
own copy may hold, from the #18 review: in real Envoy (either build, `AIROUTER_FILTER`), a
configuration written by hand with a plain backend key, client key or Redis password is refused
at load, naming each key and showing none of the secrets; on the command line, the JSON form is
refused where TOML is (a key written twice), its errors point into the JSON file itself (line,
column, dotted key), and every command takes what `airouter check` takes."""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from stack import AIROUTER, FILTER_ARGS, Stack, envoy_binary, filter_configuration, free_port  # noqa: E402

BACKEND_KEY = "sk-backend-plaintext-r18"
CLIENT_KEY = "sk-client-plaintext-r18"
REDIS_PASSWORD = "redis-pw-r18"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
[admin]
address = "127.0.0.1"
port = {admin}
[backends.demo]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
api_key_env = "AIROUTER_R18_KEY"
[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "demo", model = "acme-chat-7b" }}
[[keys]]
name = "team"
sha256 = "{digest}"
"""


def plain_secrets(node):
    """Every filter configuration of the bootstrap as someone writing Istio's `pluginConfig` by
    hand might: the backend's key, a client key and an admin key in plain text."""
    if isinstance(node, dict):
        slot = filter_configuration(node)
        if slot is not None:
            holder, key = slot
            c = json.loads(holder[key])
            del c["backends"]["demo"]["api_key_env"]
            c["backends"]["demo"]["api_key"] = BACKEND_KEY
            c["keys"] = [{"name": "team", "key": CLIENT_KEY}]
            c["admin_keys"] = [{"name": "ops", "key": CLIENT_KEY + "-admin"}]
            holder[key] = json.dumps(c)
        for v in node.values():
            plain_secrets(v)
    elif isinstance(node, list):
        for v in node:
            plain_secrets(v)


def test_envoy_refuses_plain_secrets_in_its_configuration():
    stack = Stack()
    ports = dict(port=free_port(), admin=free_port(), a=free_port())
    try:
        config = stack.workdir / "airouter.toml"
        config.write_text(CONFIG.format(digest="0" * 64, **ports))
        bootstrap = stack.render(config, "b.json", ["--plugin-config", "json"])
        doc = json.loads(bootstrap.read_text())
        plain_secrets(doc)
        bootstrap.write_text(json.dumps(doc))
        argv = [envoy_binary(), "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1"]
        proc, log = stack._spawn("envoy", argv, dict(os.environ, AIROUTER_R18_KEY="unused"))
        assert proc.wait(timeout=60) != 0, "Envoy started with plain secrets in its configuration"
        text = log.read_text(errors="replace")
        for key in ("backends.demo.api_key", "keys[0].key", "admin_keys[0].key"):
            assert key in text, text[-3000:]
        assert "/config_dump" in text
        assert BACKEND_KEY not in text and CLIENT_KEY not in text
    finally:
        stack.stop()


BASE = {
    "listener": {"port": 8080},
    "backends": {"b": {"kind": "openai", "url": "http://127.0.0.1:9/v1"}},
    "models": [{"name": "m", "apis": ["chat"], "target": {"backend": "b"}}],
}


def airouter(*args):
    return subprocess.run([str(AIROUTER), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_a_json_key_written_twice_is_refused_as_in_toml(tmp_path):
    toml = tmp_path / "dup.toml"
    toml.write_text('[listener]\nport = 8080\nport = 9090\n')
    assert "duplicate key" in airouter("check", toml).stderr
    js = tmp_path / "dup.json"
    js.write_text(json.dumps(BASE).replace('"port": 8080', '"port": 8080, "port": 9090'))
    out = airouter("check", js)
    assert out.returncode != 0 and "%s:1:" % js in out.stderr, out.stderr
    assert "listener.port: duplicate key" in out.stderr, out.stderr


def test_a_json_error_is_at_the_json_files_line_and_key(tmp_path):
    doc = json.loads(json.dumps(BASE))
    doc["models"][0]["target"]["backend"] = "nope"
    js = tmp_path / "bad.json"
    text = json.dumps(doc, indent=2)
    js.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if '"nope"' in l)
    err = airouter("check", js).stderr
    assert err.startswith("%s:%d:" % (js, line)), err
    assert "models[0].target.backend" in err and "nope" in err, err
    # A type error in a one-line file: the key, not the value.
    doc = json.loads(json.dumps(BASE))
    doc["listener"]["address"] = 1
    js.write_text(json.dumps(doc))
    err = airouter("check", js).stderr
    assert err.startswith("%s:1:" % js) and "listener.address" in err, err


def test_every_command_takes_the_json_form_check_takes(tmp_path):
    js = tmp_path / "ok.json"
    js.write_text(json.dumps(BASE))
    assert airouter("check", js).returncode == 0
    envoy = airouter("envoy", js, *FILTER_ARGS)
    assert envoy.returncode == 0, envoy.stderr
    assert "static_resources" in envoy.stdout
    istio = airouter("istio", js, "--wasm-image", "oci://registry.example/airouter:1")
    assert istio.returncode == 0, istio.stderr
