"""The request side after the split of `flow.rs` (`admission`, `routing`, `target_request`,
`settlement`, `upstream`): every request framing, to a model with one target and to a failover
model whose first target fails, with a plain key and with a token-budgeted key, each carrying
forged internal headers. The README promises that every framing ends the body stage, that only
the model changes in the body, that no `x-airouter-*` header and no client key reaches an
OpenAI-compatible backend on any attempt, and that a budgeted key is asked for and charged its
stream usage."""

import json

import pytest

from breaker.scripted_upstream import json_response
from raw_clients import h1_chunked, h2_request

from .conftest import BACKEND_KEY, BUDGET_KEYS, FIRST, ONE, SECOND, assert_openai_error, leaked

FORGED_H1 = [("X-AIROUTER-CLIENT-MODEL", "zeta-evil"), ("x-airouter-client-path", "/v1/embeddings"),
             ("X-Airouter-Rl-Key", "tester"), ("x-airouter-triton-backend", "one"),
             ("x-airouter-sidecar-secret", "guess"), ("x-airouter-attempt", "7"), ("x-airouter-whatever", "1")]
FORGED_H2 = [(k.lower(), v) for k, v in FORGED_H1]

FRAMINGS = ["h1 content-length", "h1 chunked", "h1 chunked + trailers", "h2 one frame", "h2 three frames",
            "h2 + trailers", "h2 + empty DATA"]


def body_for(model, stream):
    return json.dumps({"model": model, "stream": stream, "temperature": 0.5, "unknown_field": {"keep": [1, 2]},
                       "messages": [{"role": "user", "content": "framing probe"}]}).encode()


def send(rev, framing, path, body, key, forged=True):
    """(status, body) of one request framed as told."""
    if framing == "h1 content-length":
        status, _, out = rev.raw("POST", path, body, key=key, headers=dict(FORGED_H1) if forged else {})
        return status, out
    if framing.startswith("h1 chunked"):
        trailers = ["x-trailer: 1"] if "trailers" in framing else []
        return h1_chunked(rev.port, path, [body[:7], body[7:20], body[20:]], key, trailer_lines=trailers,
                          extra=FORGED_H1 if forged else ())
    frames = {"h2 one frame": [body], "h2 three frames": [body[:5], body[5:30], body[30:]]}.get(framing, [body])
    kw = {"h2 + trailers": dict(trailers=[("x-trailer", "1")]), "h2 + empty DATA": dict(end_with_empty_data=True)}
    status, _, out = h2_request(rev.port, path, frames, key, extra=FORGED_H2 if forged else (), **kw.get(framing, {}))
    return status, out


def events(sse_bytes):
    out = []
    for line in sse_bytes.decode().splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def check_reached_backend(req, model, path, authorization):
    body = req["body"]
    sent = json.loads(body)
    headers = dict(req["headers"])
    assert sent["model"] == model, sent
    assert sent["unknown_field"] == {"keep": [1, 2]} and sent["temperature"] == 0.5, sent
    assert req["path"] == path, req["path"]
    internal = [k for k, _ in req["headers"] if k.startswith("x-airouter-")]
    assert not internal, "internal headers reached an OpenAI-compatible backend: %s" % internal
    assert headers.get("authorization") == authorization, req["headers"]
    blob = json.dumps(req["headers"])
    assert "sk-test" not in blob and "sk-budget" not in blob, req["headers"]
    if "content-length" in headers:
        assert int(headers["content-length"]) == len(body), (headers, len(body))
    return sent


@pytest.mark.parametrize("budgeted", [False, True], ids=["plain key", "budgeted key"])
@pytest.mark.parametrize("model", ["chat", "fo"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_framing_is_routed_rewritten_and_charged(rev, framing, model, budgeted):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "zeta-fo-first died on 10.9.8.7"}})
    index = FRAMINGS.index(framing) * 2 + (model == "fo")
    key = BUDGET_KEYS[index] if budgeted else "sk-test"
    status, out = send(rev, framing, "/v1/chat/completions", body_for(model, True), key)
    assert status == 200, (status, out[:400])
    assert not leaked(out), out[:400]
    evs = events(out)
    assert evs and evs[-1] == "[DONE]", out[:400]
    chunks = [e for e in evs if e != "[DONE]"]
    assert all(c["model"] == model for c in chunks), chunks
    # The client asked for no usage: a usage chunk the router asked for is not passed on.
    assert not [c for c in chunks if c.get("usage")], chunks

    reqs = rev.up.requests
    if model == "chat":
        assert len(reqs) == 1, [r["path"] for r in reqs]
        sent = check_reached_backend(reqs[0], ONE, "/v1/chat/completions", None)
    else:
        assert len(reqs) == 2, [r["path"] for r in reqs]
        check_reached_backend(reqs[0], FIRST, "/v1/chat/completions", None)
        sent = check_reached_backend(reqs[1], SECOND, "/two/v1/chat/completions", "Bearer " + BACKEND_KEY)
    if budgeted:
        assert (sent.get("stream_options") or {}).get("include_usage") is True, sent
        # The scripted backend reported 400 tokens against a budget of 100: the next is refused.
        status, _, out = rev.raw("POST", "/v1/chat/completions", body_for("chat", False), key=key)
        assert status == 429, (status, out[:300])
        assert_openai_error(status, out)
    else:
        assert "stream_options" not in sent, sent


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_framing_to_a_failover_model_on_a_dead_first_target(rev, framing):
    rev.reset()
    status, out = send(rev, framing, "/v1/chat/completions", body_for("fo-dead", False), "sk-test")
    assert status == 200, (status, out[:400])
    doc = json.loads(out)
    assert doc["model"] == "fo-dead"
    assert not leaked(out)
    assert len(rev.up.requests) == 1
    check_reached_backend(rev.up.requests[0], SECOND, "/two/v1/chat/completions", "Bearer " + BACKEND_KEY)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_framing_keeps_the_allow_list(rev, framing):
    rev.reset()
    status, out = send(rev, framing, "/v1/chat/completions", body_for("fo", False), "sk-restricted")
    assert status == 404, (status, out[:300])
    assert_openai_error(status, out)
    assert rev.up.requests == []


@pytest.mark.parametrize("model", ["chat", "fo"])
@pytest.mark.parametrize("query", ["model=x", "Model=x", "mod%65l=x", "a=1;model=x", "a=1&model[]=x", "+model=x"])
def test_a_model_in_the_query_is_refused(rev, model, query):
    rev.reset()
    status, _, out = rev.raw("POST", "/v1/chat/completions?" + query, body_for(model, False))
    assert status == 400, (status, out[:300])
    assert_openai_error(status, out)
    assert rev.up.requests == []


@pytest.mark.parametrize("model,paths", [
    ("chat", ["/v1/chat/completions?api-version=1&x=model"]),
    ("fo", ["/v1/chat/completions?api-version=1&x=model", "/two/v1/chat/completions?api-version=1&x=model"]),
])
def test_a_harmless_query_goes_to_every_attempt(rev, model, paths):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(503, {"error": {"message": "busy"}})
    status, _, out = rev.raw("POST", "/v1/chat/completions?api-version=1&x=model", body_for(model, False))
    assert status == 200, (status, out[:300])
    assert [r["path"] for r in rev.up.requests] == paths


def test_a_forged_client_path_does_not_move_a_failover_attempt(rev):
    """`x-airouter-client-path` carries the client's path from one attempt to the next; a client
    sending its own must not send the second attempt elsewhere (here, to embeddings)."""
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    status, _, out = rev.raw("POST", "/v1/completions", {"model": "fo", "prompt": "hi"},
                             headers={"x-airouter-client-path": "/v1/embeddings",
                                      "x-airouter-client-model": "zeta-evil"})
    assert status == 200, out
    assert [r["path"] for r in rev.up.requests] == ["/v1/completions", "/two/v1/completions"]
    assert json.loads(out)["model"] == "fo"


def test_a_client_error_on_the_first_target_is_not_retried(rev):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(400, {"error": {"message": "bad zeta-fo-first at 10.9.8.7:80",
                                                                     "type": "invalid_request_error"}})
    status, _, out = rev.raw("POST", "/v1/chat/completions", body_for("fo", False))
    assert status == 400, out
    err = assert_openai_error(status, out)
    assert not leaked(out), err
    assert len(rev.up.requests) == 1


def test_when_every_target_fails_the_client_gets_a_generic_5xx(rev):
    rev.reset()
    fail = lambda req: json_response(500, {"error": {"message": "%s exploded" % json.loads(req["body"])["model"]}},
                                     extra=[("x-backend-host", "10.9.8.7"), ("server", "zeta-server")])
    rev.up.script[FIRST] = fail
    rev.up.script[SECOND] = fail
    status, headers, out = rev.raw("POST", "/v1/chat/completions", body_for("fo", False))
    assert status == 500, out
    assert_openai_error(status, out)
    assert not leaked(out) and not leaked(json.dumps(headers)), (out, headers)
    assert len(rev.up.requests) == 2


def test_a_body_without_a_model_to_a_failover_path_reaches_no_backend(rev):
    rev.reset()
    for framing in FRAMINGS:
        status, out = send(rev, framing, "/v1/chat/completions", b'{"messages":[]}', "sk-test")
        assert status == 400, (framing, status, out)
    assert rev.up.requests == []


@pytest.mark.parametrize("api,path,body", [
    ("completions", "/v1/completions", {"model": "fo", "prompt": "hi"}),
    ("embeddings", "/v1/embeddings", {"model": "fo", "input": "hi"}),
])
def test_failover_serves_each_api_with_its_path(rev, api, path, body):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(502, {"error": {"message": "x"}})
    rev.up.script[SECOND] = lambda req: json_response(200, {"object": "list", "model": SECOND, "data": [],
                                                            "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    status, _, out = rev.raw("POST", path, body)
    assert status == 200, out
    assert json.loads(out)["model"] == "fo"
    assert [r["path"] for r in rev.up.requests] == [path, "/two" + path]
    assert [json.loads(r["body"])["model"] for r in rev.up.requests] == [FIRST, SECOND]


@pytest.mark.parametrize("model", ["chat", "fo"])
def test_forged_internal_trailers_reach_no_backend(rev, model):
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    body = body_for(model, False)
    status, _, out = h2_request(rev.port, "/v1/chat/completions", [body], "sk-test",
                                trailers=[("x-airouter-client-path", "/v1/embeddings"),
                                          ("x-airouter-triton-backend", "one"), ("x-airouter-rl-key", "tester")])
    assert status == 200, out
    assert json.loads(out)["model"] == model
    for req in rev.up.requests:
        assert not [k for k, _ in req["headers"] if k.startswith("x-airouter-")], req["headers"]
        assert req["path"].endswith("/chat/completions"), req["path"]


@pytest.mark.parametrize("model,key", [("chat", BUDGET_KEYS[24]), ("fo", BUDGET_KEYS[25])])
def test_a_body_at_the_size_limit_still_gets_its_usage_request(rev, model, key):
    """`max_body_bytes` is 262144: a budgeted streaming request of exactly that size is let in,
    and the `stream_options` the router adds (which make the body longer) still reach the
    backend on every attempt."""
    rev.reset()
    rev.up.script[FIRST] = lambda req: json_response(500, {"error": {"message": "x"}})
    skeleton = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": ""}]})
    pad = 262144 - len(skeleton.encode())
    body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "a" * pad}]}).encode()
    assert len(body) == 262144
    status, _, out = rev.raw("POST", "/v1/chat/completions", body, key=key)
    assert status == 200, (status, out[:300])
    last = rev.up.requests[-1]
    sent = json.loads(last["body"])
    assert sent["stream_options"] == {"include_usage": True}
    assert int(dict(last["headers"])["content-length"]) == len(last["body"]) > 262144
