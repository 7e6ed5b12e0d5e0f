"""Session log end to end (`[session_log]`): real Envoy with the release filter sends each request's
record through its HTTP gRPC access logger to the real sidecar (`airouter serve`), which writes one
JSON file per request. The demo backend plays the providers; the openai SDK and httpx are the
clients.

Checked: records for chat answers and streams (messages sent, answer text, usage, timings, Envoy's
view), the three capture levels (one Envoy each, all logging to the one sidecar), no key or
`Authorization` in any record, a client that leaves mid-stream, 10,000 requests at concurrency 32
leaving 10,000 records numbered without holes (about 40 to 90 s of the suite on two busy cores), a
sidecar that is down holding up no request and every record it missed counted as lost by the
restarted sidecar, and rotation by age and by count.
"""

import asyncio
import json
import os
import signal
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from stack import Stack, free_port

KEYS = {"full": "sk-session-full", "metadata": "sk-session-meta", "none": "sk-session-none"}
HOSTED_KEY = "sk-session-hosted-backend"
LOAD_REQUESTS = 10_000
LOAD_CONCURRENCY = 32

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.demo]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.hosted]
kind = "openai"
url = "http://127.0.0.1:{b}/openai/v1"
api_key_env = "SESSION_TEST_HOSTED_KEY"

[sidecar]
address = "127.0.0.1"
port = {sidecar}
grpc_port = {grpc}

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "demo", model = "acme-chat-7b" }}

[[models]]
name = "ticker"
apis = ["chat"]
target = {{ backend = "demo", model = "ticking-stream" }}

[[models]]
name = "hosted"
apis = ["chat"]
target = {{ backend = "hosted", model = "bravo-chat" }}

[[keys]]
name = "{level}-client"
key = "{key}"

[session_log]
capture = "{level}"
max_record_bytes = 8192
dir = "{dir}"
max_files = {max_files}
"""


class Env:
    def __init__(self, stack, work, ports, dir_):
        self.stack, self.work, self.ports, self.dir = stack, work, ports, dir_
        self.envoys = {}
        self.sidecar = None
        self.old = []
        self.lost = None

    def config(self, level, max_files=20_000):
        p = self.ports
        path = self.work / ("airouter-%s-%d.toml" % (level, max_files))
        path.write_text(CONFIG.format(port=p["listen"][level], admin=p["admin"][level], a=p["a"], b=p["b"],
                                      sidecar=p["sidecar"], grpc=p["grpc"], level=level, key=KEYS[level],
                                      dir=self.dir, max_files=max_files))
        return path

    def base(self, level="full"):
        return "http://127.0.0.1:%d" % self.ports["listen"][level]

    def client(self, level="full"):
        from openai import OpenAI
        return OpenAI(base_url=self.base(level) + "/v1", api_key=KEYS[level], max_retries=0, timeout=20)

    def start_sidecar(self, max_files=20_000):
        self.sidecar = self.stack.start_sidecar(self.config("full", max_files))

    def stop_sidecar(self):
        os.killpg(self.sidecar.pid, signal.SIGTERM)
        self.sidecar.wait(timeout=10)

    def sidecar_counts(self):
        url = "http://127.0.0.1:%d/health" % self.ports["sidecar"]
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())["session_log"]

    def envoy_stat(self, level, name):
        url = "http://127.0.0.1:%d/stats?filter=%s" % (self.ports["admin"][level], name)
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + ":"):
                    return int(line.split(":")[1])
        return 0


def record_files(dir_):
    return sorted(p for p in Path(dir_).iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def records(dir_):
    out = []
    for p in record_files(dir_):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass  # rotated away while reading
    return out


def wait_records(dir_, pred, n=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = [r for r in records(dir_) if pred(r)]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError("%d of %d records after %ss" % (len(found), n, timeout))


def said(r, text):
    return text in json.dumps(r.get("request", {}))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("session-log")
    stack = Stack(work)
    levels = list(KEYS)
    ports = {"listen": {lv: free_port() for lv in levels}, "admin": {lv: free_port() for lv in levels},
             "a": free_port(), "b": free_port(), "sidecar": free_port(), "grpc": free_port()}
    dir_ = work / "sessions"
    e = Env(stack, work, ports, dir_)
    try:
        stack.start_backend("demo", ports["a"], "/v1")
        stack.start_backend("hosted", ports["b"], "/openai/v1", api_key=HOSTED_KEY)
        e.start_sidecar()
        for level in levels:
            e.envoys[level] = stack.start_envoy(e.config(level), {"SESSION_TEST_HOSTED_KEY": HOSTED_KEY},
                                                name="envoy-" + level)
        yield e
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_a_chat_answer_leaves_a_record_with_what_was_sent_and_said(env):
    word = "hello-" + uuid.uuid4().hex[:8]
    resp = env.client().chat.completions.create(
        model="chat", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": word}])
    (r,) = wait_records(env.dir, lambda r: said(r, word))
    assert r["schema"] == 1 and r["request_id"]
    assert r["sequence"]["n"] >= 1 and r["sequence"]["epoch"] // 1000 <= time.time() * 1000
    datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
    assert (r["api"], r["key"], r["model"], r["stream"]) == ("chat", "full-client", "chat", False)
    assert r["attempts"] == [{"backend": "demo", "model": "acme-chat-7b", "status": 200}]
    assert r["status"] == 200 and r["envoy"]["status"] == 200 and r["envoy"]["flags"] == []
    assert r["envoy"]["upstream_cluster"] == "airouter_backend_demo"
    assert r["request"]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": word}]
    assert r["response"]["text"] == resp.choices[0].message.content == "You said: " + word
    assert r["response"]["finish_reason"] == "stop"
    assert r["usage"]["total_tokens"] == resp.usage.total_tokens
    t = r["timings"]
    assert 0 <= t["first_byte_ms"] <= t["total_ms"] <= r["envoy"]["duration_ms"] + 5


def test_a_streamed_answer_is_recorded_from_its_deltas(env):
    word = "stream-" + uuid.uuid4().hex[:8]
    stream = env.client().chat.completions.create(
        model="chat", stream=True, messages=[{"role": "user", "content": word + " and more words"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    (r,) = wait_records(env.dir, lambda r: said(r, word))
    assert r["stream"] is True
    assert r["response"]["text"] == text == "You said: %s and more words" % word
    assert r["timings"]["first_token_ms"] >= r["timings"]["first_byte_ms"]


def test_each_capture_level_keeps_what_it_says(env):
    word = "level-" + uuid.uuid4().hex[:8]
    for level in ("metadata", "none"):
        env.client(level).chat.completions.create(model="chat", messages=[{"role": "user", "content": word}])
    meta, = wait_records(env.dir, lambda r: r.get("key") == "metadata-client")
    none, = wait_records(env.dir, lambda r: r.get("key") == "none-client")
    assert meta["request"]["count"] == 1 and meta["request"]["bytes"] > 0 and "messages" not in meta["request"]
    assert meta["response"]["text_bytes"] == len("You said: " + word) and "text" not in meta["response"]
    assert "request" not in none and "response" not in none
    for r in (meta, none):
        assert word not in json.dumps(r)
        assert r["usage"]["total_tokens"] > 0 and r["status"] == 200


def test_no_record_holds_a_key_or_an_authorization_header(env):
    word = "secret-" + uuid.uuid4().hex[:8]
    env.client().chat.completions.create(model="hosted", messages=[{"role": "user", "content": word}])
    req = urllib.request.Request(env.base() + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "chat", "messages": []}).encode(),
                                 headers={"authorization": "Bearer sk-wrong-" + word, "content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 401
    hosted, = wait_records(env.dir, lambda r: said(r, word))
    assert hosted["attempts"][0]["backend"] == "hosted"
    denied, = wait_records(env.dir, lambda r: r.get("error", {}).get("code") == "invalid_api_key")
    assert denied["status"] == 401 and "key" not in denied
    for p in record_files(env.dir):
        text = p.read_text().lower()
        for secret in list(KEYS.values()) + [HOSTED_KEY, "sk-wrong", "authorization", "bearer"]:
            assert secret.lower() not in text, "%s in %s" % (secret, p.name)


def test_a_client_that_leaves_mid_stream_leaves_a_record_of_what_it_got(env):
    word = "leaver-" + uuid.uuid4().hex[:8]
    with httpx.Client(timeout=10) as c:
        with c.stream("POST", env.base() + "/v1/chat/completions",
                      headers={"authorization": "Bearer " + KEYS["full"]},
                      json={"model": "ticker", "stream": True, "messages": [{"role": "user", "content": word}]}) as r:
            got = b""
            for chunk in r.iter_raw():
                got += chunk
                if got.count(b"\"tick \"") >= 3:
                    break
    (rec,) = wait_records(env.dir, lambda r: said(r, word))
    assert "DC" in rec["envoy"]["flags"], rec["envoy"]
    assert rec["response"]["text"].startswith("tick tick tick")
    assert len(rec["response"]["text"]) < len("tick ") * 20


def test_ten_thousand_requests_at_concurrency_32_leave_ten_thousand_records(env):
    run = uuid.uuid4().hex[:8]
    before = env.sidecar_counts()
    handed_before = env.envoy_stat("full", "wasmcustom.airouter_session_records")

    async def load():
        statuses = []
        queue = iter(range(LOAD_REQUESTS))
        limits = httpx.Limits(max_connections=LOAD_CONCURRENCY, max_keepalive_connections=LOAD_CONCURRENCY)
        headers = {"authorization": "Bearer " + KEYS["full"], "content-type": "application/json"}
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def worker():
                for i in queue:
                    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "load-%s-%d" % (run, i)}]})
                    r = await client.post(env.base() + "/v1/chat/completions", content=body, headers=headers)
                    statuses.append(r.status_code)
            await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
        return statuses

    started = time.monotonic()
    statuses = asyncio.run(load())
    sent_in = time.monotonic() - started
    assert statuses.count(200) == LOAD_REQUESTS
    tag = "load-%s-" % run
    found = wait_records(env.dir, lambda r: said(r, tag), n=LOAD_REQUESTS, timeout=120)
    seen = {r["request"]["messages"][0]["content"] for r in found}
    assert len(found) == len(seen) == LOAD_REQUESTS, "one record per request, none twice"
    assert len({r["request_id"] for r in found}) == LOAD_REQUESTS
    # Both of Envoy's workers numbered their records in one sequence, each number once.
    numbers = sorted(r["sequence"]["n"] for r in found)
    assert len({r["sequence"]["epoch"] for r in found}) == 1
    assert numbers == list(range(numbers[0], numbers[0] + LOAD_REQUESTS)), "no hole, no number twice"
    after = env.sidecar_counts()
    assert after["dropped"] == before["dropped"] and after["failed"] == before["failed"]
    assert after["lost"] == before["lost"] and after["duplicates"] == before["duplicates"]
    assert env.envoy_stat("full", "access_logs.grpc_access_log.logs_dropped") == 0
    # What the filter handed to Envoy is what the sidecar wrote: nothing lost on the way.
    handed = env.envoy_stat("full", "wasmcustom.airouter_session_records") - handed_before
    assert handed == after["written"] - before["written"] == LOAD_REQUESTS
    print("%d requests at concurrency %d in %.1f s, all recorded after %.1f s"
          % (LOAD_REQUESTS, LOAD_CONCURRENCY, sent_in, time.monotonic() - started))


def test_a_sidecar_that_is_down_holds_up_no_request_and_what_it_misses_is_counted(env):
    before = env.sidecar_counts()
    handed_before = env.envoy_stat("full", "wasmcustom.airouter_session_records")
    env.stop_sidecar()
    assert (env.dir / ".airouter-sequences.state").exists(), "the counts are saved when the sidecar stops"
    word = "down-" + uuid.uuid4().hex[:8]
    for i in range(20):
        started = time.monotonic()
        env.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "%s-%d" % (word, i)}])
        assert time.monotonic() - started < 2.0, "a request waited for the session log"
    time.sleep(1)
    assert not [r for r in records(env.dir) if said(r, word)]
    assert env.envoy_stat("full", "cluster.airouter_session_log.upstream_cx_connect_fail") > 0
    # Rotation is tried by the same start: records older than 7 days, and a file that is not a
    # record, are put beside the 10,000 and more records already there.
    eight_days_ago = int((datetime.now(timezone.utc) - timedelta(days=8)).timestamp() * 1000)
    for i in range(3):
        ms = eight_days_ago + i
        stamp = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y%m%dT%H%M%S.") + "%03dZ" % (ms % 1000)
        name = "%s-0000beef-%010d.json" % (stamp, i)
        (env.dir / name).write_text('{"old": true}')
        env.old.append(name)
    (env.dir / "notes.txt").write_text("not a record")
    env.start_sidecar(max_files=50)
    started = time.monotonic()
    # A loss shows once a later record of the same Envoy arrives. After the restart a record can
    # itself be lost: it joins a worker's stream that Envoy is still retrying, and when that
    # stream no longer fits Envoy's retry buffer, Envoy drops the stream with it (seen under CI
    # load). So requests go on, one a second, until one's record comes through.
    after_word = "back-" + uuid.uuid4().hex[:8]
    sent_after = 0
    while True:
        env.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "%s-%d" % (after_word, sent_after)}])
        sent_after += 1
        try:
            wait_records(env.dir, lambda r: said(r, after_word), timeout=1.0)
            break
        except AssertionError:
            assert sent_after < 30, "no record arrived in 30 requests after the sidecar came back"
    # Every record the filter handed to Envoy in the meantime is written or counted: the
    # restarted sidecar's written + dropped + failed (since it started) and lost (since before
    # the outage: the counts were saved and read back) add up to the filter's count. Envoy
    # itself counts only what overflows a stream's buffer, and counted the rest as written.
    # Records Envoy still holds in a stream it is retrying come within its longest back-off
    # (5 s) of the sidecar being back, and are then taken off `lost`: the counts are read after.
    settle = started + 7
    deadline = settle + 20
    while True:
        handed = env.envoy_stat("full", "wasmcustom.airouter_session_records") - handed_before
        c = env.sidecar_counts()
        accounted = c["written"] + c["dropped"] + c["failed"] + c["lost"] - before["lost"]
        now = time.monotonic()
        if (accounted == handed and now > settle) or now > deadline:
            break
        time.sleep(0.5)
    arrived = len([r for r in records(env.dir) if (said(r, word) or said(r, after_word)) and r.get("key") == "full-client"])
    assert handed == 20 + sent_after, (handed, sent_after)
    assert accounted == handed, (handed, c, before["lost"])
    assert arrived == c["written"], (arrived, c)
    assert c["lost"] - before["lost"] == handed - arrived
    env.lost = c["lost"]
    down = len([r for r in records(env.dir) if said(r, word)])
    print("sidecar down: 20 records handed to Envoy, %d arrived after the restart (%d sent after it), %d counted lost, %d duplicates"
          % (down, sent_after, c["lost"] - before["lost"], c["duplicates"]))


def test_the_sidecar_rotates_by_age_and_by_count(env):
    names = [p.name for p in record_files(env.dir)]
    assert not set(env.old) & set(names), "records older than 7 days are deleted"
    assert len(names) == 50, "only the newest 50 are kept"
    assert (env.dir / "notes.txt").exists(), "files not named as records are left alone"
    deleted = env.sidecar_counts()["deleted"]
    word = "after-" + uuid.uuid4().hex[:8]
    for i in range(5):
        env.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "%s-%d" % (word, i)}])
    wait_records(env.dir, lambda r: said(r, word), n=5)
    assert len(record_files(env.dir)) == 50
    counts = env.sidecar_counts()
    assert counts["deleted"] >= deleted + 5
    assert counts["lost"] == env.lost, "what was counted lost stays counted as newer records come"
