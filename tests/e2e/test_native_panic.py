"""The dynamic module's panic guard in a real Envoy: a panic in the flow's hooks fails that one
request (a 500 in OpenAI's error envelope while the response has not started; an ended stream
once it has) and Envoy goes on serving every other request. A panic that crossed into Envoy would
take the whole process down. Runs the test-only probe build (`make native-probe`: a request with
`x-panic-probe: HOOK` panics in that hook), whichever build the rest of the suite runs."""

import http.client
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from stack import NATIVE_PROBE, Stack, free_port  # noqa: E402

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

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "plain", model = "acme-llama-3-8b-instruct" }}
"""

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def probed():
    assert NATIVE_PROBE.exists(), "run `make native-probe` first (%s)" % NATIVE_PROBE
    stack = Stack()
    ports = dict(port=free_port(), admin=free_port(), a=free_port())
    config = stack.workdir / "airouter.toml"
    config.write_text(CONFIG.format(**ports))
    try:
        stack.start_backend("plain", ports["a"], "/v1")
        proc = stack.start_envoy(config, name="envoy-probe",
                                 extra=["--filter", "native", "--native", str(NATIVE_PROBE)])
        yield stack, ports, proc
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def post(port, probe=None, body=CHAT):
    """A chat request, with the probe header when `probe` names a hook: (status, body), or
    (None, reason) when the connection ended without a complete response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json"}
    if probe:
        headers["x-panic-probe"] = probe
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
        r = conn.getresponse()
        return r.status, r.read()
    except (http.client.HTTPException, ConnectionError) as e:
        return None, repr(e)
    finally:
        conn.close()


def still_serving(stack, ports, proc):
    assert proc.poll() is None, "Envoy died:\n" + stack.logs()
    status, body = post(ports["port"])
    assert status == 200, body
    assert json.loads(body)["model"] == "chat"


@pytest.mark.parametrize("hook", ["request_headers", "request_body", "response_headers"])
def test_a_panic_before_the_response_is_an_openai_500_and_envoy_serves_on(probed, hook):
    stack, ports, proc = probed
    for _ in range(3):  # every worker, and again: a failed filter never poisons the next request
        status, body = post(ports["port"], probe=hook)
        assert status == 500, body
        error = json.loads(body)["error"]
        assert error["type"] == "server_error"
        assert error["message"] == "Internal router error: the filter failed on this request."
        still_serving(stack, ports, proc)
    assert "panic in %s; caught" % hook in Path(stack.envoy_log).read_text()


def test_a_panic_in_the_response_body_ends_that_response_only(probed):
    stack, ports, proc = probed
    status, body = post(ports["port"], probe="response_body")
    # Whether Envoy had sent the backend's headers decides between a 500 and an ended stream;
    # either way the client never gets the backend's answer as if nothing happened.
    assert status in (500, None), (status, body)
    still_serving(stack, ports, proc)
    assert "panic in response_body; caught" in Path(stack.envoy_log).read_text()
