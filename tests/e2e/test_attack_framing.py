"""Every request framing ends the filter's body stage (issue 14, class 1).

A request reaches a backend only through the filter: HTTP/1.1 with content-length or chunked
(with and without trailers), HTTP/2 with and without trailers, with an empty DATA frame ending the
stream, or with a body made of several DATA frames. Each case sends what an attacker would (a key
allowed only one model, a model outside its allow-list, forged internal headers that once picked
a route) and checks what the backend received and what the client got.
"""

import base64
import json
import socket

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import PROVIDER_B_KEY, assert_no_backend_names

FORGED = [
    ("x-airouter-backend", "provider-a"),
    ("x-airouter-client-model", "bravo-x"),
    ("x-airouter-client-path", "/v1/chat/completions"),
    ("x-airouter-attempt", "1"),
    ("x-airouter-triton-backend", "provider-a"),
    ("x-airouter-triton-model", "evil"),
    ("x-airouter-sidecar-secret", "guess"),
]


def h2_request(port, path, body_frames, key, trailers=None, extra=(), end_with_empty_data=False):
    """One h2c request (prior knowledge): the body as the given DATA frames, then optionally an
    empty DATA frame or trailers ending the stream. Returns (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":path", path), (":scheme", "http"),
               (":authority", "127.0.0.1:%d" % port), ("content-type", "application/json"),
               ("authorization", "Bearer " + key), *extra]
    conn.send_headers(1, headers, end_stream=not body_frames and not trailers and not end_with_empty_data)
    for i, frame in enumerate(body_frames):
        last = i == len(body_frames) - 1 and not trailers and not end_with_empty_data
        conn.send_data(1, frame, end_stream=last)
    if end_with_empty_data:
        conn.send_data(1, b"", end_stream=True)
    elif trailers:
        conn.send_headers(1, trailers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, resp_headers, body, done = None, {}, b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                resp_headers = {k.decode(): v.decode() for k, v in event.headers}
                status = int(resp_headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return status, resp_headers, body


def h1_chunked(port, path, chunks, key, trailer_lines=(), extra=()):
    """One HTTP/1.1 request with a chunked body and optional trailers. Returns (status, body)."""
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Content-Type: application/json",
            "Authorization: Bearer " + key, "Transfer-Encoding: chunked", "Connection: close"]
    head += ["%s: %s" % kv for kv in extra]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode()
    for c in chunks:
        raw += b"%x\r\n%s\r\n" % (len(c), c)
    raw += b"0\r\n" + b"".join(t.encode() + b"\r\n" for t in trailer_lines) + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(raw)
    data = b""
    while True:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body


def port_of(env):
    return int(env.base.rsplit(":", 1)[1])


def seen_by_backends(env):
    return env.upstream_requests(env.provider_a) + env.upstream_requests(env.provider_b)


def body_of(seen):
    return json.loads(base64.b64decode(seen["body_b64"]))


def assert_normal_request_works(env):
    resp = env.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "still fine"}])
    assert resp.model == "chat"
    assert resp.choices[0].message.content == "You said: still fine"


MODEL_A = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
OUTSIDE = json.dumps({"model": "bravo-x", "messages": [{"role": "user", "content": "hi"}]}).encode()

FRAMINGS = {
    "h2 trailers": dict(trailers=[("x-trailer", "1")]),
    "h2 empty DATA ends": dict(end_with_empty_data=True),
    "h2 plain": dict(),
}


@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_h2_allow_list_holds_in_every_framing(env, framing):
    """The restricted key may use `chat` only: `bravo-x` is refused whatever the framing, and a
    forged routing header does not reach provider-b, its key, or anything else."""
    env.clear_upstream()
    frames = [OUTSIDE[:7], OUTSIDE[7:]]
    status, _, body = h2_request(port_of(env), "/v1/chat/completions", frames, "sk-restricted",
                                 extra=FORGED, **FRAMINGS[framing])
    assert status == 404, body
    assert json.loads(body)["error"]["code"] == "model_not_found"
    assert seen_by_backends(env) == []
    assert_normal_request_works(env)


@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_h2_request_is_rewritten_in_every_framing(env, framing):
    env.clear_upstream()
    frames = [MODEL_A[:5], MODEL_A[5:20], MODEL_A[20:]]
    status, headers, body = h2_request(port_of(env), "/v1/chat/completions", frames, "sk-restricted",
                                       extra=FORGED, **FRAMINGS[framing])
    assert status == 200, body
    assert json.loads(body)["model"] == "chat"
    assert_no_backend_names(body)
    [seen] = env.upstream_requests(env.provider_a)
    assert env.upstream_requests(env.provider_b) == []
    assert body_of(seen)["model"] == "acme-llama-3-8b-instruct"
    internal = [k for k in seen["headers"] if k.startswith("x-airouter-")]
    assert internal == [], "internal headers reached the backend: %s" % internal
    assert "authorization" not in seen["headers"], "the client's key reached a keyless backend"


def test_h2_trailers_to_a_keyed_backend_carry_its_key_not_the_clients(env):
    env.clear_upstream()
    body = json.dumps({"model": "bravo-1", "messages": [{"role": "user", "content": "x"}]}).encode()
    status, _, out = h2_request(port_of(env), "/v1/chat/completions", [body], "sk-test",
                                trailers=[("x-trailer", "1")], extra=FORGED)
    assert status == 200, out
    [seen] = env.upstream_requests(env.provider_b)
    assert seen["headers"]["authorization"] == "Bearer " + PROVIDER_B_KEY
    assert seen["path"] == "/openai/v1/chat/completions"
    assert body_of(seen)["model"] == "bravo-chat-70b"


def test_h2_trailers_without_a_body_get_a_400(env):
    env.clear_upstream()
    status, _, body = h2_request(port_of(env), "/v1/chat/completions", [], "sk-test",
                                 trailers=[("x-trailer", "1")], extra=FORGED)
    assert status == 400, body
    # An empty body is no JSON object: OpenAI's own parse error.
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert seen_by_backends(env) == []


@pytest.mark.parametrize("trailers", [(), ("X-Trailer: 1",)])
def test_h1_chunked_allow_list_holds(env, trailers):
    env.clear_upstream()
    status, body = h1_chunked(port_of(env), "/v1/chat/completions", [OUTSIDE[:9], OUTSIDE[9:]],
                              "sk-restricted", trailer_lines=trailers, extra=FORGED)
    assert status == 404, body
    assert seen_by_backends(env) == []
    status, body = h1_chunked(port_of(env), "/v1/chat/completions", [MODEL_A[:9], MODEL_A[9:]],
                              "sk-restricted", trailer_lines=trailers, extra=FORGED)
    assert status == 200, body
    [seen] = env.upstream_requests(env.provider_a)
    assert body_of(seen)["model"] == "acme-llama-3-8b-instruct"
    assert [k for k in seen["headers"] if k.startswith("x-airouter-")] == []


def test_forged_route_on_an_unrouted_path_reaches_no_backend(env):
    """Requests the filter answers itself or refuses never fall through to a backend's route,
    whatever internal headers they carry."""
    env.clear_upstream()
    hdrs = dict(FORGED)
    for method, path, body in [("GET", "/v1/whatever", None), ("POST", "/v2/chat", b"{}"),
                               ("POST", "/v1/chat/completions", None)]:
        status, _, out = env.raw(method, path, body, headers=hdrs)
        assert 400 <= status < 500, (method, path, status, out)
        assert "error" in json.loads(out)
    assert seen_by_backends(env) == []
