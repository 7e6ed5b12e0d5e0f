"""Breaker: HTTP/2 framings (issue 14, class 1): trailers carrying forged headers, one-byte DATA
frames, empty DATA, pseudo-header tricks. Checks what the scripted backend received."""

import json

import pytest

from raw_clients import h2_request

OUTSIDE = json.dumps({"model": "slashy", "messages": [{"role": "user", "content": "hi"}]}).encode()
INSIDE = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
FORGED = [("x-airouter-backend", "keyed"), ("x-airouter-route", "keyed"), ("x-airouter-client-model", "keyed")]


@pytest.mark.parametrize("shape", ["one-byte frames + trailers", "one-byte frames + empty DATA", "forged trailers",
                                   "empty frames between"])
def test_h2_shapes_keep_the_allow_list(brk, shape):
    brk.reset()
    if shape.startswith("one-byte"):
        frames = [OUTSIDE[i:i + 1] for i in range(len(OUTSIDE))]
    elif shape == "empty frames between":
        frames = [OUTSIDE[:5], b"", b"", OUTSIDE[5:]]
    else:
        frames = [OUTSIDE]
    kw = dict(trailers=FORGED) if "trailers" in shape else dict(end_with_empty_data=True)
    try:
        status, _, body = h2_request(brk.port, "/v1/chat/completions", frames, "sk-restricted", extra=FORGED, **kw)
    except ConnectionError:
        # Envoy's flood protection closes a connection sending empty DATA frames: fine, if
        # nothing reached a backend.
        assert brk.up.requests == []
        return
    assert status == 404, body
    assert brk.up.requests == []
    frames = [INSIDE[i:i + 1] for i in range(len(INSIDE))] if shape.startswith("one-byte") else [INSIDE]
    status, _, body = h2_request(brk.port, "/v1/chat/completions", frames, "sk-restricted", extra=FORGED, **kw)
    assert status == 200, body
    [seen] = brk.up.requests
    assert json.loads(seen["body"])["model"] == "zeta-secret-7b"
    assert [k for k, _ in seen["headers"] if k.startswith("x-airouter")] == []


@pytest.mark.parametrize("extra", [
    [("host", "evil.example")],
    [(":authority", "evil.example")],
    [("te", "trailers")],
    [("content-length", "5")],
    [("x-envoy-original-path", "/x")],
])
def test_h2_header_tricks(brk, extra):
    brk.reset()
    try:
        status, _, body = h2_request(brk.port, "/v1/chat/completions", [INSIDE], "sk-test", extra=extra)
    except Exception as e:  # noqa: BLE001 - a refused stream is a fine answer
        assert brk.up.requests == [], e
        return
    if status is None:
        # the stream was reset (e.g. content-length not matching the DATA): nothing routed
        assert brk.up.requests == []
    elif status == 200:
        [seen] = brk.up.requests
        h = dict(seen["headers"])
        assert "evil" not in h.get("host", ""), h
        assert json.loads(seen["body"])["model"] == "zeta-secret-7b"
    else:
        assert "error" in json.loads(body), (status, body)
