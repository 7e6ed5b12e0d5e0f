"""What the filter answers itself after the split of `flow.rs` (`flow/local.rs`, the request line
in `flow/admission.rs`): `/health`, the models list and one model's entry, the admin endpoints
and the refusals of unknown paths and methods, under odd methods, paths and query strings. None
of these may reach a backend, and every error is OpenAI's envelope."""

import json

import pytest

from .conftest import assert_openai_error, header, leaked


def no_backend(rev):
    assert rev.up.requests == [], "a local answer reached the backend: %r" % rev.up.requests


@pytest.mark.parametrize("path", ["/health", "/health?probe=1", "/health?model=chat"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health_is_answered_with_any_query(rev, method, path):
    rev.reset()
    status, _, body = rev.raw(method, path, key=None)
    assert status == 200
    if method == "GET":
        assert json.loads(body) == {"status": "ok"}
    no_backend(rev)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_with_another_method_is_not_answered_as_health(rev, method):
    """Only GET and HEAD are health; another method is a request like any other: with no key,
    a 401 in OpenAI's envelope, never a backend."""
    rev.reset()
    status, _, body = rev.raw(method, "/health", body=b"{}", key=None)
    assert status == 401, (status, body)
    assert_openai_error(status, body)
    no_backend(rev)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models?model=zeta-one-secret", "/v1/models?x=1"])
def test_models_list_ignores_its_query(rev, path):
    rev.reset()
    status, _, body = rev.raw("GET", path)
    assert status == 200, body
    ids = sorted(m["id"] for m in json.loads(body)["data"])
    assert ids == ["chat", "emb", "fo", "fo-dead"], ids
    assert not leaked(body)
    no_backend(rev)


def test_models_list_follows_the_keys_allow_list(rev):
    status, _, body = rev.raw("GET", "/v1/models", key="sk-restricted")
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["chat"]


@pytest.mark.parametrize("path,want", [
    ("/v1/models/chat", "chat"),
    ("/v1/models/chat?x=1", "chat"),
    ("/v1/models/%63hat", "chat"),
    ("/v1/models/fo", "fo"),
])
def test_one_model_entry(rev, path, want):
    rev.reset()
    status, _, body = rev.raw("GET", path)
    assert status == 200, body
    assert json.loads(body)["id"] == want
    no_backend(rev)


@pytest.mark.parametrize("path", [
    "/v1/models/zeta-one-secret",   # a backend's name is no model of ours
    "/v1/models/nope",
    "/v1/models/",
    "/v1/models/chat/extra",
    "/v1/models/CHAT",
])
def test_unknown_model_entries_are_404s_naming_no_backend(rev, path):
    rev.reset()
    status, _, body = rev.raw("GET", path)
    assert status == 404, (status, body)
    err = assert_openai_error(status, body)
    assert "zeta-one-secret" not in path or "does not exist" in err["message"]
    assert not [n for n in leaked(body) if n != "zeta"] or "zeta-one-secret" in path
    no_backend(rev)


def test_a_model_entry_outside_the_keys_allow_list_is_404(rev):
    status, _, body = rev.raw("GET", "/v1/models/fo", key="sk-restricted")
    assert status == 404
    assert_openai_error(status, body)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/chat"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_models_with_another_method_is_405_allowing_get(rev, method, path):
    rev.reset()
    status, headers, body = rev.raw(method, path, body=b"{}")
    assert status == 405, (status, body)
    assert_openai_error(status, body)
    assert header(headers, "allow") == ["GET"], headers
    no_backend(rev)


def test_models_without_a_key_is_401(rev):
    status, _, body = rev.raw("GET", "/v1/models", key=None)
    assert status == 401
    assert_openai_error(status, body)


def test_head_of_the_models_list_is_a_200_without_body(rev):
    status, headers, body = rev.raw("HEAD", "/v1/models")
    assert status == 200
    assert body == b""


@pytest.mark.parametrize("path", ["/router/health", "/router/stats", "/router/rate-limits",
                                  "/auth/status", "/auth/metrics", "/router/stats?x=1"])
def test_admin_endpoints_answer_an_admin_key_only(rev, path):
    rev.reset()
    status, _, body = rev.raw("GET", path, key="sk-admin")
    assert status == 200, (status, body)
    json.loads(body)
    assert not leaked(body)
    for key in (None, "sk-test", "sk-wrong"):
        status, _, body = rev.raw("GET", path, key=key)
        assert status == 401, (key, status, body)
        assert_openai_error(status, body)
    no_backend(rev)


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_admin_endpoints_with_another_method_are_405_allowing_get(rev, method):
    """The admin endpoints answer GET and HEAD only, and their 405 says so (RFC 9110: `Allow`
    lists the methods the resource supports; it once said POST)."""
    rev.reset()
    status, headers, body = rev.raw(method, "/router/stats", body=b"{}", key="sk-admin")
    assert status == 405, (status, body)
    assert_openai_error(status, body)
    no_backend(rev)
    assert header(headers, "allow") == ["GET"], headers


def test_an_admin_key_is_no_client_key(rev):
    rev.reset()
    status, _, body = rev.raw("POST", "/v1/chat/completions",
                              {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}, key="sk-admin")
    assert status == 401, (status, body)
    no_backend(rev)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_an_api_path_with_another_method_is_405_allowing_post(rev, method):
    rev.reset()
    status, headers, body = rev.raw(method, "/v1/chat/completions")
    assert status == 405, (status, body)
    if method != "HEAD":
        assert_openai_error(status, body)
    assert header(headers, "allow") == ["POST"], headers
    no_backend(rev)


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "/v1/chat", "/v2/chat/completions", "/V1/chat/completions",
                                  "/v1//chat/completions", "/v1/chat/completions%2F", "/", "/v1/files"])
def test_unknown_paths_are_404s(rev, path):
    rev.reset()
    status, _, body = rev.raw("POST", path, {"model": "chat", "messages": []})
    assert status == 404, (path, status, body)
    assert_openai_error(status, body)
    no_backend(rev)


def test_local_answers_pass_no_client_internal_header_back(rev):
    status, headers, _ = rev.raw("GET", "/v1/models", headers={"x-airouter-client-model": "zeta-one-secret"})
    assert status == 200
    assert not [k for k, _ in headers if k.lower().startswith("x-airouter-")], headers
