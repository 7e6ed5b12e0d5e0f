"""End-to-end fixtures: two demo providers, an unreachable one, and a real Envoy running the
release AI Router filter on a config written for free ports. The openai SDK is the client."""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from stack import Stack, free_port  # noqa: E402

PROVIDER_B_KEY = "sk-provider-b-secret"

# Every name a backend knows a model by; none may ever reach a client.
BACKEND_NAMES = [
    "acme-llama-3-8b-instruct", "acme-embed-v2", "acme-voice-1", "acme-whisper-large",
    "bravo-chat-70b", "acme-resp", "acme-diffusion", "acme-guard", "cut-stream", "fail-429", "fail-500", "fail-400", "slow-5", "ghost-model",
]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 262144

[admin]
address = "127.0.0.1"
port = {admin}

[backends.provider-a]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
timeout_ms = 2500

[backends.provider-b]
kind = "openai"
url = "http://127.0.0.1:{b}/openai/v1"
api_key_env = "AIROUTER_TEST_PROVIDER_B_KEY"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 500

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "provider-a", model = "acme-llama-3-8b-instruct" }}

[[models]]
name = "embed"
apis = ["embeddings"]
target = {{ backend = "provider-a", model = "acme-embed-v2" }}

[[models]]
name = "tts"
apis = ["audio.speech"]
target = {{ backend = "provider-a", model = "acme-voice-1" }}

[[models]]
name = "stt"
apis = ["audio.transcriptions", "audio.translations"]
target = {{ backend = "provider-b", model = "acme-whisper-large" }}

[[models]]
name = "bravo-*"
apis = ["chat"]
target = {{ backend = "provider-b", model = "bravo-chat-70b" }}

[[models]]
name = "assistant"
apis = ["responses"]
target = {{ backend = "provider-a", model = "acme-resp" }}

[[models]]
name = "painter"
apis = ["images.generations"]
target = {{ backend = "provider-a", model = "acme-diffusion" }}

[[models]]
name = "guard"
apis = ["moderations"]
target = {{ backend = "provider-a", model = "acme-guard" }}

[[models]]
name = "limited"
apis = ["chat"]
target = {{ backend = "provider-a", model = "fail-429" }}

[[models]]
name = "broken"
apis = ["chat"]
target = {{ backend = "provider-a", model = "fail-500" }}

[[models]]
name = "picky"
apis = ["chat"]
target = {{ backend = "provider-a", model = "fail-400" }}

[[models]]
name = "sleepy"
apis = ["chat"]
target = {{ backend = "provider-a", model = "slow-5" }}

[[models]]
name = "cut"
apis = ["chat"]
target = {{ backend = "provider-a", model = "cut-stream" }}

[[models]]
name = "unreachable"
apis = ["chat"]
target = {{ backend = "dead", model = "ghost-model" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "restricted"
key = "sk-restricted"
models = ["chat"]

[[keys]]
name = "metered"
key = "sk-metered"
requests_per_minute = 2

[[keys]]
name = "budgeted"
key = "sk-budgeted"
tokens_per_minute = 20
"""


class Env:
    def __init__(self, stack, port, a, b):
        self.stack = stack
        self.base = "http://127.0.0.1:%d" % port
        self.provider_a = "http://127.0.0.1:%d" % a
        self.provider_b = "http://127.0.0.1:%d" % b

    def client(self, key="sk-test"):
        from openai import OpenAI
        return OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=20)

    def raw(self, method, path, body=None, headers=None, key="sk-test"):
        """(status, headers, body bytes) of one request, errors included."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"content-type": "application/json"} if data is not None else {}
        if key:
            hdrs["authorization"] = "Bearer " + key
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def upstream_requests(self, provider):
        with urllib.request.urlopen(provider + "/__requests", timeout=5) as r:
            return json.loads(r.read())

    def clear_upstream(self):
        for p in (self.provider_a, self.provider_b):
            urllib.request.urlopen(urllib.request.Request(p + "/__requests", method="DELETE"), timeout=5).read()


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    stack = Stack(work)
    port, admin, a, b, dead = (free_port() for _ in range(5))
    try:
        stack.start_backend("provider-a", a, "/v1", record=True)
        stack.start_backend("provider-b", b, "/openai/v1", api_key=PROVIDER_B_KEY, record=True)
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, a=a, b=b, dead=dead))
        stack.start_envoy(config, {"AIROUTER_TEST_PROVIDER_B_KEY": PROVIDER_B_KEY})
        yield Env(stack, port, a, b)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("env", "llama", "real_triton", "rtr"):
            if name in item.funcargs:
                report.sections.append(("stack logs", item.funcargs[name].stack.logs()))


def assert_no_backend_names(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    leaked = [n for n in BACKEND_NAMES if n in text]
    assert not leaked, "backend model names reached the client: %s in %r" % (leaked, text[:2000])
