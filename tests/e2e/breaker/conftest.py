"""Fixtures of the breaker suite: one real Envoy with the release filter in front of a scripted
raw upstream (scripted_upstream.py), whose answers each test chooses byte for byte."""

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2] / "examples"))
from stack import Stack, free_port  # noqa: E402
from .scripted_upstream import ScriptedUpstream  # noqa: E402

SECRET_MODEL = "zeta-secret-7b"
SLASH_MODEL = "acme/zeta-slash-1"
BACKEND_KEY = "sk-breaker-backend-5ecret"
BACKEND_NAMES = [SECRET_MODEL, SLASH_MODEL, "zeta-embed-secret", "zeta-resp-secret", "zeta-cmpl-secret"]
BUDGET_KEYS = ["sk-budget-%d" % i for i in range(12)]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 262144
request_headers_timeout_ms = 2000
idle_timeout_ms = 5000

[admin]
address = "127.0.0.1"
port = {admin}

[backends.s]
kind = "openai"
url = "http://127.0.0.1:{s}/v1"
timeout_ms = 5000

[backends.keyed]
kind = "openai"
url = "http://127.0.0.1:{s}/k/v1"
api_key = "{backend_key}"
timeout_ms = 5000

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "s", model = "{secret}" }}

[[models]]
name = "cmpl"
apis = ["completions"]
target = {{ backend = "s", model = "zeta-cmpl-secret" }}

[[models]]
name = "slashy"
apis = ["chat"]
target = {{ backend = "s", model = "{slash}" }}

[[models]]
name = "keyed"
apis = ["chat"]
target = {{ backend = "keyed", model = "{secret}" }}

[[models]]
name = "emb"
apis = ["embeddings"]
target = {{ backend = "s", model = "zeta-embed-secret" }}

[[models]]
name = "resp"
apis = ["responses"]
target = {{ backend = "s", model = "zeta-resp-secret" }}

[[models]]
name = "pass-*"
apis = ["chat"]
target = {{ backend = "s" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "restricted"
key = "sk-restricted"
models = ["chat"]
{budget_keys}
"""


class Brk:
    def __init__(self, stack, port, admin, upstream):
        self.stack = stack
        self.port = port
        self.admin = "http://127.0.0.1:%d" % admin
        self.base = "http://127.0.0.1:%d" % port
        self.up = upstream

    def reset(self):
        self.up.requests.clear()
        self.up.script.clear()

    def raw(self, method, path, body=None, headers=None, key="sk-test"):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"content-type": "application/json"} if data is not None else {}
        if key:
            hdrs["authorization"] = "Bearer " + key
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, list(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, list(e.headers.items()), e.read()

    def send_raw(self, data, timeout=5.0, read_until_close=True):
        """Raw bytes on a fresh connection; everything Envoy answers until it closes or times out."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.sendall(data)
        out = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                out += part
        except socket.timeout:
            pass
        s.close()
        return out

    def admin_get(self, path):
        with urllib.request.urlopen(self.admin + path, timeout=10) as r:
            return r.read()

    def client(self, key="sk-test"):
        from openai import OpenAI
        return OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=20)

    def envoy_pid(self):
        return [p for n, p, _ in self.stack.procs if n == "envoy"][0].pid


@pytest.fixture(scope="session")
def brk(tmp_path_factory):
    work = tmp_path_factory.mktemp("breaker")
    stack = Stack(work)
    port, admin, s = free_port(), free_port(), free_port()
    up = ScriptedUpstream(s).start()
    budget = "".join('\n[[keys]]\nname = "budget%d"\nkey = "%s"\ntokens_per_minute = 100\n' % (i, k)
                     for i, k in enumerate(BUDGET_KEYS))
    try:
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, s=s, backend_key=BACKEND_KEY, secret=SECRET_MODEL,
                                        slash=SLASH_MODEL, budget_keys=budget))
        stack.start_envoy(config)
        yield Brk(stack, port, admin, up)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        up.stop()


def leaked(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return [n for n in BACKEND_NAMES + ["zeta", "10.9.8.7"] if n.lower() in text.lower()]


def assert_openai_error(status, body):
    """Checks that `body` is OpenAI's error envelope (exactly its four fields); returns `error`."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise AssertionError("HTTP %s with a body that is not JSON: %r" % (status, body[:300]))
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), (status, body[:300])
    assert set(doc["error"]) == {"message", "type", "param", "code"}, doc
    return doc["error"]
