"""One strict test per finding of the issue-17 review. Each asserts the behaviour that should
hold; a failure reproduces the finding. Stack and fake Anthropic upstream: conftest.py and
fake_anthropic.py (backend model secret-X behind client model c-X)."""
import json
import time

import grpc
import pytest

A = {"anthropic-version": "2023-06-01"}
U = [{"role": "user", "content": "hi"}]


# F1: an unreadable 2xx backend answer (gzip it was not asked for, JSON that is not a message,
# an Anthropic error object sent with 200) reaches the client as HTTP 200 + error body.
@pytest.mark.parametrize("model", ["c-gzip", "c-notmsg", "c-err200"])
def test_f1_unreadable_answer_is_not_200(env, model):
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": model, "messages": U})
    assert st >= 500, (st, b)
    st, h, b = env.raw("POST", "/v1/messages", {"model": model, "max_tokens": 5, "messages": U}, headers=A)
    assert st >= 500, (st, b)


@pytest.mark.parametrize("model", ["c-gzip", "c-notmsg"])
def test_f1_grpc_ok_with_empty_answer(env, model):
    stub = env.pb_grpc.RouterStub(grpc.insecure_channel(env.grpc_target))
    req = env.pb.GenerationRequest(model=model, messages=[env.pb.Message(role="user", content="hi")])
    with pytest.raises(grpc.RpcError):
        r = stub.RouteRequest(req, metadata=[("authorization", "Bearer sk-test")], timeout=10)
        print("OK status with", repr(r.content), repr(r.model), repr(r.finish_reason))


def test_f1_openai_sdk_sees_an_error_not_an_empty_success(env):
    import openai
    with pytest.raises(openai.InternalServerError) as e:
        env.oai().chat.completions.create(model="c-notmsg", messages=U)
    assert e.value.status_code == 502


# F2: /v1/messages to an Anthropic backend is not served directly: Anthropic-native features are
# silently dropped (thinking, cache_control, thinking blocks in history, service_tier) or refused.
def _ant_body(env, extra):
    n0 = len(env.fake.requests)
    st, h, b = env.raw("POST", "/v1/messages", dict({"model": "c-normal", "max_tokens": 2000, "messages": U}, **extra), headers=A)
    sent = [json.loads(r["body"]) for r in env.fake.requests[n0:] if r["method"] == "POST"]
    return st, b, sent


def test_f2_thinking_param_silently_dropped(env):
    st, b, sent = _ant_body(env, {"thinking": {"type": "enabled", "budget_tokens": 1024}})
    assert st != 200 or "thinking" in sent[0], ("200, but the backend got", sent)


def test_f2_cache_control_silently_dropped(env):
    st, b, sent = _ant_body(env, {"system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]})
    assert st != 200 or "cache_control" in json.dumps(sent[0]), ("200, but the backend got", sent)


def test_f2_thinking_history_dropped(env):
    msgs = [{"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "SIG"},
                                              {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]
    st, b, sent = _ant_body(env, {"messages": msgs, "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
    assert st != 200 or "SIG" in json.dumps(sent[0]), ("200, but the backend got", sent)


def test_f2_thinking_signature_lost(env):
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-thinking", "max_tokens": 5, "messages": U}, headers=A)
    block = json.loads(b)["content"][0]
    assert block["type"] == "thinking" and block["signature"] == "SIGSECRET", block
    assert any(c["type"] == "redacted_thinking" for c in json.loads(b)["content"]), json.loads(b)["content"]


def test_f2_top_k_refused_for_anthropic_backend(env):
    st, b, sent = _ant_body(env, {"top_k": 5})
    assert st == 200 and sent and sent[0].get("top_k") == 5, (st, b)


def test_f2_prefill_refused_for_anthropic_backend(env):
    st, b, sent = _ant_body(env, {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is"}]})
    assert st == 200, (st, b)


# F3: /v1/messages/count_tokens is not served, not even by an Anthropic backend that answers it.
def test_f3_count_tokens(env):
    st, h, b = env.raw("POST", "/v1/messages/count_tokens", {"model": "c-normal", "messages": U}, headers=A)
    assert st == 200, (st, b)


# F4: a backend's own 401 (the router's backend credential failing) reaches the client as its own
# auth failure, message verbatim, including whatever the backend echoes (here its key).
def test_f4_backend_401(env):
    from fake_anthropic import SECRET_KEY
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": "c-401", "messages": U})
    assert SECRET_KEY.encode() not in b, b
    assert st != 401, "client told its own key is invalid: %s %s" % (st, b)


# F5: Envoy's own answers on the Anthropic front are in OpenAI's envelope. Fixed for replies after
# the filter saw the request (here a backend breaking off a body the filter holds); Envoy's codec
# refusals (431 here) come before any filter and cannot tell the client's API (docs/config.md).
def test_f5_local_replies_anthropic_shape(env):
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-normal", "max_tokens": 5, "messages": U},
                       headers=dict(A, **{"x-big": "a" * 70000}))
    assert st == 431 and json.loads(b)["error"]["code"] == "request_headers_too_large", (st, b)
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-truncjson", "max_tokens": 5, "messages": U}, headers=A)
    assert st == 502 and json.loads(b).get("type") == "error", (st, b)


# F6: a backend that stalls after the stream started: the client's stream is cut (no error event,
# no [DONE] / no Anthropic error event); gRPC says UNAVAILABLE "router cannot be reached".
# Envoy resets a stream whose backend went idle past its timeout after the response began: no
# filter can write after that, so the client sees the connection's stream cut (an error in every
# HTTP client), never a stream that looks complete (docs/config.md, `idle_timeout_ms`).
def test_f6_stalled_stream(env):
    import http.client
    with pytest.raises(http.client.IncompleteRead) as e:
        env.raw("POST", "/v1/chat/completions", {"model": "c-hang", "stream": True, "messages": U})
    assert b"[DONE]" not in e.value.partial


def test_f6_stalled_stream_grpc(env):
    stub = env.pb_grpc.RouterStub(grpc.insecure_channel(env.grpc_target))
    req = env.pb.GenerationRequest(model="c-hang", messages=[env.pb.Message(role="user", content="hi")])
    with pytest.raises(grpc.RpcError) as e:
        stub.RouteRequest(req, metadata=[("authorization", "Bearer sk-test")], timeout=15)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED or "reached" not in e.value.details(), (e.value.code(), e.value.details())


# F7: a backend model name split over two deltas reaches the client (tool arguments).
def test_f7_split_name(env):
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-tool", "stream": True, "max_tokens": 5, "messages": U}, headers=A)
    args = "".join(json.loads(l[6:])["delta"]["partial_json"] for l in b.decode().splitlines()
                   if l.startswith("data: {") and '"input_json_delta"' in l and '"index":1' in l)
    assert "secret-tool" not in args, args


# F8: two error events on the chat front for one backend error event; the 17 MiB event gets a
# generic error instead of the documented stream_event_too_large.
def test_f8_single_error_event(env):
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": "c-errmid", "stream": True, "messages": U})
    assert b.count(b'"error"') == 1, b.decode()[-600:]


def test_f8_event_too_large_code(env):
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": "c-huge", "stream": True, "messages": U}, timeout=60)
    assert b"stream_event_too_large" in b, b.decode()[-400:]


# F9: wrong-shaped successes: SSE to a non-streaming client, JSON to a streaming one, and on the
# Anthropic front an error body under content-type text/html with status 200.
def test_f9_shape(env):
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": "c-ssenon", "messages": U})
    assert h.get("content-type", "").startswith("application/json"), (st, h.get("content-type"))


def test_f9_html_on_messages(env):
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-html", "max_tokens": 5, "messages": U}, headers=A)
    assert not (st == 200 and b.startswith(b'{"type":"error"')), (st, h.get("content-type"), b)


# F10: Anthropic's 529 becomes 503 on the Anthropic front (the SDK's OverloadedError is 529).
def test_f10_529_on_messages(env):
    st, h, b = env.raw("POST", "/v1/messages", {"model": "c-529", "max_tokens": 5, "messages": U}, headers=A)
    assert st == 529, (st, b)


# F11: chat -> Messages translation lets through what should be a 400.
# (`service_tier: "auto"` is Anthropic's default too: accepted; another tier is refused.)
@pytest.mark.parametrize("extra", [{"messages": []}, {"messages": [{"role": "user", "content": ""}]},
                                   {"stop": ["a", "b", "c", "d", "e"]}, {"service_tier": "flex"}])
def test_f11_translation(env, extra):
    body = dict({"model": "c-normal", "messages": U}, **extra)
    n0 = len(env.fake.requests)
    st, h, b = env.raw("POST", "/v1/chat/completions", body)
    sent = [r["body"] for r in env.fake.requests[n0:] if r["method"] == "POST"]
    assert st == 400, (st, sent)


# F12: out-of-range usage from a backend counts as zero tokens.
def test_f12_usage(env):
    st, h, b = env.raw("POST", "/v1/chat/completions", {"model": "c-hugeusage", "messages": U})
    assert json.loads(b)["usage"]["prompt_tokens"] > 0, b


# F13: the gRPC-JSON route answers malformed JSON in text/plain, not google.rpc.Status JSON.
def test_f13_transcoder_bad_json(env):
    import urllib.request
    req = urllib.request.Request("http://%s/v1/route" % env.grpc_target, data=b"{not json", method="POST",
                                 headers={"content-type": "application/json", "authorization": "Bearer sk-test"})
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        body = e.read()
        assert e.headers.get("content-type", "").startswith("application/json"), (e.code, e.headers.get("content-type"), body)
        json.loads(body)


# F14: discovery lists a name carrying a bidi override (U+202E) from a backend's /v1/models.
def test_f14_discovery_bidi(env):
    time.sleep(2)
    st, h, b = env.raw("GET", "/v1/models")
    ids = [m["id"] for m in json.loads(b)["data"]]
    assert not [i for i in ids if "\u202e" in i], ids
