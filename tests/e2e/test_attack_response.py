"""Attacks on the response side, in real Envoy with the release filter: a backend that leaks its
model names, URL and provider headers everywhere (`leaky_backend.py`), one that sends an endless
stream event, and a Responses stream whose usage must be charged (issue 14, items 3, 4 and 8).

Each case asserts what the client saw (no backend name, URL or provider header) and that a
normal request still works after it."""

import gzip
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from conftest import assert_no_backend_names  # noqa: E402
from stack import Stack, free_port, wait_http  # noqa: E402

LEAKY = Path(__file__).resolve().parent / "leaky_backend.py"

# Everything of the backend that must never reach a client.
SECRETS = ["acme-", "10.0.0.5", "leaky", "LeakyFastAPI", "org-leaky"]
# Response headers a client may see (Envoy adds date and server after the filter).
CLIENT_HEADERS = {"content-type", "content-length", "content-encoding", "cache-control", "date",
                  "server", "transfer-encoding", "connection", "keep-alive", "retry-after",
                  "retry-after-ms", "x-should-retry", "x-envoy-upstream-service-time"}

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.leaky]
kind = "openai"
url = "http://127.0.0.1:{leaky}/v1"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 300

[[models]]
name = "json"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-json" }}

[[models]]
name = "sse"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-sse" }}

[[models]]
name = "err"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-error" }}

[[models]]
name = "text"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-text" }}

[[models]]
name = "redirect"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-redirect" }}

[[models]]
name = "gzip"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-gzip" }}

[[models]]
name = "endless"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-leak-endless" }}

[[models]]
name = "failover-json"
apis = ["chat"]
targets = [{{ backend = "dead", model = "acme-dead" }}, {{ backend = "leaky", model = "acme-leak-json" }}]

[[models]]
name = "failover-sse"
apis = ["chat"]
targets = [{{ backend = "dead", model = "acme-dead" }}, {{ backend = "leaky", model = "acme-leak-sse" }}]

[[models]]
name = "assistant"
apis = ["responses"]
target = {{ backend = "leaky", model = "acme-leak-resp" }}

[[models]]
name = "clean"
apis = ["chat"]
target = {{ backend = "leaky", model = "acme-clean" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "small"
key = "sk-small"
tokens_per_minute = 100

[[keys]]
name = "small-json"
key = "sk-small-json"
tokens_per_minute = 100
"""


class Env:
    def __init__(self, stack, port, admin):
        self.stack = stack
        self.base = "http://127.0.0.1:%d" % port
        self.admin = "http://127.0.0.1:%d" % admin

    def client(self, key="sk-test"):
        from openai import OpenAI
        return OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=30)

    def post(self, path, body, key="sk-test"):
        """(status, headers as a list of pairs, body bytes), errors included."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": "Bearer " + key})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers.items(), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.items(), e.read()

    def stat(self, name):
        with urllib.request.urlopen(self.admin + "/stats?filter=" + name, timeout=5) as r:
            text = r.read().decode()
        return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if ":" in line)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("attack-response")
    stack = Stack(work)
    port, admin, leaky, dead = (free_port() for _ in range(4))
    try:
        proc, log = stack._spawn("leaky-backend", [sys.executable, str(LEAKY), "--port", str(leaky)])
        wait_http("http://127.0.0.1:%d/health" % leaky, proc=proc, log=log)
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, leaky=leaky, dead=dead))
        stack.start_envoy(config)
        yield Env(stack, port, admin)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def assert_clean(status, headers, body):
    """Nothing of the backend in what the client got: headers, names, URLs."""
    names = {k.lower() for k, _ in headers}
    assert names <= CLIENT_HEADERS, "provider headers reached the client: %s" % (names - CLIENT_HEADERS)
    seen = json.dumps(headers) + body.decode("utf-8", "replace")
    leaked = [s for s in SECRETS if s in seen]
    assert not leaked, "%s reached the client (HTTP %d): %r" % (leaked, status, seen[:3000])
    assert_no_backend_names(seen)


def assert_normal_request_works(env):
    out = env.client().chat.completions.create(model="clean", messages=[{"role": "user", "content": "hi"}])
    assert out.model == "clean" and out.choices[0].message.content == "fine"


@pytest.mark.parametrize("model", ["json", "failover-json"])
def test_json_leaks_nothing(env, model):
    status, headers, body = env.post("/v1/chat/completions", {"model": model, "messages": []})
    assert status == 200
    assert_clean(status, headers, body)
    v = json.loads(body)
    assert v["model"] == model
    assert v["choices"][0]["message"]["content"] == "model %s overloaded (%s)." % (model, model)
    assert_normal_request_works(env)


@pytest.mark.parametrize("model", ["sse", "failover-sse"])
def test_stream_leaks_nothing_in_any_line(env, model):
    status, headers, body = env.post("/v1/chat/completions", {"model": model, "messages": [], "stream": True})
    assert status == 200
    assert_clean(status, headers, body)
    text = body.decode()
    # Renamed where clients read it; a comment keeps only its colon.
    assert "event: %s.chunk\nid: %s-1\n:\ndata: " % (model, model) in text
    assert "data: plain text from %s\n\n" % model in text
    error = json.loads(text.split("data: ")[3])
    # A backend's own failure text is not the client's: a generic message for its status.
    assert error == {"error": {"message": "The backend is unavailable or overloaded; retry later.", "type": "server_error",
                               "param": None, "code": "503"}}
    assert text.endswith("data: [DONE]\n\n")
    assert_normal_request_works(env)


def test_openai_shaped_error_keeps_only_openai_fields(env):
    status, headers, body = env.post("/v1/chat/completions", {"model": "err", "messages": []})
    assert status == 503
    assert_clean(status, headers, body)
    # A 5xx keeps OpenAI's type and code; its text (which named the backend's URL) is generic.
    assert json.loads(body) == {"error": {"message": "The backend is unavailable or overloaded; retry later.",
                                          "type": "server_error", "param": None, "code": "overloaded"}}
    assert_normal_request_works(env)


def test_text_bodies_are_renamed(env):
    status, headers, body = env.post("/v1/chat/completions", {"model": "text", "messages": []})
    assert status == 200
    assert_clean(status, headers, body)
    assert body == b"transcribed by text: hello"
    assert dict((k.lower(), v) for k, v in headers)["content-length"] == str(len(body))
    assert_normal_request_works(env)


def test_redirects_name_no_backend_url(env):
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(env.base + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "redirect", "messages": []}).encode(),
                                 headers={"content-type": "application/json", "authorization": "Bearer sk-test"})
    try:
        with opener.open(req, timeout=30) as r:
            status, headers, body = r.status, r.headers.items(), r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers.items(), e.read()
    # No OpenAI API redirects: the client gets a gateway error, not the backend's Location.
    assert status == 502
    assert_clean(status, headers, body)
    assert json.loads(body)["error"]["code"] == "backend_redirect"
    assert_normal_request_works(env)


def test_a_compressed_answer_is_refused_not_passed_unrenamed(env):
    """A backend compressing although asked not to (or only saying so, #19 review F6): its
    answer cannot be read for names, so the client gets a 502 in OpenAI's envelope, never the
    bytes."""
    status, headers, body = env.post("/v1/chat/completions", {"model": "gzip", "messages": []})
    assert status == 502
    names = {k.lower() for k, _ in headers}
    assert names <= CLIENT_HEADERS and "content-encoding" not in names
    assert json.loads(body)["error"]["code"] == "bad_backend_response"
    assert_clean(status, headers, body)
    assert_normal_request_works(env)


def test_an_endless_stream_event_ends_the_stream_quickly(env):
    """17 MiB of one event in 64-byte lines: the stream ends well-formed at the event limit,
    and the worker stays responsive (the framer is linear)."""
    started = time.monotonic()
    status, headers, body = env.post("/v1/chat/completions", {"model": "endless", "messages": [], "stream": True})
    assert status == 200
    assert_clean(status, headers, body)
    text = body.decode()
    assert text.startswith('data: {"error":'), text[:200]
    assert '"code":"stream_event_too_large"' in text
    assert text.endswith("data: [DONE]\n\n") and text.count("[DONE]") == 1
    assert "xxxx" not in text
    assert time.monotonic() - started < 20
    assert env.stat("airouter_model_stream_events_too_large.model.endless") >= 1
    assert_normal_request_works(env)


def test_a_streamed_responses_request_is_charged_its_usage(env):
    """`response.completed` reports 400 tokens; the key's budget is 100 a minute: the stream is
    served and charged, and the key's next request is refused."""
    client = env.client("sk-small")
    events = list(client.responses.create(model="assistant", input="hi", stream=True))
    assert [e.type for e in events] == ["response.created", "response.output_text.delta", "response.completed"]
    assert events[-1].response.model == "assistant"
    assert events[-1].response.usage.total_tokens == 400
    assert_no_backend_names(json.dumps([e.model_dump() for e in events]))
    status, _, body = env.post("/v1/responses", {"model": "assistant", "input": "again"}, key="sk-small")
    assert status == 429, body
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    assert env.stat("airouter_key_tokens.key.small") == 400
    assert_normal_request_works(env)


def test_a_non_streamed_responses_request_is_charged_too(env):
    status, _, body = env.post("/v1/responses", {"model": "assistant", "input": "hi"}, key="sk-small-json")
    assert status == 200 and json.loads(body)["usage"]["total_tokens"] == 400
    status, _, _ = env.post("/v1/responses", {"model": "assistant", "input": "again"}, key="sk-small-json")
    assert status == 429
