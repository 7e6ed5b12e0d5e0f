"""The gRPC client API end to end (`[grpc_api]`, proto/airouter/v1/router.proto): real Envoy with
the release filter takes gRPC clients on its gRPC listener and hands them, round robin, to two real
sidecar replicas (`airouter serve`), which send each call through Envoy's OpenAI listener to the
demo backend. The clients are grpcio's (stubs compiled from the .proto with grpcio-tools, the
health and reflection clients, grpcio-status for the rich error details) and httpx for the same
calls as HTTP/JSON through Envoy's gRPC-JSON transcoder.

Checked: unary and streamed answers under the client-visible model name, a prompt as a completion
and the provider prefix, parameters reaching the backend, each status code the router can answer
(with RetryInfo on 429), the call's deadline, a cancelled stream stopping the backend's
generation, reflection (v1 and v1alpha) and health, the JSON routes (unary, stream, errors), both
replicas serving and one going away without a failed call, and no backend name or address in any
answer, message or trailer. Then, as an attacker (the review of #17): every field and metadata key a
client controls (control characters and invisible formatting in names, names too long, an unknown
provider, the largest max_tokens, 10 000 messages, a message over the size limit on both routes,
JSON the transcoder cannot read) and every answer a misbehaving hosted API can give
(`odd_openai.py`: a 2xx that is not a completion, compressed, without a choice or finish reason,
a finish reason of 10 000 characters, usage beyond any integer, a 200 000-character error, an
answer that stalls) get a faithful status and bounded output.
"""

import base64
import json
import os
import signal
import time
import urllib.request

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from google.rpc import error_details_pb2

from grpc_stubs import compile_stubs
from odd_openai import OddOpenAi
from stack import Stack, free_port

KEY = "sk-grpc-test"
METERED_KEY = "sk-grpc-metered"

# Every name and address a backend is known by; none may reach a client.
BACKEND_NAMES = [
    "acme-llama-3-8b-instruct", "acme-writer-7b", "ticking-stream", "fail-429", "fail-500",
    "fail-400", "fail-403", "fail-503", "slow-5", "ghost-model", "10.9.8.7", "crashed", "10.7.7.7",
]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 1048576

[admin]
address = "127.0.0.1"
port = {admin}

[backends.acme]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.acme-slow]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
timeout_ms = 1500

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 500

[backends.odd]
kind = "openai"
url = "http://127.0.0.1:{odd}/v1"
idle_timeout_ms = 1000

[sidecar]
address = "127.0.0.1"
port = {sidecar}
grpc_port = {grpc}

[grpc_api]
address = "127.0.0.1"
port = {api}
reflection = true
sidecars = [{sidecars}]

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "acme", model = "acme-llama-3-8b-instruct" }}

[[models]]
name = "acme/writer"
apis = ["chat", "completions"]
target = {{ backend = "acme", model = "acme-writer-7b" }}

[[models]]
name = "ticker"
apis = ["chat"]
target = {{ backend = "acme", model = "ticking-stream" }}

[[models]]
name = "limited"
apis = ["chat"]
target = {{ backend = "acme", model = "fail-429" }}

[[models]]
name = "broken"
apis = ["chat"]
target = {{ backend = "acme", model = "fail-500" }}

[[models]]
name = "picky"
apis = ["chat"]
target = {{ backend = "acme", model = "fail-400" }}

[[models]]
name = "forbidden"
apis = ["chat"]
target = {{ backend = "acme", model = "fail-403" }}

[[models]]
name = "overloaded"
apis = ["chat"]
target = {{ backend = "acme", model = "fail-503" }}

[[models]]
name = "sleepy"
apis = ["chat"]
target = {{ backend = "acme-slow", model = "slow-5" }}

[[models]]
name = "unreachable"
apis = ["chat"]
target = {{ backend = "dead", model = "ghost-model" }}

[[models]]
name = "odd-*"
apis = ["chat"]
target = {{ backend = "odd" }}

[[keys]]
name = "tester"
key = "{key}"

[[keys]]
name = "metered"
key = "{metered}"
requests_per_minute = 2
"""


class Env:
    def __init__(self, stack, ports, configs, pb, pb_grpc):
        self.stack, self.ports, self.configs = stack, ports, configs
        self.pb, self.pb_grpc = pb, pb_grpc
        self.target = "127.0.0.1:%d" % ports["api"]
        self.channel = grpc.insecure_channel(self.target)
        self.stub = pb_grpc.RouterStub(self.channel)
        self.backend = "http://127.0.0.1:%d" % ports["a"]
        self.replicas = {}

    def chat(self, model="chat", text="hi", **kw):
        return self.pb.GenerationRequest(model=model, messages=[self.pb.Message(role="user", content=text)], **kw)

    def upstream_requests(self):
        with urllib.request.urlopen(self.backend + "/__requests", timeout=5) as r:
            return [dict(q, body=json.loads(base64.b64decode(q["body_b64"]) or b"{}"))
                    for q in json.loads(r.read())]

    def streams(self):
        with urllib.request.urlopen(self.backend + "/__streams", timeout=5) as r:
            return json.loads(r.read())

    def clear_upstream(self):
        req = urllib.request.Request(self.backend + "/__requests", method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()

    def start_replica(self, i):
        self.replicas[i] = self.stack.start_sidecar(self.configs[i], name="sidecar-%d" % i)

    def stop_replica(self, i):
        proc = self.replicas.pop(i)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)

    def replica_requests(self):
        """Calls Envoy sent each replica, by gRPC port (from the admin's /clusters)."""
        url = "http://127.0.0.1:%d/clusters" % self.ports["admin"]
        with urllib.request.urlopen(url, timeout=5) as r:
            lines = r.read().decode().splitlines()
        out = {}
        for line in lines:
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == "airouter_grpc_api" and parts[2] == "rq_total":
                out[int(parts[1].rsplit(":", 1)[1])] = int(parts[3])
        return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("grpc_api")
    pb, pb_grpc = compile_stubs(tmp_path_factory.mktemp("stubs"))
    stack = Stack(work)
    names = ["port", "admin", "a", "dead", "odd", "api", "sidecar0", "grpc0", "sidecar1", "grpc1"]
    ports = {n: free_port() for n in names}
    sidecars = ", ".join('"127.0.0.1:%d"' % ports["grpc%d" % i] for i in range(2))
    configs = []
    for i in range(2):
        path = work / ("airouter-%d.toml" % i)
        path.write_text(CONFIG.format(port=ports["port"], admin=ports["admin"], a=ports["a"], dead=ports["dead"], odd=ports["odd"],
                                      api=ports["api"], sidecar=ports["sidecar%d" % i], grpc=ports["grpc%d" % i],
                                      sidecars=sidecars, key=KEY, metered=METERED_KEY))
        configs.append(path)
    e = Env(stack, ports, configs, pb, pb_grpc)
    odd = OddOpenAi(ports["odd"]).start()
    try:
        stack.start_backend("acme", ports["a"], "/v1", record=True)
        for i in range(2):
            e.start_replica(i)
        stack.start_envoy(configs[0])
        wait_serving(e)
        yield e
    except Exception:
        print(stack.logs())
        raise
    finally:
        e.channel.close()
        stack.stop()
        odd.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "env" in item.funcargs:
        report.sections.append(("stack logs", item.funcargs["env"].stack.logs()))


def wait_serving(e, timeout=20):
    """Until Envoy's health checks found both replicas."""
    stub = health_pb2_grpc.HealthStub(e.channel)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if stub.Check(health_pb2.HealthCheckRequest(service="airouter.v1.Router"), timeout=2).status == 1:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("the gRPC API did not become ready")


def auth(key=KEY):
    return (("authorization", "Bearer " + key),)


def assert_clean(*texts):
    for t in texts:
        text = t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)
        leaked = [n for n in BACKEND_NAMES if n in text]
        assert not leaked, "backend names or addresses reached the client: %s in %r" % (leaked, text[:2000])


def assert_error_clean(err):
    """No backend name in the status, its details or any trailer."""
    assert_clean(err.details(), repr(err.trailing_metadata()), repr(err.initial_metadata()))
    status = rpc_status.from_call(err)
    if status is not None:
        assert_clean(str(status))


def error_info(err):
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def retry_info(err):
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info
    return None


# -- answers -------------------------------------------------------------------------------------

def test_a_unary_call_answers_under_the_client_visible_model(env):
    env.clear_upstream()
    resp, call = env.stub.RouteRequest.with_call(env.chat(text="hello grpc"), metadata=auth(), timeout=20)
    assert resp.content == "You said: hello grpc"
    assert (resp.model, resp.finish_reason) == ("chat", "stop")
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0
    assert_clean(str(resp), repr(call.initial_metadata()), repr(call.trailing_metadata()))
    (req,) = env.upstream_requests()
    assert req["path"] == "/v1/chat/completions"
    assert req["body"] == {"model": "acme-llama-3-8b-instruct", "messages": [{"role": "user", "content": "hello grpc"}]}


def test_a_prompt_is_a_completion_and_the_provider_prefixes_the_model(env):
    env.clear_upstream()
    resp = env.stub.RouteRequest(env.pb.GenerationRequest(provider="acme", model="writer", prompt="Once upon"),
                                 metadata=auth(), timeout=20)
    assert (resp.content, resp.model, resp.finish_reason) == (" echo: Once upon", "acme/writer", "stop")
    (req,) = env.upstream_requests()
    assert req["path"] == "/v1/completions"
    assert req["body"]["model"] == "acme-writer-7b" and req["body"]["prompt"] == "Once upon"


def test_a_stream_sends_the_pieces_then_the_finish_reason_and_usage(env):
    pieces = list(env.stub.StreamingRouteRequest(env.chat(text="one two three"), metadata=auth(), timeout=20))
    assert len(pieces) >= 4
    assert "".join(p.content for p in pieces) == "You said: one two three"
    assert all(p.model == "chat" for p in pieces)
    *body, last = pieces
    assert all(p.finish_reason == "" and not p.HasField("usage") for p in body)
    assert (last.content, last.finish_reason) == ("", "stop")
    assert last.usage.total_tokens > 0
    assert_clean(*[str(p) for p in pieces])


def test_parameters_reach_the_backend_as_openai_parameters(env):
    env.clear_upstream()
    extra = struct_pb2.Struct()
    extra.update({"logprobs": True, "top_logprobs": 2})
    req = env.chat(text="alpha beta gamma delta", max_tokens=2,
                   parameters=env.pb.Parameters(temperature=0.25, top_p=0.5, stop=["END"], seed=7, user="u-42", extra=extra))
    resp = env.stub.RouteRequest(req, metadata=auth(), timeout=20)
    assert (resp.content, resp.finish_reason) == ("You said:", "length")
    (sent,) = env.upstream_requests()
    body = sent["body"]
    assert body["max_tokens"] == 2 and body["temperature"] == 0.25 and body["top_p"] == 0.5
    assert (body["stop"], body["seed"], body["user"]) == (["END"], 7, "u-42")
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and isinstance(body["top_logprobs"], int)
    assert "stream" not in body and "presence_penalty" not in body


# -- status codes --------------------------------------------------------------------------------

REFUSALS = [
    # (key, model, code, what the message says)
    (None, "chat", grpc.StatusCode.UNAUTHENTICATED, "key"),
    ("sk-wrong", "chat", grpc.StatusCode.UNAUTHENTICATED, "key"),
    (KEY, "no-such-model", grpc.StatusCode.NOT_FOUND, "does not exist"),
    (KEY, "picky", grpc.StatusCode.INVALID_ARGUMENT, "rejects this"),
    (KEY, "forbidden", grpc.StatusCode.PERMISSION_DENIED, "may not use"),
    (KEY, "broken", grpc.StatusCode.INTERNAL, ""),
    (KEY, "overloaded", grpc.StatusCode.UNAVAILABLE, ""),
    (KEY, "unreachable", grpc.StatusCode.UNAVAILABLE, ""),
    (KEY, "sleepy", grpc.StatusCode.DEADLINE_EXCEEDED, ""),
]


@pytest.mark.parametrize("key,model,code,says", REFUSALS, ids=[r[1] + "-" + str(r[0]) for r in REFUSALS])
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
def test_each_refusal_has_its_status_and_names_no_backend(env, key, model, code, says, streamed):
    metadata = auth(key) if key else ()
    with pytest.raises(grpc.RpcError) as e:
        if streamed:
            list(env.stub.StreamingRouteRequest(env.chat(model=model), metadata=metadata, timeout=20))
        else:
            env.stub.RouteRequest(env.chat(model=model), metadata=metadata, timeout=20)
    err = e.value
    assert err.code() == code, (err.code(), err.details())
    assert says in err.details()
    assert_error_clean(err)
    info = error_info(err)
    assert info is not None and info.domain == "airouter" and info.reason, err.details()


def test_requests_that_cannot_be_made_are_invalid_argument_naming_the_field(env):
    cases = [
        (env.pb.GenerationRequest(model="chat"), "messages"),
        (env.pb.GenerationRequest(messages=[env.pb.Message(role="user", content="x")]), "model"),
        (env.chat(max_tokens=0), "max_tokens"),
    ]
    for req, field in cases:
        with pytest.raises(grpc.RpcError) as e:
            env.stub.RouteRequest(req, metadata=auth(), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(e.value)
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
        assert bad.field_violations[0].field == field


def test_a_429_is_resource_exhausted_with_retry_info(env):
    codes = []
    for _ in range(3):
        try:
            env.stub.RouteRequest(env.chat(), metadata=auth(METERED_KEY), timeout=20)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            codes.append(err.code())
            last = err
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED], codes
    retry = retry_info(last)
    assert retry is not None and 0 < retry.retry_delay.seconds <= 60, retry
    assert error_info(last).reason == "RATE_LIMIT_EXCEEDED"
    assert_error_clean(last)
    # A backend's own 429 (with Retry-After: 1) likewise.
    with pytest.raises(grpc.RpcError) as e:
        env.stub.RouteRequest(env.chat(model="limited"), metadata=auth(), timeout=20)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_info(e.value) is not None
    assert_error_clean(e.value)


def test_the_calls_deadline_is_honoured(env):
    started = time.time()
    with pytest.raises(grpc.RpcError) as e:
        env.stub.RouteRequest(env.chat(model="sleepy"), metadata=auth(), timeout=0.8)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.time() - started < 1.4
    # A client that sends `grpc-timeout` without keeping time itself (here over HTTP/JSON) gets
    # the sidecar's own DEADLINE_EXCEEDED, before the backend's timeout (1.5 s) would answer.
    started = time.time()
    r = httpx.post("http://%s/v1/route" % env.target, json={"model": "sleepy", "messages": [{"role": "user", "content": "x"}]},
                   headers={"authorization": "Bearer " + KEY, "grpc-timeout": "700m"}, timeout=10)
    assert time.time() - started < 1.4
    assert r.status_code == 504, r.text
    assert r.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


def test_a_cancelled_stream_stops_the_backends_generation(env):
    env.clear_upstream()
    call = env.stub.StreamingRouteRequest(env.chat(model="ticker"), metadata=auth(), timeout=20)
    got = [next(call), next(call)]
    assert all(p.content == "tick " for p in got)
    call.cancel()
    deadline = time.time() + 10
    while time.time() < deadline:
        streams = env.streams()
        if streams:
            break
        time.sleep(0.1)
    (stream,) = streams
    # The demo backend sends 20 chunks 0.1 s apart: it saw its client leave long before.
    assert stream["client_left"] is True and stream["chunks_sent"] < 15, stream


# -- reflection and health -----------------------------------------------------------------------

def test_reflection_lists_the_service_and_describes_it(env):
    db = ProtoReflectionDescriptorDatabase(env.channel)
    services = db.get_services()
    assert "airouter.v1.Router" in services and "grpc.health.v1.Health" in services
    fd = db.FindFileContainingSymbol("airouter.v1.Router")
    assert fd.name == "airouter/v1/router.proto"
    # The same over grpc.reflection.v1 (the messages are v1alpha's, field for field).
    list_v1 = env.channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    (resp,) = list(list_v1(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert "airouter.v1.Router" in [s.name for s in resp.list_services_response.service]


def test_health_says_serving(env):
    stub = health_pb2_grpc.HealthStub(env.channel)
    for service in ("", "airouter.v1.Router"):
        assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_only_the_api_health_and_reflection_reach_the_sidecars(env):
    """The sidecars' other services (rate limits, access logs) are not routed from this listener."""
    call = env.channel.unary_unary("/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- HTTP/JSON through Envoy's transcoder ------------------------------------------------------

def test_the_json_route_answers_like_the_grpc_call(env):
    base = "http://%s" % env.target
    r = httpx.post(base + "/v1/route", json={"model": "chat", "messages": [{"role": "user", "content": "json hi"}]},
                   headers={"authorization": "Bearer " + KEY}, timeout=20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["content"], body["model"], body["finish_reason"]) == ("You said: json hi", "chat", "stop")
    assert body["usage"]["total_tokens"] > 0
    assert_clean(r.text, repr(dict(r.headers)))
    # Refusals: the gRPC status as JSON, with the HTTP status gRPC maps its code to.
    r = httpx.post(base + "/v1/route", json={"model": "chat", "messages": [{"role": "user", "content": "x"}]}, timeout=20)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    r = httpx.post(base + "/v1/route", json={"model": "overloaded", "messages": [{"role": "user", "content": "x"}]},
                   headers={"authorization": "Bearer " + KEY}, timeout=20)
    assert r.status_code == 503 and r.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0], r.text
    assert_clean(r.text, repr(dict(r.headers)))


def test_the_json_stream_is_server_sent_events(env):
    with httpx.stream("POST", "http://%s/v1/route:stream" % env.target,
                      json={"model": "chat", "messages": [{"role": "user", "content": "streamed json"}]},
                      headers={"authorization": "Bearer " + KEY}, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
    assert "".join(e["content"] for e in events) == "You said: streamed json"
    assert events[-1]["finish_reason"] == "stop" and events[-1]["usage"]["total_tokens"] > 0
    assert_clean(text)


# -- replicas ------------------------------------------------------------------------------------

def test_two_replicas_both_serve_and_one_can_go(env):
    before = env.replica_requests()
    for i in range(8):
        assert env.stub.RouteRequest(env.chat(text="r%d" % i), metadata=auth(), timeout=20).content == "You said: r%d" % i
    after = env.replica_requests()
    served = {port: after[port] - before.get(port, 0) for port in after}
    assert set(served) == {env.ports["grpc0"], env.ports["grpc1"]}
    assert all(n >= 2 for n in served.values()), served
    # Stateless: with one replica gone, every call is still answered (by the other).
    env.stop_replica(1)
    try:
        for i in range(6):
            assert env.stub.RouteRequest(env.chat(text="s%d" % i), metadata=auth(), timeout=20).content == "You said: s%d" % i
    finally:
        env.start_replica(1)


# -- hostile inputs and answers ------------------------------------------------------------------
# Every field and metadata key a client controls, and every byte the router's answer can carry,
# gets a faithful status and bounded output (the review of #17). The answers come from
# `odd_openai.py`, a fake of a hosted API misbehaving.

def call_both(env, req, metadata=None, timeout=20):
    """(unary error or response, streamed error or responses) for `req`."""
    metadata = auth() if metadata is None else metadata
    out = []
    for streamed in (False, True):
        try:
            if streamed:
                out.append(list(env.stub.StreamingRouteRequest(req, metadata=metadata, timeout=timeout)))
            else:
                out.append(env.stub.RouteRequest(req, metadata=metadata, timeout=timeout))
        except grpc.RpcError as err:
            out.append(err)
    return out


def assert_bounded(err):
    """A status a gRPC client reads whole: message and details well within 8 KiB of trailers."""
    assert len(err.details()) <= 1100, len(err.details())
    trailers = sum(len(k) + len(v) for k, v in err.trailing_metadata() or ())
    assert trailers < 6000, trailers
    assert_error_clean(err)


ODD_SUCCESSES = ["odd-not-completion", "odd-no-choices", "odd-no-finish", "odd-gzip", "odd-finish-long"]


@pytest.mark.parametrize("model", ODD_SUCCESSES)
def test_a_success_that_is_not_a_completion_is_an_error_never_ok_and_empty(env, model):
    for streamed, got in zip(("unary", "stream"), call_both(env, env.chat(model=model))):
        assert isinstance(got, grpc.RpcError), (model, streamed, got)
        assert got.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE), (model, streamed, got.code(), got.details())
        assert_bounded(got)


def test_a_plain_finish_reason_and_absurd_usage_pass_bounded(env):
    unary, pieces = call_both(env, env.chat(model="odd-finish-custom"))
    assert (unary.content, unary.finish_reason) == ("odd answer", "eos_token")
    assert "".join(p.content for p in pieces) == "odd answer" and pieces[-1].finish_reason == "eos_token"
    resp = env.stub.RouteRequest(env.chat(model="odd-usage"), metadata=auth(), timeout=20)
    assert resp.content == "odd answer"
    assert 0 < resp.usage.prompt_tokens <= 2**32 - 1 and resp.usage.total_tokens <= 2**32 - 1, resp.usage


def test_a_huge_error_message_is_cut_to_a_status_a_client_can_read(env):
    for got in call_both(env, env.chat(model="odd-error-huge")):
        assert isinstance(got, grpc.RpcError), got
        assert got.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL), (got.code(), got.details()[:200])
        assert_bounded(got)


def test_an_answer_that_stalls_is_cut_short_not_unreachable(env):
    """The backend goes quiet mid-answer; the router's idle timeout (1 s) ends it."""
    for got in call_both(env, env.chat(model="odd-stall")):
        assert isinstance(got, grpc.RpcError), got
        assert got.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), (got.code(), got.details())
        assert "cannot be reached" not in got.details(), got.details()
        assert_bounded(got)
    # A deadline the client set that passes first is DEADLINE_EXCEEDED, streamed or not.
    for got in call_both(env, env.chat(model="odd-stall"), timeout=0.5):
        assert got.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (got.code(), got.details())


BAD_FIELDS = [
    # (request fields, the field the BadRequest names)
    ({"model": "chat\n"}, "model"),
    ({"model": "chat\u202e"}, "model"),
    ({"model": "c" * 300}, "model"),
    ({"provider": "acme\x00", "model": "writer"}, "provider"),
    ({"provider": "p" * 300, "model": "writer"}, "model"),
]


@pytest.mark.parametrize("fields,field", BAD_FIELDS)
def test_names_a_client_controls_are_checked_naming_the_field_and_not_echoed(env, fields, field):
    req = env.pb.GenerationRequest(messages=[env.pb.Message(role="user", content="x")], **fields)
    for got in call_both(env, req):
        assert got.code() == grpc.StatusCode.INVALID_ARGUMENT, (got.code(), got.details())
        bad = error_details_pb2.BadRequest()
        status = rpc_status.from_call(got)
        assert any(d.Unpack(bad) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
        assert bad.field_violations[0].field == field
        assert len(got.details()) < 200 and fields["model"][:50] not in got.details()


def test_other_client_values_get_faithful_statuses(env):
    # A provider the router does not know: the model does not exist.
    for got in call_both(env, env.pb.GenerationRequest(provider="nobody", model="writer", prompt="x")):
        assert got.code() == grpc.StatusCode.NOT_FOUND, (got.code(), got.details())
    # The largest max_tokens there is reaches the backend as it is.
    env.clear_upstream()
    resp = env.stub.RouteRequest(env.chat(max_tokens=2**32 - 1), metadata=auth(), timeout=20)
    assert resp.content == "You said: hi"
    assert env.upstream_requests()[0]["body"]["max_tokens"] == 2**32 - 1
    # A role the OpenAI API does not have: the router's 400.
    req = env.pb.GenerationRequest(model="chat", messages=[env.pb.Message(role="wizard\x01" * 100, content="x")])
    for got in call_both(env, req):
        assert got.code() == grpc.StatusCode.INVALID_ARGUMENT, (got.code(), got.details())
        assert_bounded(got)
    # 10 000 messages are a conversation like any other.
    many = env.pb.GenerationRequest(model="chat", messages=[env.pb.Message(role="user", content="m%d" % i) for i in range(10_000)])
    assert env.stub.RouteRequest(many, metadata=auth(), timeout=30).content == "You said: m9999"
    # An extra parameter this API sets itself, whatever its value.
    extra = struct_pb2.Struct()
    extra.update({"stream": False})
    for got in call_both(env, env.chat(parameters=env.pb.Parameters(extra=extra))):
        assert got.code() == grpc.StatusCode.INVALID_ARGUMENT, (got.code(), got.details())


def test_a_request_over_the_size_limit_is_resource_exhausted_on_both_routes(env):
    """gRPC's conventions: a message larger than the configured limit is RESOURCE_EXHAUSTED."""
    big = env.chat(text="x" * (1024 * 1024 + 100))  # the OpenAI listener takes 1 MiB bodies
    for got in call_both(env, big):
        assert got.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (got.code(), got.details())
        assert "larger than the router takes" in got.details(), got.details()
    # Under the message limit, but its OpenAI request (JSON, escaped) is over the body limit.
    escaped = env.chat(text="\x01" * (300 * 1024))
    for got in call_both(env, escaped):
        assert got.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (got.code(), got.details())
    r = httpx.post("http://%s/v1/route" % env.target, headers={"authorization": "Bearer " + KEY},
                   json={"model": "chat", "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 100)}]}, timeout=20)
    assert r.headers["content-type"].startswith("application/json"), (r.status_code, r.headers, r.text[:300])
    assert r.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], (r.status_code, r.text[:300])


def test_metadata_a_client_controls(env):
    # A key that is not one, however long (within what HTTP/2 takes): UNAUTHENTICATED.
    for got in call_both(env, env.chat(), metadata=(("authorization", "Bearer " + "k" * 8000),)):
        assert got.code() == grpc.StatusCode.UNAUTHENTICATED, (got.code(), got.details())
        assert "k" * 100 not in got.details()
    # A trace context that is not one is passed on, for Envoy to ignore.
    resp = env.stub.RouteRequest(env.chat(), metadata=auth() + (("traceparent", "garbage"),), timeout=20)
    assert resp.content == "You said: hi"


JSON_MISTAKES = [
    b"{not json",
    b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
    b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"extra": 5}}',
    b'{"model": "chat", "messages": "not a list"}',
    b'{"model": "chat", "no_such_field": 1}',
]


@pytest.mark.parametrize("body", JSON_MISTAKES, ids=range(len(JSON_MISTAKES)))
def test_json_the_transcoder_cannot_read_is_a_google_rpc_status(env, body):
    r = httpx.post("http://%s/v1/route" % env.target, content=body, timeout=20,
                   headers={"authorization": "Bearer " + KEY, "content-type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), (r.headers, r.text)
    status = r.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status["message"], status


def test_envoys_own_answers_to_json_clients_are_google_rpc_statuses_and_grpc_ones_stay_grpc(env):
    r = httpx.post("http://%s/v1/nowhere" % env.target, json={}, timeout=20)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json"), (r.status_code, r.headers, r.text)
    assert r.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # A gRPC client's local reply is still a gRPC status (not JSON in its message).
    call = env.channel.unary_unary("/no.such.Service/Call", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED and not e.value.details().startswith("{"), e.value.details()
