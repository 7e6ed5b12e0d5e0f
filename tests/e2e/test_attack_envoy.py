"""Envoy's side of the boundary, attacked in real Envoy: what its admin port shows, what it answers
by itself, what it lets reach a backend, how long it keeps a stalling client, what it logs.

One Envoy serves a config holding every kind of secret (a plain client key, a plain admin key, a
backend key written in the file, a Redis password); two raw upstreams (tests/e2e/raw_upstream.py)
record what they receive, one of them always failing so failover runs.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from raw_upstream import RawUpstream
from stack import AIROUTER, WASM, Stack, envoy_binary, filter_configuration, free_port

CLIENT_KEY = "sk-client-literal-5ecret"
ADMIN_KEY = "sk-admin-literal-5ecret"
BACKEND_KEY = "sk-backend-literal-5ecret"
REDIS_PASSWORD = "redis-literal-5ecret"
SECRETS = [CLIENT_KEY, ADMIN_KEY, BACKEND_KEY, REDIS_PASSWORD]
MAX_BODY = 65536
HEADERS_TIMEOUT_MS = 1000
IDLE_TIMEOUT_MS = 2000
MAX_CONNECTIONS = 24

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = {max_body}
request_headers_timeout_ms = {headers_timeout}
idle_timeout_ms = {idle_timeout}
max_connections = {max_connections}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[global_limits]
# Nothing serves the limiter: requests pass (failure_mode open). The password must not show.
redis = "redis://:{redis_password}@127.0.0.1:{nothing}/0"
port = {limiter}

[backends.raw]
kind = "openai"
url = "http://127.0.0.1:{raw}/v1"
api_key = "{backend_key}"

[backends.flaky]
kind = "openai"
url = "http://127.0.0.1:{flaky}/v1"

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "raw", model = "raw-model" }}

[[models]]
name = "cut"
apis = ["chat"]
target = {{ backend = "raw", model = "cut-json" }}

[[models]]
name = "failover"
apis = ["chat"]
targets = [{{ backend = "flaky", model = "flaky-model" }}, {{ backend = "raw", model = "raw-model" }}]

[[keys]]
name = "tester"
key = "{client_key}"

[[admin_keys]]
name = "ops"
key = "{admin_key}"
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    work = tmp_path_factory.mktemp("attack-envoy")
    stack = Stack(work)
    ports = {k: free_port() for k in ("port", "admin", "sidecar", "limiter", "nothing", "raw", "flaky")}
    raw = RawUpstream(ports["raw"]).start()
    flaky = RawUpstream(ports["flaky"], status=503).start()
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(
        max_body=MAX_BODY, headers_timeout=HEADERS_TIMEOUT_MS, idle_timeout=IDLE_TIMEOUT_MS,
        max_connections=MAX_CONNECTIONS, redis_password=REDIS_PASSWORD, backend_key=BACKEND_KEY,
        client_key=CLIENT_KEY, admin_key=ADMIN_KEY, **ports))
    try:
        stack.start_envoy(config)
        yield stack, ports, raw, flaky, config
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        raw.stop()
        flaky.stop()


def call(ports, method, path, body=None, key=CLIENT_KEY, headers=None):
    """(status, headers, body) of one request, errors included."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"content-type": "application/json"} if data is not None else {}
    if key:
        hdrs["authorization"] = "Bearer " + key
    hdrs.update(headers or {})
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (ports["port"], path), data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def chat(ports, model="chat", **kw):
    return call(ports, "POST", "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]}, **kw)


def assert_openai_error(status, headers, body, want_status, want_code=None):
    assert status == want_status, (status, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    err = json.loads(body)["error"]
    assert isinstance(err["message"], str) and err["message"], body
    assert not err["message"].lstrip().startswith("{"), "an OpenAI error wrapped in another: %r" % body
    assert set(err) >= {"message", "type", "param", "code"}, body
    if want_code is not None:
        assert err["code"] == want_code, body
    return err


def still_works(ports):
    status, _, body = chat(ports)
    assert status == 200, body
    assert json.loads(body)["model"] == "chat"


def raw_exchange(port, data, wait=5.0):
    """Sends raw bytes, then reads until the server closes (or resets) the connection or `wait`
    passes: (bytes, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        got = b""
        try:
            s.sendall(data)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    return got, True
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            return got, True
        return got, False


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


# ---- item 6: secrets never in dumps or messages ----

def test_config_dump_shows_no_secret_while_keys_still_work(edge):
    _, ports, raw, _, _ = edge
    with urllib.request.urlopen("http://127.0.0.1:%d/config_dump?include_eds" % ports["admin"], timeout=10) as r:
        dump = r.read().decode()
    assert "airouter_backend_raw" in dump, "the dump is the real one"
    leaked = [s for s in SECRETS if s in dump]
    assert not leaked, "secrets in /config_dump: %s" % leaked

    # The client key still opens the API, the backend still gets its own key.
    raw.requests.clear()
    still_works(ports)
    assert raw.requests[-1]["headers"]["authorization"] == "Bearer " + BACKEND_KEY
    assert not [h for h in raw.requests[-1]["headers"] if h.startswith("x-airouter-")]
    assert call(ports, "POST", "/v1/chat/completions", {"model": "chat"}, key="sk-wrong")[0] == 401
    # The admin key still opens the admin endpoints, and only it.
    assert call(ports, "GET", "/router/health", key=ADMIN_KEY)[0] == 200
    assert call(ports, "GET", "/router/health", key=CLIENT_KEY)[0] in (401, 403)


def test_the_filters_start_up_log_shows_no_url_credentials(edge):
    stack, _, _, _, config = edge
    # A plugin configuration `airouter envoy` would refuse, handed to Envoy by hand.
    bootstrap = json.loads(stack.render(config, "hand-edited.json").read_text())
    entry = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    holder, key = filter_configuration(entry["typed_config"])
    holder[key] = holder[key].replace(
        'url = "http://127.0.0.1:', 'url = "http://operator:url-pa55word@127.0.0.1:', 1)
    path = stack.workdir / "hand-edited.json"
    path.write_text(json.dumps(bootstrap))
    env = dict(os.environ, **stack.env_of(path))
    out = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
                         capture_output=True, text=True, env=env, check=False)
    shown = out.stdout + out.stderr
    assert out.returncode != 0, "Envoy must refuse it"
    assert "must not carry credentials" in shown and "<redacted>@127.0.0.1" in shown, shown[-3000:]
    assert "url-pa55word" not in shown


def test_airouter_check_shows_no_url_credentials(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[backends.a]\nkind = "openai"\nurl = "https://user:url-pa55word@api.example.com/v1"\n'
                   '[global_limits]\nredis = "http://:redis-pa55word@r"\n')
    for argv in (["check", str(bad)], ["envoy", str(bad), "--wasm", str(WASM)]):
        out = subprocess.run([str(AIROUTER), *argv], capture_output=True, text=True, check=False)
        assert out.returncode != 0
        shown = out.stdout + out.stderr
        assert "bad.toml:3:" in shown, shown
        assert "pa55word" not in shown, shown


# ---- item 7: Envoy's own answers and limits ----

def test_a_chunked_body_over_the_limit_gets_an_openai_413(edge):
    _, ports, raw, _, _ = edge
    raw.requests.clear()

    def chunks():
        yield b'{"model":"chat","messages":[{"role":"user","content":"'
        for _ in range(64):
            yield b"x" * 8192
        yield b'"}]}'

    status, headers, body = call(ports, "POST", "/v1/chat/completions", chunks(),
                                 headers={"transfer-encoding": "chunked"})
    assert_openai_error(status, headers, body, 413, "request_too_large")
    assert raw.requests == [], "nothing over the limit reaches a backend"
    still_works(ports)


def test_a_declared_body_over_the_limit_keeps_the_filters_own_413(edge):
    _, ports, _, _, _ = edge
    big = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "x" * (MAX_BODY * 2)}]}).encode()
    status, headers, body = call(ports, "POST", "/v1/chat/completions", big)
    assert_openai_error(status, headers, body, 413, "request_too_large")


def test_the_filters_own_errors_are_not_wrapped_again(edge):
    _, ports, _, _, _ = edge
    status, headers, body = chat(ports, key="sk-wrong")
    assert_openai_error(status, headers, body, 401, "invalid_api_key")
    status, headers, body = call(ports, "GET", "/no/such/path")
    assert_openai_error(status, headers, body, 404, "unknown_url")


def test_a_backend_closing_mid_json_gets_an_openai_502(edge):
    _, ports, raw, _, _ = edge
    status, headers, body = chat(ports, model="cut")
    err = assert_openai_error(status, headers, body, 502)
    assert "cut-json" not in body.decode(), "the backend's model name must not leak"
    assert err["type"] == "server_error"
    still_works(ports)


def test_header_overflow_gets_an_openai_431(edge):
    _, ports, _, _, _ = edge
    request = (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + CLIENT_KEY.encode() + b"\r\n"
               + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 1000) for i in range(100)) + b"\r\n")
    got, _ = raw_exchange(ports["port"], request)
    status, headers, body = parse_response(got)
    assert_openai_error(status, headers, body, 431)
    still_works(ports)


def test_a_slowloris_connection_is_closed_within_the_headers_timeout(edge):
    _, ports, _, _, _ = edge
    with socket.create_connection(("127.0.0.1", ports["port"]), timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(0.2)
        closed_after, got = None, b""
        while time.monotonic() - start < 10:
            try:
                s.sendall(b"X-Drip: %d\r\n" % int(time.monotonic() * 1000))
                chunk = s.recv(65536)
                if not chunk:
                    closed_after = time.monotonic() - start
                    break
                got += chunk
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None, "the connection was still open after 10 s"
    assert closed_after < HEADERS_TIMEOUT_MS / 1000 + 1.5, closed_after
    if got:
        # Whatever Envoy says before closing is in the OpenAI envelope too.
        assert_openai_error(*parse_response(got), 408)
    still_works(ports)


def test_a_silent_connection_is_closed_after_the_idle_timeout(edge):
    _, ports, _, _, _ = edge
    start = time.monotonic()
    got, closed = raw_exchange(ports["port"], b"", wait=IDLE_TIMEOUT_MS / 1000 + 3)
    assert closed and got == b"", (closed, got)
    assert time.monotonic() - start < IDLE_TIMEOUT_MS / 1000 + 1.5


def test_connections_beyond_the_limit_are_refused(edge):
    _, ports, _, _, _ = edge
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", ports["port"]), timeout=5)
            held.append(s)
        time.sleep(0.2)
        got, closed = raw_exchange(ports["port"], b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", wait=3)
        assert closed and got == b"", "connection %d was served: %r" % (MAX_CONNECTIONS + 1, got[:200])
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    still_works(ports)


def access_log_line(stack, mark):
    """The access log line holding `mark`; Envoy flushes its log every 10 s by default."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in stack.envoy_log.read_text(errors="replace").splitlines():
            if mark in line and line.startswith("{"):
                return json.loads(line)
        time.sleep(0.1)
    raise AssertionError("no access log line for %s" % mark)


def traced_chat(ports, model):
    """A chat request marked (Envoy at the edge replaces a client's x-request-id) by a query."""
    mark = uuid.uuid4().hex
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    assert call(ports, "POST", "/v1/chat/completions?trace=" + mark, body)[0] == 200
    return mark


def test_the_access_log_names_the_backend(edge):
    stack, ports, _, _, _ = edge
    line = access_log_line(stack, traced_chat(ports, "chat"))
    assert line["backend"] == "raw", line
    line = access_log_line(stack, traced_chat(ports, "failover"))
    assert line["backend"] == "raw", "the backend that answered the last attempt: %s" % line
    assert not any(s in json.dumps(line) for s in SECRETS)


def test_failover_backends_never_see_internal_headers(edge):
    _, ports, raw, flaky, _ = edge
    raw.requests.clear()
    flaky.requests.clear()
    status, _, body = chat(ports, model="failover", headers={"x-airouter-attempt": "7", "x-airouter-client-model": "chat"})
    assert status == 200, body
    assert json.loads(body)["model"] == "failover"
    assert [json.loads(r["body"])["model"] for r in flaky.requests] == ["flaky-model"]
    assert [json.loads(r["body"])["model"] for r in raw.requests] == ["raw-model"], "the retry is rewritten for its target"
    for r in flaky.requests + raw.requests:
        internal = [h for h in r["headers"] if h.startswith("x-airouter-")]
        assert not internal, "a backend read %s" % internal
    assert "authorization" not in flaky.requests[0]["headers"], "flaky has no key configured"
    assert raw.requests[0]["headers"]["authorization"] == "Bearer " + BACKEND_KEY
