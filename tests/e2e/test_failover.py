"""Priority failover through Envoy's aggregate clusters, each attempt rewritten for its target by
the filter running as an upstream filter. The demo backend's model names inject the faults, so
which target answered is visible in what each backend received."""

import base64
import json
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import assert_no_backend_names
from stack import ROOT, Stack, free_port

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[[admin_keys]]
name = "ops"
key = "sk-admin"

[backends.primary]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
timeout_ms = 1500

[backends.secondary]
kind = "openai"
url = "http://127.0.0.1:{b}/v1"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 500

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"

# Its own backend: a 429 cools the backend down, which would change what later tests see.
# Checked by Envoy: its health path always fails, so failover skips it without trying it.
[backends.sick]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
health_check = {{ path = "/v1/no-such-health", interval_ms = 200 }}

[backends.primary-429]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.capped]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
rate_limit = {{ requests = 2, window_ms = 60000 }}

[backends.tight]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
rate_limit = {{ requests = 1, window_ms = 60000 }}

[backends.cooling]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.cooling-single]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[[models]]
name = "skip-when-capped"
apis = ["chat"]
targets = [{{ backend = "capped", model = "capped-model" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "only-tight"
apis = ["chat"]
target = {{ backend = "tight", model = "tight-model" }}

[[models]]
name = "cool-then-skip"
apis = ["chat"]
targets = [{{ backend = "cooling", model = "fail-429" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "cool-single"
apis = ["chat"]
target = {{ backend = "cooling-single", model = "fail-429" }}

[[models]]
name = "skip-unhealthy"
apis = ["chat"]
targets = [{{ backend = "sick", model = "sick-model" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "dead-single"
apis = ["chat"]
target = {{ backend = "dead", model = "ghost" }}

[[models]]
name = "after-500"
apis = ["chat"]
targets = [{{ backend = "primary", model = "fail-500" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "after-429"
apis = ["chat"]
targets = [{{ backend = "primary-429", model = "fail-429" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "after-refused"
apis = ["chat", "embeddings"]
targets = [{{ backend = "dead", model = "ghost" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "after-timeout"
apis = ["chat"]
targets = [{{ backend = "primary", model = "slow-5" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "client-error"
apis = ["chat"]
targets = [{{ backend = "primary", model = "fail-400" }}, {{ backend = "secondary", model = "second-choice" }}]

[[models]]
name = "all-down"
apis = ["chat"]
targets = [{{ backend = "dead", model = "ghost" }}, {{ backend = "primary", model = "fail-500" }}]

[[models]]
name = "to-triton"
apis = ["chat"]
targets = [{{ backend = "dead", model = "ghost" }}, {{ backend = "triton", model = "vllm_chat" }}]
triton = {{ family = "vllm", template = "chatml" }}
"""

BACKEND_NAMES = ["sick-model", "capped-model", "tight-model", "fail-500", "fail-429", "fail-400", "second-choice", "slow-5", "ghost", "vllm_chat"]


@pytest.fixture(scope="module")
def failover(tmp_path_factory):
    work = tmp_path_factory.mktemp("failover")
    stack = Stack(work)
    ports = {k: free_port() for k in ("port", "admin", "sidecar", "a", "b", "dead", "grpc")}
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(**ports))
    try:
        stack.start_backend("primary", ports["a"], "/v1", record=True)
        stack.start_backend("secondary", ports["b"], "/v1", record=True)
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=["vllm_chat"])
        stack.start_sidecar(config)
        stack.start_envoy(config)
        yield stack, ports
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def client(ports):
    return openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key="x", max_retries=0, timeout=30)


def received(ports, which):
    with urllib.request.urlopen("http://127.0.0.1:%d/__requests" % ports[which], timeout=5) as r:
        return json.loads(r.read())


def clear(ports):
    for which in ("a", "b"):
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/__requests" % ports[which], method="DELETE")).read()


def body_of(req):
    return json.loads(base64.b64decode(req["body_b64"]))


def no_leak(obj):
    text = obj if isinstance(obj, str) else obj.model_dump_json()
    leaked = [n for n in BACKEND_NAMES if n in text]
    assert not leaked, leaked


@pytest.mark.parametrize("model,first_model", [("after-500", "fail-500"), ("after-429", "fail-429"), ("after-timeout", "slow-5")])
def test_failure_on_the_first_target_is_served_by_the_second(failover, model, first_model):
    _, ports = failover
    clear(ports)
    r = client(ports).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.model == model and r.choices[0].message.content == "You said: hi"
    no_leak(r)
    [first] = [q for q in received(ports, "a") if q["method"] == "POST"]
    [second] = received(ports, "b")
    assert body_of(first)["model"] == first_model
    assert body_of(second)["model"] == "second-choice", "the retry must be rewritten for its own target"
    assert second["path"] == "/v1/chat/completions"
    assert "x-airouter-backend" not in second["headers"]


def test_connection_refused_fails_over_streams_too(failover):
    _, ports = failover
    clear(ports)
    chunks = list(client(ports).chat.completions.create(model="after-refused", stream=True,
                                                        messages=[{"role": "user", "content": "stream me"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: stream me"
    assert all(c.model == "after-refused" for c in chunks)
    for c in chunks:
        no_leak(c)
    emb = client(ports).embeddings.create(model="after-refused", input="x")
    assert emb.model == "after-refused"


def test_a_client_error_is_returned_not_retried(failover):
    _, ports = failover
    clear(ports)
    with pytest.raises(openai.BadRequestError) as e:
        client(ports).chat.completions.create(model="client-error", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["message"] == "model client-error rejects this"
    assert received(ports, "b") == [], "a 4xx other than 429 must not fail over"


def test_when_every_target_fails_the_last_error_is_returned(failover):
    _, ports = failover
    with pytest.raises(openai.InternalServerError) as e:
        client(ports).chat.completions.create(model="all-down", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 500
    no_leak(e.value.response.text)


def test_openai_compatible_target_fails_over_to_triton(failover):
    _, ports = failover
    r = client(ports).chat.completions.create(model="to-triton", messages=[{"role": "user", "content": "say triton"}])
    assert r.model == "to-triton" and r.choices[0].message.content == "You said: say triton"
    no_leak(r)


def test_envoy_counts_the_retries(failover):
    import tomllib
    _, ports = failover
    client(ports).chat.completions.create(model="after-500", messages=[{"role": "user", "content": "hi"}])
    models = tomllib.loads(CONFIG.format(**ports))["models"]
    index = [m["name"] for m in models].index("after-500")
    cluster = "cluster.airouter_failover_%d_0.upstream_rq_retry" % index
    url = "http://127.0.0.1:%d/stats?filter=^%s$" % (ports["admin"], cluster.replace(".", "\\."))
    name, value = urllib.request.urlopen(url).read().decode().strip().split(": ")
    assert name == cluster and int(value) >= 1


def posts(ports, which, model=None):
    return [q for q in received(ports, which) if q["method"] == "POST" and (model is None or body_of(q)["model"] == model)]


def test_a_target_at_its_limit_is_skipped(failover):
    _, ports = failover
    clear(ports)
    for _ in range(3):
        r = client(ports).chat.completions.create(model="skip-when-capped", messages=[{"role": "user", "content": "hi"}])
        assert r.model == "skip-when-capped"
    assert len(posts(ports, "a", "capped-model")) == 2, "two fit the limit"
    assert len(posts(ports, "b", "second-choice")) == 1, "the third skipped the capped target"


def test_when_every_target_is_limited_the_router_answers_429(failover):
    _, ports = failover
    client(ports).chat.completions.create(model="only-tight", messages=[{"role": "user", "content": "hi"}])
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % ports["port"],
                                 data=json.dumps({"model": "only-tight", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                 headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 429
    assert int(e.value.headers["retry-after"]) > 0
    err = json.loads(e.value.read())["error"]
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "rate_limit_error"
    no_leak(json.dumps(err))


def test_a_429_with_retry_after_cools_its_target_down(failover):
    _, ports = failover
    clear(ports)
    ask = lambda: client(ports).chat.completions.create(model="cool-then-skip", messages=[{"role": "user", "content": "hi"}])  # noqa: E731
    assert ask().model == "cool-then-skip"
    assert ask().model == "cool-then-skip"
    assert len(posts(ports, "a", "fail-429")) == 1, "the cooling target is skipped, not asked again"
    assert len(posts(ports, "b", "second-choice")) == 2
    time.sleep(1.2)  # the demo backend's Retry-After is 1 s
    ask()
    assert len(posts(ports, "a", "fail-429")) == 2, "after the cool-down the first target is tried again"


def test_a_cooling_single_target_is_answered_by_the_router(failover):
    _, ports = failover
    clear(ports)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as e:
            client(ports).chat.completions.create(model="cool-single", messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers.get("retry-after") == "1"
    assert len(posts(ports, "a", "fail-429")) == 1, "the second 429 came from the router, not the backend"


def admin(ports, path, key="sk-admin"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (ports["port"], path),
                                 headers={"authorization": "Bearer " + key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_admin_endpoints_need_an_admin_key(failover):
    _, ports = failover
    for path in ("/router/health", "/router/stats", "/router/rate-limits", "/auth/status", "/auth/metrics"):
        assert admin(ports, path, key=None)[0] == 401
        assert admin(ports, path, key="sk-not-admin")[0] == 401
        assert admin(ports, path)[0] == 200


def test_router_stats_and_health(failover):
    _, ports = failover
    client(ports).chat.completions.create(model="after-refused", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError):
        client(ports).chat.completions.create(model="dead-single", messages=[{"role": "user", "content": "hi"}])
    _, stats = admin(ports, "/router/stats")
    assert stats["backends"]["secondary"]["requests"] >= 1
    assert stats["models"]["after-refused"]["requests"] >= 1
    assert stats["backends"]["capped"]["rate_limit_skips"] >= 1
    _, health = admin(ports, "/router/health")
    assert health["backends"]["dead"]["status"] == "unhealthy"
    assert health["backends"]["secondary"]["status"] == "healthy"
    _, limits = admin(ports, "/router/rate-limits")
    assert limits["backends"]["capped"]["limit"] == 2 and limits["backends"]["capped"]["remaining"] == 0
    assert "primary" not in limits["backends"]
    _, auth = admin(ports, "/auth/status")
    assert auth == {"client_auth": False, "client_keys": [], "admin_keys": 1}
    # Operators may see backend names here; keys never.
    assert "sk-admin" not in json.dumps([stats, health, limits, auth])


def test_counters_are_envoy_stats_with_tags(failover):
    _, ports = failover
    text = urllib.request.urlopen("http://127.0.0.1:%d/stats/prometheus" % ports["admin"]).read().decode()
    lines = [l for l in text.splitlines() if l.startswith("airouter_backend_requests{")]
    assert any('backend="secondary"' in l and not l.endswith(" 0") for l in lines), lines
    assert any(l.startswith('airouter_model_requests{model="after-refused"}') for l in text.splitlines())


def test_a_backend_failing_its_health_check_is_skipped(failover):
    _, ports = failover
    url = "http://127.0.0.1:%d/clusters" % ports["admin"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        clusters = urllib.request.urlopen(url).read().decode()
        if "airouter_backend_sick::" in clusters and "failed_active_hc" in clusters:
            break
        time.sleep(0.2)
    assert "failed_active_hc" in clusters
    clear(ports)
    r = client(ports).chat.completions.create(model="skip-unhealthy", messages=[{"role": "user", "content": "hi"}])
    assert r.model == "skip-unhealthy"
    assert posts(ports, "a", "sick-model") == [], "the unhealthy target is not tried"
    assert len(posts(ports, "b", "second-choice")) == 1


def test_clusters_have_outlier_detection(failover):
    import tomllib
    _, ports = failover
    url = "http://127.0.0.1:%d/config_dump?resource=static_clusters" % ports["admin"]
    dump = json.loads(urllib.request.urlopen(url).read())
    names = {c["cluster"]["name"]: c["cluster"] for c in dump["configs"]}
    od = names["airouter_backend_primary"]["outlier_detection"]
    # Gateway failures eject; a backend's own 500 (maybe a client's bad request) does not.
    assert od["consecutive_gateway_failure"] == 5 and od["enforcing_consecutive_gateway_failure"] == 100
    assert od["enforcing_consecutive_5xx"] == 0
    assert len(tomllib.loads(CONFIG.format(**ports))["backends"]) <= len(names)


def test_a_failover_body_ended_by_trailers_is_rewritten_for_every_attempt(failover):
    """The per-attempt filter ends its body stage at the trailers too (HTTP/2)."""
    from raw_clients import h2_request
    _, ports = failover
    clear(ports)
    body = json.dumps({"model": "after-500", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, out = h2_request(ports["port"], "/v1/chat/completions", [body[:10], body[10:]], "x",
                                trailers=[("x-trailer", "1")],
                                extra=[("x-airouter-client-model", "to-triton")])
    assert status == 200, out
    assert json.loads(out)["model"] == "after-500"
    no_leak(out.decode())
    [first] = [q for q in received(ports, "a") if q["method"] == "POST"]
    [second] = received(ports, "b")
    assert body_of(first)["model"] == "fail-500"
    assert body_of(second)["model"] == "second-choice"
    for seen in (first, second):
        assert [k for k in seen["headers"] if k.startswith("x-airouter-")] == []
