"""The response side after the split of `flow.rs` (`response`, `response_body`, `settlement`,
`targets`): what a backend sends back, on a single target and on a failover model's second
attempt, and what a budgeted key is charged when the stream reports no usage. The README
promises that nothing of a backend reaches the client (names in any case and escape, headers
outside the allow-list, redirects, error texts) and that a budgeted key never streams for free."""

import json
import socket
import time

import h2.config
import h2.connection
import h2.events
import pytest

from breaker.scripted_upstream import chunked, http, json_response, sse

from .conftest import BUDGET_KEYS, FIRST, ONE, SECOND, assert_openai_error, header, leaked

ALLOWED = {"content-type", "content-length", "content-encoding", "cache-control", "date", "retry-after",
           "retry-after-ms", "server", "connection", "transfer-encoding", "x-envoy-upstream-service-time",
           "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "vary"}
LEAKY_HEADERS = [("set-cookie", "zeta=1"), ("x-model", ONE), ("openai-organization", "zeta-org"),
                 ("location", "http://10.9.8.7/"), ("x-request-id", "zeta-req"), ("server", "zeta-server/1.0"),
                 ("via", "1.1 zeta-proxy"), ("x-served-by", FIRST)]


def chat_body(model, stream=False, **extra):
    return dict({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}, **extra)


def spellings(name):
    """A backend name the ways a JSON or SSE body may spell it."""
    escaped = "".join("\\u%04x" % ord(c) if c == "-" else c for c in name)
    return [name, name.upper(), escaped, name.replace("-", "\\u002D")]


def leaky_events(names):
    evs = []
    for n in names:
        for s in spellings(n):
            evs.append(('{"id":"c","object":"chat.completion.chunk","created":0,"model":"%s",'
                        '"choices":[{"index":0,"delta":{"content":"I am %s"},"finish_reason":null}]}' % (s, s)).encode())
    evs.append(b'{"id":"c","object":"chat.completion.chunk","created":0,"model":"x","choices":[],'
               b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')
    return evs + [b"[DONE]"]


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_streamed_names_in_every_spelling_and_headers_never_reach_the_client(rev, model):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    answer = lambda req: sse(leaky_events([ONE, FIRST, SECOND]), headers=LEAKY_HEADERS)
    rev.up.script[ONE] = answer
    rev.up.script[SECOND] = answer
    status, headers, out = rev.raw("POST", "/v1/chat/completions", chat_body(model, True, stream_options={"include_usage": True}))
    assert status == 200, out
    text = out.decode()
    # Each backend name the model may be known by is the client's name; other models' names are
    # not this request's to rename, so only the model's own names are checked here.
    own = [ONE] if model == "chat" else [FIRST, SECOND]
    for n in own:
        for s in spellings(n):
            assert s.lower() not in text.lower(), (s, text[:600])
    extra = [k for k, _ in headers if k.lower() not in ALLOWED]
    assert not extra, headers
    assert not [v for _, v in headers if "zeta" in v.lower() or "10.9.8.7" in v], headers
    assert text.rstrip().endswith("data: [DONE]"), text[-200:]


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_json_answers_are_renamed_with_their_exact_length(rev, model):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(503, {"error": {"message": "x"}})
    backend = ONE if model == "chat" else SECOND
    doc = {"id": "x", "object": "chat.completion", "created": 0, "model": backend.upper(),
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "I am " + backend},
                        "finish_reason": "stop"}],
           "system_fingerprint": backend, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    rev.up.script[backend] = lambda req: json_response(200, doc, extra=LEAKY_HEADERS)
    status, headers, out = rev.raw("POST", "/v1/chat/completions", chat_body(model))
    assert status == 200, out
    assert json.loads(out)["model"] == model
    assert backend not in out.decode().lower(), out
    assert header(headers, "content-length") == [str(len(out))], headers
    assert not [k for k, _ in headers if k.lower() not in ALLOWED], headers


@pytest.mark.parametrize("model", ["chat", "fo"])
@pytest.mark.parametrize("status_code", [301, 302, 307, 308])
def test_a_backend_redirect_becomes_a_502(rev, model, status_code):
    rev.reset()
    redirect = lambda req: http(status_code, [("location", "http://10.9.8.7:8000/zeta"), ("content-type", "text/html"),
                                              ("content-length", "25")], b"<a href=/zeta-fo>moved</a>")
    rev.up.script[FIRST] = redirect
    rev.up.script[ONE] = redirect
    status, headers, out = rev.raw("POST", "/v1/chat/completions", chat_body(model))
    assert status == 502, (status, out)
    assert_openai_error(status, out)
    assert not leaked(out) and not header(headers, "location"), (out, headers)


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_bodiless_backend_errors_get_an_openai_error(rev, model):
    rev.reset()
    bodiless = lambda req: http(503, [("content-length", "0"), ("x-model", ONE)])
    rev.up.script[FIRST] = bodiless
    rev.up.script[SECOND] = bodiless
    rev.up.script[ONE] = bodiless
    status, headers, out = rev.raw("POST", "/v1/chat/completions", chat_body(model))
    assert status == 503, (status, out)
    assert_openai_error(status, out)
    assert header(headers, "content-length") == [str(len(out))]
    assert not leaked(json.dumps(headers)), headers


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_a_backend_4xx_keeps_its_message_without_addresses(rev, model):
    rev.reset()
    err = lambda req: json_response(422, {"error": {"message": "max_tokens too large for %s at 10.9.8.7:8000, see http://zeta.internal/x" % json.loads(req["body"])["model"],
                                                    "type": "invalid_request_error", "param": "max_tokens",
                                                    "code": "too_large", "internal_trace": "zeta"}})
    rev.up.script[FIRST] = err
    rev.up.script[ONE] = err
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body(model))
    assert status == 422, out
    e = assert_openai_error(status, out)
    assert "max_tokens too large" in e["message"], e
    assert not leaked(out), out


# ------------------------------------------------------------------ budgets without usage

# More chunks of text than a budget of 100 tokens: a stream that reports no usage is charged its
# estimate from the streamed text (at least a token per chunk of text, docs/config.md).
TEXT_CHUNKS = 120


def text_event(model, finish=None):
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": finish}]}


def no_usage_stream(req):
    model = json.loads(req["body"])["model"]
    events = [text_event(model) for _ in range(TEXT_CHUNKS - 1)] + [text_event(model, "stop")]
    return sse([*events, b"[DONE]"])


def next_is_refused(rev, key):
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body("chat"), key=key)
    return status == 429, (status, out[:200])


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[14]), ("fo", BUDGET_KEYS[15])])
def test_a_stream_reporting_no_usage_is_charged_its_estimate(rev, model, key):
    """The backend ignores `include_usage`: the key is charged the stream's estimate (here over
    120 tokens of text against a budget of 100), so the next request is refused."""
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    rev.up.script[ONE] = no_usage_stream
    rev.up.script[SECOND] = no_usage_stream
    before = rev.stat("airouter_usage_estimated")
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body(model, True, max_tokens=300), key=key)
    assert status == 200, out
    assert b"[DONE]" in out
    time.sleep(0.3)
    assert rev.stat("airouter_usage_estimated") >= before + 1
    refused, detail = next_is_refused(rev, key)
    assert refused, detail


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[16]), ("fo", BUDGET_KEYS[17])])
def test_a_json_answer_reporting_no_usage_is_charged_its_estimate(rev, model, key):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    plain = lambda req: json_response(200, {"id": "x", "object": "chat.completion", "created": 0,
                                            "model": json.loads(req["body"])["model"],
                                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                         "finish_reason": "stop"}]})
    rev.up.script[ONE] = plain
    rev.up.script[SECOND] = plain
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body(model, max_tokens=300), key=key)
    assert status == 200, out
    refused, detail = next_is_refused(rev, key)
    assert refused, detail


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[18]), ("fo", BUDGET_KEYS[19])])
def test_a_stream_cut_short_is_ended_for_the_client_and_charged(rev, model, key):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    cut = lambda req: chunked(200, [("content-type", "text/event-stream")],
                              [b"data: " + json.dumps(text_event(json.loads(req["body"])["model"])).encode() + b"\n\n"
                               for _ in range(TEXT_CHUNKS)]
                              + [b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"%s","choices":[{"index":0,"delta":{"content":"par'
                                 % json.loads(req["body"])["model"].encode()])
    rev.up.script[ONE] = cut
    rev.up.script[SECOND] = cut
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body(model, True, max_tokens=300), key=key)
    assert status == 200
    text = out.decode()
    assert not leaked(out), text
    assert '"error"' in text and text.rstrip().endswith("data: [DONE]"), text
    refused, detail = next_is_refused(rev, key)
    assert refused, detail


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[20]), ("fo", BUDGET_KEYS[21])])
def test_a_client_leaving_mid_stream_is_charged(rev, model, key):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    first = (b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m",'
             b'"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n')
    slow = lambda req: [http(200, [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]),
                        b"%x\r\n%s\r\n" % (len(first), first), 3, b"0\r\n\r\n"]
    rev.up.script[ONE] = slow
    rev.up.script[SECOND] = slow
    body = json.dumps(chat_body(model, True, max_tokens=300)).encode()
    s = socket.create_connection(("127.0.0.1", rev.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (key.encode(), len(body), body))
    got = b""
    while b"content" not in got:
        got += s.recv(65536)
    s.close()
    time.sleep(0.5)
    refused, detail = next_is_refused(rev, key)
    assert refused, detail


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[22]), ("fo", BUDGET_KEYS[23])])
def test_a_failed_request_is_not_charged(rev, model, key):
    rev.reset()
    fail = lambda req: json_response(500, {"error": {"message": "x"}})
    rev.up.script[FIRST] = fail
    rev.up.script[SECOND] = fail
    rev.up.script[ONE] = fail
    status, _, _ = rev.raw("POST", "/v1/chat/completions", chat_body(model, True, max_tokens=300), key=key)
    assert status == 500
    rev.up.script.clear()
    status, _, out = rev.raw("POST", "/v1/chat/completions", chat_body("chat"), key=key)
    assert status == 200, (status, out[:200])


# ------------------------------------------------------------------ HTTP/2 client, backend trailers

def h2_get_all(port, body, key):
    """One h2c POST; (status, headers, body, trailers)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "http"),
                          (":authority", "x"), ("content-type", "application/json"), ("te", "trailers"),
                          ("authorization", "Bearer " + key)])
    conn.send_data(1, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, headers, out, trailers, done = None, {}, b"", {}, False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                headers = {k.decode(): v.decode() for k, v in ev.headers}
                status = int(headers[":status"])
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                out += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return status, headers, out, trailers


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_backend_trailers_never_reach_an_h2_client(rev, model):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    answer = lambda req: sse(leaky_events([ONE, SECOND]), trailers=[("x-model", ONE), ("x-upstream", "10.9.8.7")])
    rev.up.script[ONE] = answer
    rev.up.script[SECOND] = answer
    status, headers, out, trailers = h2_get_all(rev.port, json.dumps(chat_body(model, True)).encode(), "sk-test")
    assert status == 200, out
    assert not leaked(json.dumps(trailers)), trailers
    assert not [k for k in headers if not k.startswith(":") and k not in ALLOWED], headers
