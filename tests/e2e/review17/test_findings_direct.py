"""The second review of issue 17: one test per finding on the Anthropic front's direct path to
Anthropic backends, asserting the behaviour that holds since its fix (each failed on the
reviewed build). Scenarios: fake_anthropic.py (backend model secret-X behind client model c-X)."""
import json
import re
import socket
import time
import urllib.request

import pytest

A = {"anthropic-version": "2023-06-01"}
U = [{"role": "user", "content": "hi"}]


def msg(model, stream=False, max_tokens=5):
    return {"model": model, "max_tokens": max_tokens, "messages": U, "stream": stream}


def key_tokens(env, key):
    url = "http://127.0.0.1:%d/stats?filter=airouter_key_tokens.key.%s$" % (env.ports["admin"], key)
    m = re.search(r": (\d+)", urllib.request.urlopen(url, timeout=5).read().decode())
    return int(m.group(1)) if m else 0


def sse_events(body):
    """(event, data) of each event of an Anthropic stream."""
    out = []
    for block in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if ev or data:
            out.append((ev, "\n".join(data)))
    return out


def test_f01_an_unreadable_stream_event_is_never_passed_on(env):
    """A direct stream event whose data is not JSON passes untouched: the backend model name (and
    its host:port) reach the client, and the anthropic SDK dies with a JSONDecodeError. The chat
    front drops the same event."""
    st, h, b = env.raw("POST", "/v1/messages", msg("c-badjsonev", True), headers=A)
    assert st == 200
    assert b"secret-" not in b, b
    for ev, data in sse_events(b):
        json.loads(data)  # every event the client gets must be readable


def test_f02_a_direct_stream_without_usage_is_charged(env):
    """A budgeted key's direct stream whose backend reports no usage is charged 0 tokens; the
    same backend answer through /v1/chat/completions is charged the documented estimate."""
    before = key_tokens(env, "budget")
    st, h, b = env.raw("POST", "/v1/messages", msg("c-nousage", True, 50), key="sk-budget", headers=A)
    assert st == 200
    time.sleep(0.5)
    assert key_tokens(env, "budget") > before


def test_f03_a_whole_answer_to_a_stream_request_is_an_error(env):
    """Client asked for a stream; backend answered a JSON message. The router passes 200
    application/json; the SDK's create(stream=True) yields no event and raises nothing."""
    import anthropic
    st, h, b = env.raw("POST", "/v1/messages", msg("c-jsonct", True), headers=A)
    ctype = {k.lower(): v for k, v in h.items()}.get("content-type", "")
    assert st >= 500 or ctype.startswith("text/event-stream"), (st, ctype, b[:200])
    with pytest.raises(anthropic.APIError):
        events = list(env.ant().messages.create(model="c-jsonct", max_tokens=5, messages=U, stream=True))
        assert any(e.type == "message_stop" for e in events), events


def test_f04_a_count_tokens_answer_must_be_a_count(env):
    """count_tokens whose backend answers 200 with a message object (no input_tokens) reaches the
    client as 200; the SDK returns input_tokens=None."""
    st, h, b = env.raw("POST", "/v1/messages/count_tokens", {"model": "c-ctobj", "messages": U}, headers=A)
    assert st == 502, (st, b)
    assert json.loads(b)["type"] == "error"


def test_f05_stream_idle_timeout_cuts_the_stream(env):
    """Backend stalls after message_start (backend idle_timeout_ms 3000): Envoy resets the stream
    (no filter writes after that; docs/config.md), so the client never sees a complete answer:
    no final chunk, no message_stop."""
    body = json.dumps(msg("c-hang", True)).encode()
    req = ("POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
           "x-api-key: sk-test\r\nanthropic-version: 2023-06-01\r\ncontent-length: %d\r\n\r\n" % len(body)).encode() + body
    s = socket.create_connection(("127.0.0.1", env.ports["port"]), timeout=30)
    s.sendall(req)
    out = b""
    while not out.endswith(b"0\r\n\r\n"):
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    assert b"message_start" in out and b"message_stop" not in out, out[-300:]
    assert not out.endswith(b"0\r\n\r\n"), out[-300:]


@pytest.mark.parametrize("body", [
    b'{"model":"c-normal","messages":[],"model":"ant-x"}',
    b'{"model":"c-normal","messages":[],"MODEL":"ant-x"}',
    b'{"model":"c-normal","messages":[],"mod\\u0065l":"ant-x"}',
])
def test_f06_an_ambiguous_model_to_count_is_a_400(env, body):
    """count_tokens with a second or variant `model` key answers 404 "The model `` does not
    exist." where /v1/messages answers 400 naming the duplicate key."""
    st, h, b = env.raw("POST", "/v1/messages/count_tokens", body, headers=A)
    assert st == 400, (st, b)
    assert json.loads(b)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model,stream", [("c-bigjson", False), ("c-big", False)])
def test_f07_an_answer_over_the_buffer_is_a_502(env, model, stream):
    """A backend answer larger than Envoy's buffer (listener max_body_bytes 1 MiB here; a 2 MiB
    message, or a 2 MiB stream to a non-stream request) is a 500 "Internal router error." (Envoy:
    response_payload_too_large): a backend problem reported as the router's own bug."""
    st, h, b = env.raw("POST", "/v1/messages", msg(model, stream), headers=A)
    assert st == 502, (st, b)
    assert "Internal router error" not in b.decode()


def test_f09_message_stop_without_a_stop_reason_is_an_error(env):
    """Backend sends message_stop with a content block still open and no message_delta; the SDK
    returns the half answer (stop_reason None) without raising."""
    import anthropic
    with pytest.raises(anthropic.APIError):
        with env.ant().messages.stream(model="c-stopnodelta", max_tokens=5, messages=U) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        print("returned", repr(text), final.stop_reason)


@pytest.mark.parametrize("method,path", [("GET", "/v1/messages/batches"), ("POST", "/v1/messages/batches"),
                                         ("POST", "/v1/messages/")])
def test_f10_unknown_messages_paths_answer_in_anthropics_shape(env, method, path):
    """Paths under /v1/messages the router does not serve (the SDK's messages.batches) answer in
    OpenAI's envelope on the Anthropic front."""
    st, h, b = env.raw(method, path, msg("c-normal") if method == "POST" else None, headers=A)
    assert st == 404
    j = json.loads(b)
    assert j.get("type") == "error" and "type" in j.get("error", {}), j


def test_f11_the_clients_anthropic_headers_stay_with_the_router(env):
    """On the direct path, client headers other than anthropic-version/-beta pass to the
    backend: another anthropic-* header, cookie, and the client's query string."""
    import urllib.request as ur
    base = "http://127.0.0.1:%d" % env.ports["f"]
    ur.urlopen(base + "/__clear", timeout=5).read()
    st, h, b = env.raw("POST", "/v1/messages?beta=true", msg("c-normal"),
                       headers={**A, "anthropic-dangerous-direct-browser-access": "true",
                                "anthropic-organization-id": "org_client", "cookie": "session=client-secret"})
    assert st == 200
    got = json.loads(ur.urlopen(base + "/__requests", timeout=5).read())[-1]
    names = set(got["headers"])
    # The client's own Anthropic headers stay with the router; other headers and the query
    # string pass as on every API (docs/config.md).
    assert not {"anthropic-dangerous-direct-browser-access", "anthropic-organization-id"} & names, names
