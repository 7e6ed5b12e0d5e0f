"""Breaker: a key with `tokens_per_minute = 100` must be charged in every stream dialect and
however the client words its request (issue 14, class 8). The scripted upstream reports 400
tokens, so one charged request uses up the minute and the next one is refused with a 429.
Tests marked "was a finding" failed when written, and pass since their fix."""

import json
import socket
import time

from .conftest import BUDGET_KEYS, SECRET_MODEL
from .scripted_upstream import chat_completion, json_response, sse

USAGE = {"prompt_tokens": 200, "completion_tokens": 200, "total_tokens": 400}


def chat(brk, key, **extra):
    body = dict({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}, **extra)
    return brk.raw("POST", "/v1/chat/completions", body, key=key)


def assert_charged(brk, key):
    status, _, out = chat(brk, key)
    assert status == 429, "the key was not charged: the next request got %s %r" % (status, out[:200])


def test_chat_stream_that_declines_usage_is_charged(brk):
    """Was a finding, now fixed (class 8): the client sends `"stream_options": {"include_usage": false}`; the filter
    only adds `include_usage` when the request has no `stream_options`, so the backend (like
    OpenAI and vLLM) reports no usage and the key is never charged: unlimited tokens."""
    brk.reset()
    key = BUDGET_KEYS[0]
    status, _, out = chat(brk, key, stream=True, stream_options={"include_usage": False})
    assert status == 200, out
    sent = json.loads(brk.up.requests[-1]["body"])
    assert sent.get("stream_options", {}).get("include_usage") is True, sent
    assert_charged(brk, key)


def test_chat_stream_with_empty_stream_options_is_charged(brk):
    """Was a finding, now fixed (class 8): `"stream_options": {}` is the same hole."""
    brk.reset()
    key = BUDGET_KEYS[1]
    status, _, out = chat(brk, key, stream=True, stream_options={})
    assert status == 200, out
    assert_charged(brk, key)


def test_chat_stream_spelled_as_a_string_is_refused(brk):
    """Was a finding (class 8): `"stream": "true"` (pydantic-based servers such as vLLM coerce it
    to True and stream) was not seen as a stream by the filter, which then asked for no usage.
    A budgeted key's `stream` must now be a boolean, as OpenAI itself requires: 400, and no
    backend sees the request."""
    brk.reset()
    key = BUDGET_KEYS[2]
    status, _, out = chat(brk, key, stream="true")
    assert status == 400, out
    assert json.loads(out)["error"]["param"] == "stream"
    assert brk.up.requests == []


def test_a_client_leaving_before_the_usage_chunk_is_charged(brk):
    """Was a finding, now fixed (class 8): the usage chunk comes last; a client that reads the answer and closes
    the connection before it is never charged (no reservation at admission without
    [global_limits])."""
    brk.reset()
    key = BUDGET_KEYS[3]
    content = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": SECRET_MODEL,
               "choices": [{"index": 0, "delta": {"content": "a long answer"}, "finish_reason": "stop"}]}
    usage = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": SECRET_MODEL, "choices": [], "usage": USAGE}
    pieces = sse([content, usage, b"[DONE]"])
    # headers + first chunk, a pause, then the usage chunk and the end
    brk.up.script[SECRET_MODEL] = lambda req: [pieces[0], pieces[1], 1.5, *pieces[2:]]
    body = json.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    s = socket.create_connection(("127.0.0.1", brk.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (key.encode(), len(body), body))
    got = b""
    while b"a long answer" not in got:
        got += s.recv(65536)
    s.close()
    time.sleep(2.5)
    assert_charged(brk, key)


def test_completions_stream_is_charged(brk):
    brk.reset()
    key = BUDGET_KEYS[4]
    status, _, out = brk.raw("POST", "/v1/completions", {"model": "cmpl", "prompt": "x", "stream": True}, key=key)
    assert status == 200, out
    assert_charged(brk, key)


def test_embeddings_are_charged(brk):
    brk.reset()
    key = BUDGET_KEYS[5]
    brk.up.script["zeta-embed-secret"] = lambda req: json_response(200, {
        "object": "list", "model": "zeta-embed-secret", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
        "usage": {"prompt_tokens": 400, "total_tokens": 400}})
    status, _, out = brk.raw("POST", "/v1/embeddings", {"model": "emb", "input": "x"}, key=key)
    assert status == 200, out
    assert_charged(brk, key)


def responses_stream(final_type):
    events = [{"type": "response.created", "response": {"id": "r", "model": "zeta-resp-secret", "status": "in_progress"}},
              {"type": "response.output_text.delta", "delta": "hi"},
              {"type": final_type, "response": {"id": "r", "model": "zeta-resp-secret", "status": "x",
                                                 "usage": {"input_tokens": 200, "output_tokens": 200, "total_tokens": 400}}}]
    return sse(events)


def test_responses_stream_incomplete_and_failed_are_charged(brk):
    for i, final in enumerate(["response.incomplete", "response.failed"]):
        brk.reset()
        key = BUDGET_KEYS[6 + i]
        brk.up.script["zeta-resp-secret"] = lambda req, f=final: responses_stream(f)
        status, _, out = brk.raw("POST", "/v1/responses", {"model": "resp", "input": "x", "stream": True}, key=key)
        assert status == 200, out
        assert_charged(brk, key)


def test_absurd_float_usage_is_capped_not_ignored(brk):
    """Was a finding, now fixed (class 4/8): `total_tokens: 1e30` (a float) is not read as a count,
    and the key is charged nothing instead of the cap."""
    brk.reset()
    key = BUDGET_KEYS[8]
    usage = b'{"prompt_tokens": 1e30, "completion_tokens": 1e30, "total_tokens": 1e30}'
    brk.up.script[SECRET_MODEL] = lambda req: json_response(200, json.dumps(chat_completion(SECRET_MODEL)).encode().replace(
        b'{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}', usage))
    status, _, out = chat(brk, key)
    assert status == 200, out
    assert_charged(brk, key)
