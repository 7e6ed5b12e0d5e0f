"""Review of issue 16: the session record of routed requests (`[session_log]`, docs/config.md;
the issue: "Session log per request: JSON with the request id, virtual model, route, how it was
chosen (classifier reply, META rule, fallback reason), classifier and enrichment timings ...
(capture level configurable: none / metadata / full ...)")."""

import json
import socket
import time

from breaker.scripted_upstream import json_response
from review16.conftest import raw_case


def reply(content):
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def new_records(rev, before, n=1, timeout=15.0):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = [r for r in rev.records() if r["request_id"] not in before]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError("%d new records, wanted %d" % (len(found), n))


def test_capture_none_writes_no_conversation_text_from_the_classifiers_reply(rev):
    """docs: `capture = "none"`: the record holds none of the conversation (no `request`, no
    `response`). A reasoning classifier's reply quotes the conversation in its `<think>` block
    (or in a sentence that is no label); the record of a `none` Envoy still writes that reply
    verbatim under `routing.classifier.reply`."""
    before = {r["request_id"] for r in rev.records()}
    secret = "PATIENT-HAS-CONDITION-X"
    m = raw_case(classifier=json_response(200, reply(
        "<think>The user says: %s. That is a medical question.</think>MODERATE" % secret)))
    status, _, _ = rev.none.raw("/v1/chat/completions", {"model": "ai-router", "messages": [
        {"role": "user", "content": "I have %s, what now? %s" % (secret, m)}]})
    assert status == 200
    (record,) = new_records(rev, before)
    assert "request" not in record and "response" not in record
    assert record["routing"]["route"] == "MODERATE"
    assert secret not in json.dumps(record), json.dumps(record["routing"])


def test_a_client_leaving_while_the_classifier_is_out_leaves_a_record_naming_the_router(rev):
    """The request was parsed and held for its classifier when the client left; its record has
    neither the model the client asked for (docs: a record holds "the model as the client sees
    it") nor a `routing` member (the issue: the virtual model, the classifier's timing)."""
    before = {r["request_id"] for r in rev.records()}
    m = raw_case(classifier=[0.8, json_response(200, reply("COMPLEX"))])
    body = json.dumps({"model": "ai-router", "messages": [{"role": "user", "content": "hi " + m}]}).encode()
    with socket.create_connection(("127.0.0.1", rev.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test\r\n"
                  b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.3)
    time.sleep(1.0)
    assert [r["model"] for r in rev.received(m)] == ["clf-secret-0.6b"], "the classifier was asked, nothing else"
    (record,) = new_records(rev, before)
    assert "DC" in record["envoy"]["flags"]
    assert record.get("model") == "ai-router", json.dumps(record)
    assert record.get("routing", {}).get("virtual_model") == "ai-router", json.dumps(record)


def test_a_post_api_route_record_says_what_was_asked_and_decided(rev):
    """`POST /api/route` runs the classifier (a call that costs tokens) for an admin; its
    record has no model, no key name and no routing decision, only the path and a status."""
    before = {r["request_id"] for r in rev.records()}
    m = raw_case(classifier=json_response(200, reply("COMPLEX")))
    status, _, body = rev.raw("/api/route", {"model": "ai-router", "messages": [{"role": "user", "content": m}]},
                              key="sk-admin")
    assert status == 200 and json.loads(body)["route"] == "COMPLEX"
    (record,) = new_records(rev, before)
    assert record["path"] == "/api/route"
    assert record.get("model") == "ai-router", json.dumps(record)
    assert record.get("routing", {}).get("route") == "COMPLEX", json.dumps(record)
