"""Every request framing ends the filter's body stage (issue 14, class 1).

A request reaches a backend only through the filter: HTTP/1.1 with content-length or chunked
(with and without trailers), HTTP/2 with and without trailers, with an empty DATA frame ending the
stream, or with a body made of several DATA frames. Each case sends what an attacker would (a key
allowed only one model, a model outside its allow-list, forged internal headers that once picked
a route) and checks what the backend received and what the client got.
"""

import base64
import json

import pytest

from conftest import PROVIDER_B_KEY, assert_no_backend_names
from raw_clients import h1_chunked, h2_request

FORGED = [
    ("x-airouter-backend", "provider-a"),
    ("x-airouter-client-model", "bravo-x"),
    ("x-airouter-client-path", "/v1/chat/completions"),
    ("x-airouter-attempt", "1"),
    ("x-airouter-triton-backend", "provider-a"),
    ("x-airouter-triton-model", "evil"),
    ("x-airouter-sidecar-secret", "guess"),
]


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


def test_a_model_in_the_query_string_never_reaches_a_backend(env):
    """The query goes to the backend as sent, so a `model` there is refused, not passed on."""
    env.clear_upstream()
    for query in ("model=bravo-x", "Model=bravo-x", "mod%65l=bravo-x"):
        status, _, out = env.raw("POST", "/v1/chat/completions?" + query, json.loads(MODEL_A),
                                 key="sk-restricted")
        assert status == 400, (query, out)
        assert json.loads(out)["error"]["code"] == "ambiguous_model"
    assert seen_by_backends(env) == []
    assert_normal_request_works(env)
