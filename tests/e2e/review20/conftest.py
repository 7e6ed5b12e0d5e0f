"""Fixtures of the issue-20 review probes: the real model (SmolLM2-135M-Instruct) on llama.cpp's
OpenAI server and on Triton (tests/triton/models/llama_chat, through the sidecar), behind real
Envoy and the release filter, as tests/e2e/test_llama_cpp.py and test_triton_llama.py start them,
with one stack for both and budgeted keys to spare (one per probe, so no probe sees another's
charges)."""

import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2] / "examples"))
from stack import ROOT, Stack, free_port, llm_model_path  # noqa: E402
from breaker.conftest import assert_openai_error  # noqa: E402,F401

LLAMA = "tiny"                  # the client's name for the model on llama.cpp's server
LLAMA_BACKEND = "SmolLM2-135M-Instruct"
TRITON = "tiny-triton"          # the client's name for the model on Triton
TRITON_BACKEND = "llama_chat"
TIGHT_TPM = 60                  # a budget one request of the probes below exhausts
BUDGET_KEYS = ["sk-r20-budget-%d" % i for i in range(12)]
WIDE_KEYS = ["sk-r20-wide-%d" % i for i in range(6)]   # budgets that never refuse: charges are read
GREEDY = {"temperature": 0, "seed": 7}

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[backends.llama]
kind = "openai"
url = "http://127.0.0.1:{llama}/v1"
timeout_ms = 60000

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"
timeout_ms = 60000

[[models]]
name = "{llama_model}"
apis = ["chat", "completions", "embeddings"]
target = {{ backend = "llama", model = "{llama_backend}" }}

[[models]]
name = "{triton_model}"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "{triton_backend}" }}
triton = {{ family = "vllm", chat_template_gguf = "{gguf}", stream_text = "delta", max_tokens = 24 }}

[[keys]]
name = "tester"
key = "sk-test"
{budget_keys}
"""


class Real:
    def __init__(self, stack, port, admin, llama):
        self.stack = stack
        self.port = port
        self.base = "http://127.0.0.1:%d/v1" % port
        self.admin = "http://127.0.0.1:%d" % admin
        self.direct = "http://127.0.0.1:%d/v1" % llama

    def client(self, key="sk-test"):
        import openai  # noqa: PLC0415

        return openai.OpenAI(base_url=self.base, api_key=key, max_retries=0, timeout=60)

    def post(self, path, body, key="sk-test", base=None, timeout=60):
        """(status, headers, body text) of one request, errors included."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request((base or self.base) + path, data=data, method="POST",
                                     headers={"content-type": "application/json", "authorization": "Bearer " + key})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def stat(self, name):
        url = self.admin + "/stats?filter=^wasmcustom\\.%s$" % re.escape(name)
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == "wasmcustom." + name:
                    return int(value)
        return 0

    def stat_above(self, name, floor, timeout=5.0):
        deadline = time.monotonic() + timeout
        while (value := self.stat(name)) <= floor and time.monotonic() < deadline:
            time.sleep(0.02)
        return value


@pytest.fixture(scope="session")
def real(tmp_path_factory):
    work = tmp_path_factory.mktemp("review20")
    stack = Stack(work)
    ports = dict(port=free_port(), admin=free_port(), sidecar=free_port(), grpc=free_port(), llama=free_port())
    keys = "".join('\n[[keys]]\nname = "budget%d"\nkey = "%s"\ntokens_per_minute = %d\n' % (i, k, TIGHT_TPM)
                   for i, k in enumerate(BUDGET_KEYS))
    keys += "".join('\n[[keys]]\nname = "wide%d"\nkey = "%s"\ntokens_per_minute = 100000000\n' % (i, k)
                    for i, k in enumerate(WIDE_KEYS))
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(llama_model=LLAMA, llama_backend=LLAMA_BACKEND, triton_model=TRITON,
                                    triton_backend=TRITON_BACKEND, gguf=llm_model_path(), budget_keys=keys, **ports))
    try:
        stack.start_llama_cpp(ports["llama"], LLAMA_BACKEND)
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=[TRITON_BACKEND])
        stack.start_sidecar(config)
        stack.start_envoy(config)
        yield Real(stack, ports["port"], ports["admin"], ports["llama"])
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "real" in item.funcargs:
        report.sections.append(("stack logs", item.funcargs["real"].stack.logs()))


def sse_data(text):
    return [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]


def usage_chunk(text):
    """The usage of the stream's usage chunk (the last JSON event before [DONE])."""
    data = sse_data(text)
    assert data and data[-1] == "[DONE]", text[-500:]
    last = json.loads(data[-2])
    assert last.get("choices") == [] and last.get("usage"), "no usage chunk: %s" % text[-600:]
    return last["usage"]
