"""Fixtures of the issue-17 review probes: one stack with a fake Anthropic upstream
(`fake_anthropic.py`, in-process, one scripted misbehaviour per backend model `secret-X` behind
the client model `c-X`), the demo OpenAI backend, the real sidecar with the gRPC API, and real
Envoy with the release filter. Everything on free ports."""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MAIN = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(MAIN / "examples"))
sys.path.insert(0, str(MAIN / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from stack import Stack, free_port  # noqa: E402
from fake_anthropic import FakeAnthropic, SECRET_KEY  # noqa: E402

OAI_KEY = "sk-oai-backend-SECRET-1234"
SCEN = ["normal", "crlf", "tool", "badtool", "thinking", "errmid", "529", "429", "400", "401", "413", "html",
        "trunc", "truncjson", "nostop", "noevent", "unknown", "hang", "huge", "big", "jsonct", "ssenon", "cache",
        "500text", "redirect", "gzip", "notmsg", "err200", "empty", "refusal", "pause", "maxtok", "ctx", "errct",
        "hugeusage", "ctstr", "ctobj", "cthtml", "ctsse", "ctgzip", "cterr", "ctneg", "after", "cronly", "errthen",
        "multidata", "evname", "streamusage", "negusage", "ctjson", "ctplain", "gzipsse", "nullmsg", "arrmsg", "idname",
        "escname", "dupkey", "stopnodelta", "badjsonev", "datanoev", "negin", "bigjson", "nousage", "ctypes", "twostart"]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 1048576

[admin]
address = "127.0.0.1"
port = {admin}

[backends.ant]
kind = "anthropic"
url = "http://127.0.0.1:{f}/v1"
api_key_env = "REVIEW_ANT_KEY"
idle_timeout_ms = 3000
timeout_ms = 30000
anthropic = {{ default_max_tokens = 77 }}

[backends.antdrop]
kind = "anthropic"
url = "http://127.0.0.1:{f}/v1"
api_key_env = "REVIEW_ANT_KEY"
anthropic = {{ unsupported_parameters = "drop" }}

[backends.oai]
kind = "openai"
url = "http://127.0.0.1:{o}/v1"
api_key_env = "REVIEW_OAI_KEY"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 300

[sidecar]
address = "127.0.0.1"
port = {sc}
grpc_port = {scg}

[grpc_api]
address = "127.0.0.1"
port = {api}
reflection = true

[discovery]
interval_ms = 1000
timeout_ms = 500
grace_ms = 2000

{models}

[[models]]
name = "cdrop"
apis = ["chat"]
target = {{ backend = "antdrop", model = "secret-normal" }}

[[models]]
name = "gpt"
apis = ["chat", "completions"]
target = {{ backend = "oai", model = "acme-gpt-secret" }}

[[models]]
name = "gpt-429"
apis = ["chat", "completions"]
target = {{ backend = "oai", model = "fail-429" }}

[[models]]
name = "gpt-500"
apis = ["chat"]
target = {{ backend = "oai", model = "fail-500" }}

[[models]]
name = "gpt-400"
apis = ["chat"]
target = {{ backend = "oai", model = "fail-400" }}

[[models]]
name = "gpt-cut"
apis = ["chat"]
target = {{ backend = "oai", model = "cut-stream" }}

[[models]]
name = "gpt-slow"
apis = ["chat"]
target = {{ backend = "oai", model = "slow-4" }}

[[models]]
name = "fo-ant-oai"
apis = ["chat"]
targets = [{{ backend = "ant", model = "secret-529" }}, {{ backend = "oai", model = "acme-gpt-secret" }}]

[[models]]
name = "fo-oai-ant"
apis = ["chat"]
targets = [{{ backend = "oai", model = "fail-500" }}, {{ backend = "ant", model = "secret-normal" }}]

[[models]]
name = "fo-dead-ant"
apis = ["chat"]
targets = [{{ backend = "dead", model = "ghost-model" }}, {{ backend = "ant", model = "secret-tool" }}]

[[models]]
name = "ant-*"
apis = ["chat"]
target = {{ backend = "ant" }}

[[models]]
name = "hosted-*"
apis = ["chat"]
target = {{ backend = "oai" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "restricted"
key = "sk-restricted"
models = ["gpt"]

[[keys]]
name = "metered"
key = "sk-metered"
requests_per_minute = 1

[[keys]]
name = "budget"
key = "sk-budget"
tokens_per_minute = 100000
"""

BACKEND_SECRETS = ["secret-", "acme-gpt-secret", SECRET_KEY, OAI_KEY, "10.1.2.3", "10.0.0.", "10.2.3.4",
                   "internal.example", "gpu-", "api-7", "SIGSECRET_NOT", "req_SECRET", "msg_01SECRETID", "org_SECRET",
                   "fail-429", "fail-500", "fail-400", "cut-stream"]


def leaks(data):
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    return [s for s in BACKEND_SECRETS if s in text]


class Env:
    def __init__(self, stack, ports, fake, pb, pb_grpc):
        self.stack, self.ports, self.fake = stack, ports, fake
        self.base = "http://127.0.0.1:%d" % ports["port"]
        self.pb, self.pb_grpc = pb, pb_grpc
        self.grpc_target = "127.0.0.1:%d" % ports["api"]

    def raw(self, method, path, body=None, headers=None, key="sk-test", timeout=30):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"content-type": "application/json"} if data is not None else {}
        if key:
            hdrs["authorization"] = "Bearer " + key
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def oai(self, key="sk-test"):
        from openai import OpenAI
        return OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=30)

    def ant(self, key="sk-test", **kw):
        import anthropic
        return anthropic.Anthropic(base_url=self.base, api_key=key, max_retries=0, timeout=30, **kw)

    def oai_requests(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/__requests" % self.ports["o"], timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    from grpc_stubs import compile_stubs
    work = tmp_path_factory.mktemp("stack")
    pb, pb_grpc = compile_stubs(tmp_path_factory.mktemp("stubs"))
    stack = Stack(work)
    ports = {n: free_port() for n in ["port", "admin", "f", "o", "dead", "sc", "scg", "api"]}
    fake = FakeAnthropic(ports["f"]).start()
    models = "\n".join('[[models]]\nname = "c-%s"\napis = ["chat"]\ntarget = { backend = "ant", model = "secret-%s" }\n' % (s, s)
                       for s in SCEN)
    try:
        stack.start_backend("oai", ports["o"], "/v1", api_key=OAI_KEY, record=True,
                            models=("hosted-alpha:1700000000:acme", "other-beta", "hosted-\u202egamma"))
        cfg = work / "airouter.toml"
        cfg.write_text(CONFIG.format(models=models, **ports))
        envs = {"REVIEW_ANT_KEY": SECRET_KEY, "REVIEW_OAI_KEY": OAI_KEY}
        stack.start_sidecar(cfg, envs)
        stack.start_envoy(cfg, envs)
        # wait for the grpc listener
        import grpc
        ch = grpc.insecure_channel("127.0.0.1:%d" % ports["api"])
        grpc.channel_ready_future(ch).result(timeout=20)
        ch.close()
        time.sleep(1.5)
        yield Env(stack, ports, fake, pb, pb_grpc)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        fake.stop()
