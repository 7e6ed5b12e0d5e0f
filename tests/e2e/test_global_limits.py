"""Limits shared by two Envoy instances: each runs the filter with Envoy's global rate limit
filter, which asks the sidecar's rate limit service; the counts live in one Redis on loopback.
Requests are spread over both Envoys concurrently, so only a shared, atomic count keeps them."""

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from stack import Stack, free_port

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[global_limits]
redis = "redis://127.0.0.1:{redis}"
port = {rls}
failure_mode = "{failure_mode}"

[backends.demo]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.capped]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
rate_limit = {{ requests = 30, window_ms = 60000 }}

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "demo", model = "echo" }}

[[models]]
name = "slow-chat"
apis = ["chat"]
target = {{ backend = "demo", model = "slow-1" }}

[[models]]
name = "capped"
apis = ["chat"]
target = {{ backend = "capped", model = "echo" }}

[[keys]]
name = "rpm"
key = "sk-rpm"
requests_per_minute = 100

[[keys]]
name = "tpm"
key = "sk-tpm"
tokens_per_minute = 1000

[[keys]]
name = "free"
key = "sk-free"

[[keys]]
name = "probe"
key = "sk-probe"
requests_per_minute = 1000
"""


class Limited:
    def __init__(self, stack, ports, closed_port, redis_proc):
        self.stack = stack
        self.ports = ports
        self.closed_port = closed_port
        self.redis_proc = redis_proc

    def post(self, port, key, body, path="/v1/chat/completions"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=json.dumps(body).encode(),
                                     method="POST", headers={"authorization": "Bearer " + key,
                                                             "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def client(self, port, key):
        return openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % port, api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("global-limits"))
    try:
        a, redis, sidecar, rls = free_port(), free_port(), free_port(), free_port()
        stack.start_backend("demo", a)
        redis_proc = stack.start_redis(redis)
        ports, configs = [], []
        for name, mode in (("envoy-a", "open"), ("envoy-b", "open"), ("envoy-closed", "closed")):
            port = free_port()
            path = stack.workdir / (name + ".toml")
            path.write_text(CONFIG.format(port=port, admin=free_port(), sidecar=sidecar, redis=redis, rls=rls,
                                          failure_mode=mode, a=a))
            ports.append(port)
            configs.append((name, path))
        stack.start_sidecar(configs[0][1])
        for name, path in configs:
            stack.start_envoy(path, name=name)
        yield Limited(stack, ports[:2], ports[2], redis_proc)
    finally:
        stack.stop()


def burst(limited, key, count, body, workers=24):
    """`count` requests spread evenly over both Envoys, `workers` at a time."""
    def one(i):
        return limited.post(limited.ports[i % 2], key, body)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def test_requests_per_minute_hold_across_two_envoys(limited):
    results = burst(limited, "sk-rpm", 300, CHAT)
    ok = sum(1 for s, _, _ in results if s == 200)
    assert 95 <= ok <= 105, "one limit of 100 for both Envoys, not 100 each: %d passed" % ok
    refused = [(h, b) for s, h, b in results if s == 429]
    assert len(refused) == 300 - ok
    headers, body = refused[0]
    err = json.loads(body)["error"]
    assert err["code"] == "rate_limit_exceeded" and "`rpm`" in err["message"]
    assert int(headers["retry-after"]) >= 1
    # The openai SDK sees the same refusal as a typed error, from either Envoy.
    for port in limited.ports:
        with pytest.raises(openai.RateLimitError) as e:
            limited.client(port, "sk-rpm").chat.completions.create(**CHAT)
        assert e.value.code == "rate_limit_exceeded"
    # Another key is not affected.
    assert limited.post(limited.ports[1], "sk-free", CHAT)[0] == 200


def test_a_backend_request_limit_holds_across_two_envoys(limited):
    results = burst(limited, "sk-free", 50, dict(CHAT, model="capped"))
    ok = sum(1 for s, _, _ in results if s == 200)
    assert 28 <= ok <= 32, "30 requests a minute for the backend: %d passed" % ok
    statuses = {s for s, _, _ in results}
    assert statuses == {200, 429}
    body = next(b for s, _, b in results if s == 429)
    assert "backend" in json.loads(body)["error"]["message"]
    assert limited.post(limited.ports[0], "sk-free", CHAT)[0] == 200, "other backends are not limited"


def test_token_reservations_keep_a_burst_of_long_streams_within_the_budget(limited):
    words = " ".join("word%d" % i for i in range(40))
    body = {"model": "slow-chat", "messages": [{"role": "user", "content": words}], "max_tokens": 40,
            "stream": True, "stream_options": {"include_usage": True}}
    reservation = -(-len(json.dumps(body).encode()) // 4) + 40

    def one(i):
        client = limited.client(limited.ports[i % 2], "sk-tpm")
        try:
            stream = client.chat.completions.create(**body)
            return [c.usage.total_tokens for c in stream if c.usage is not None][0]
        except openai.RateLimitError as e:
            assert e.code == "rate_limit_exceeded" and "tokens" in e.message
            return None

    with ThreadPoolExecutor(20) as pool:
        used = list(pool.map(one, range(20)))
    admitted = [u for u in used if u is not None]
    # Each stream holds its reservation while it runs (the backend takes a second), so the burst
    # is cut at what the budget can reserve, not at what was used before it started.
    assert 1 <= len(admitted) <= 1000 // (reservation - 8), (len(admitted), reservation)
    assert sum(admitted) <= 1000 + reservation
    assert all(u <= reservation for u in admitted), "the demo backend honours max_tokens"
    # When the streams end, what they did not use is given back: the key can go on. The give-back
    # reaches Redis through the limiter after the client has read the stream's end, so allow it
    # a few seconds on a loaded machine.
    for _ in range(10):
        time.sleep(0.5)
        status, _, reply = limited.post(limited.ports[1], "sk-tpm", dict(CHAT, max_tokens=10))
        if status != 429:
            break
    assert status == 200, reply
    # The filter's token counters are Envoy stats, tagged by key (Prometheus). Each Envoy counts
    # what it served, and the burst's admitted streams may all have gone through one of them.
    counted = 0
    for name in ("envoy-a", "envoy-b"):
        admin = json.loads((limited.stack.workdir / (name + ".json")).read_text())["admin"]["address"]["socket_address"]
        with urllib.request.urlopen("http://127.0.0.1:%d/stats/prometheus" % admin["port_value"]) as r:
            metrics = r.read().decode()
        line = next(line for line in metrics.splitlines() if line.startswith('airouter_key_tokens{key="tpm"}'))
        counted += int(line.split()[-1])
    assert counted > 0


def test_a_client_cannot_name_another_key_for_the_limiter(limited):
    # Headers the filter uses to name the key for the limiter are dropped from client input.
    req = dict(CHAT)
    status, _, _ = limited.post(limited.ports[0], "sk-probe", req)
    assert status == 200
    headers = {"authorization": "Bearer sk-free", "content-type": "application/json",
               "x-airouter-rl-key": "rpm"}
    r = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % limited.ports[0],
                               data=json.dumps(CHAT).encode(), method="POST", headers=headers)
    with urllib.request.urlopen(r, timeout=10) as resp:
        assert resp.status == 200, "sk-free is unlimited even when it claims to be `rpm`"


def test_without_redis_open_mode_lets_requests_through_and_closed_mode_refuses(limited):
    # Last in this module: it stops the shared store.
    limited.redis_proc.terminate()
    limited.redis_proc.wait(timeout=10)
    status, _, body = limited.post(limited.ports[0], "sk-probe", CHAT)
    assert status == 200, body
    status, headers, body = limited.post(limited.closed_port, "sk-probe", CHAT)
    assert status == 503, body
    err = json.loads(body)["error"]
    assert "rate limiter" in err["message"]
    assert headers.get("content-type", "").startswith("application/json")
