#!/usr/bin/env python3
"""Soak: many requests at high concurrency through the demo stack (real Envoy, the release
`.wasm`, `examples/demo_backend.py`), mixing JSON answers, streams, errors (4xx, 5xx, 429) and
clients that hang up mid-stream, while Envoy's memory is sampled. `make soak` runs it; it is not
part of `make test`.

It passes when
- every response is well-formed: JSON bodies parse (errors in OpenAI's envelope), streams end
  with `data: [DONE]` or an error event, every status is the one its kind of request gets, and no
  backend model name reaches the client;
- memory is flat after warm-up: Envoy's RSS (VmRSS from /proc, sampled every 0.5 s) peaks in the
  last quarter of the requests at most MAX_GROWTH_MIB above its peak in the second quarter (the
  first quarter is warm-up: worker VMs, connection pools, allocator arenas). An absolute bound,
  as most of the RSS is V8's fixed heap: 4 MiB over the 50,000 requests between those quarters'
  peaks is a leak of under 100 bytes a request;
- the counters add up: Envoy counted exactly the requests sent, and the filter's counters (admin
  `/stats`) match what was sent and answered: denied keys, requests per key and per model,
  requests and 5xx per backend (against Envoy's own cluster counters), tokens per key and model
  (against the usage the clients read).

Loopback only; bounded by the request count and by --deadline seconds.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from stack import Stack, free_port  # noqa: E402

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.provider]
kind = "openai"
url = "http://127.0.0.1:{backend}/v1"
timeout_ms = 30000

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "provider", model = "soak-llama-backend" }}

[[models]]
name = "embed"
apis = ["embeddings"]
target = {{ backend = "provider", model = "soak-embed-backend" }}

[[models]]
name = "limited"
apis = ["chat"]
target = {{ backend = "provider", model = "fail-429" }}

[[models]]
name = "broken"
apis = ["chat"]
target = {{ backend = "provider", model = "fail-500" }}

[[models]]
name = "picky"
apis = ["chat"]
target = {{ backend = "provider", model = "fail-400" }}

[[keys]]
name = "soak"
key = "sk-soak"

[[keys]]
name = "narrow"
key = "sk-narrow"
models = ["chat"]
"""

BACKEND_NAMES = ("soak-llama-backend", "soak-embed-backend", "fail-429", "fail-500", "fail-400")

# Kinds of request, with their share of the mix (percent).
MIX = {
    "chat_json": 34,
    "chat_stream": 24,
    "stream_disconnect": 8,
    "completions": 4,
    "embeddings": 6,
    "rate_limited": 5,
    "backend_500": 5,
    "backend_400": 4,
    "bad_key": 3,
    "not_allowed": 2,
    "bad_json": 3,
    "unknown_model": 2,
}
# The model each kind's request resolves to (and is counted under), if any.
MODEL_OF = {
    "chat_json": "chat", "chat_stream": "chat", "stream_disconnect": "chat", "completions": "chat",
    "embeddings": "embed", "rate_limited": "limited", "backend_500": "broken", "backend_400": "picky",
}
# The statuses each kind may be answered with.
STATUS_OF = {
    "chat_json": {200}, "chat_stream": {200}, "stream_disconnect": {200}, "completions": {200},
    "embeddings": {200}, "rate_limited": {429}, "backend_500": {500, 502}, "backend_400": {400},
    "bad_key": {401}, "not_allowed": {404}, "bad_json": {400}, "unknown_model": {404},
}

MAX_GROWTH_MIB = 4


def request_for(kind, i):
    """(path, headers, body bytes, stream?) of request number `i` of this kind."""
    key = {"bad_key": "sk-wrong", "not_allowed": "sk-narrow"}.get(kind, "sk-soak")
    headers = {"authorization": "Bearer " + key, "content-type": "application/json"}
    chat = lambda model, **kw: {"model": model, "messages": [{"role": "user", "content": "soak %d" % i}], **kw}  # noqa: E731
    path, body, stream = "/v1/chat/completions", None, False
    if kind == "chat_json" or kind == "bad_key":
        body = chat("chat")
    elif kind in ("chat_stream", "stream_disconnect"):
        body, stream = chat("chat", stream=True), True
    elif kind == "completions":
        path, body = "/v1/completions", {"model": "chat", "prompt": "soak %d" % i}
    elif kind == "embeddings":
        path, body = "/v1/embeddings", {"model": "embed", "input": ["soak", str(i)]}
    elif kind == "rate_limited":
        body = chat("limited")
    elif kind == "backend_500":
        body = chat("broken")
    elif kind == "backend_400":
        body = chat("picky")
    elif kind == "not_allowed":
        body = chat("broken")
    elif kind == "unknown_model":
        body = chat("no-such-model-%d" % (i % 7))
    elif kind == "bad_json":
        return path, headers, b'{"model": "chat", "messages": [', False
    return path, headers, json.dumps(body).encode(), stream


class Failures:
    """Keeps the first few failures of each kind, and counts them all."""

    def __init__(self):
        self.count = collections.Counter()
        self.examples = collections.defaultdict(list)

    def add(self, what, detail):
        self.count[what] += 1
        if len(self.examples[what]) < 3:
            self.examples[what].append(detail[:400])

    def __bool__(self):
        return bool(self.count)

    def report(self):
        return "\n".join("  %s: %d, e.g. %s" % (w, n, self.examples[w]) for w, n in self.count.items())


def leaks(text):
    return [n for n in BACKEND_NAMES if n in text]


def check_json(kind, status, body, fails, tokens):
    try:
        doc = json.loads(body)
    except ValueError:
        return fails.add("body is not JSON", "%s %d %r" % (kind, status, body[:200]))
    if status >= 400:
        err = doc.get("error") if isinstance(doc, dict) else None
        if not (isinstance(err, dict) and isinstance(err.get("message"), str) and "type" in err):
            fails.add("error not in OpenAI's envelope", "%s %d %r" % (kind, status, body[:200]))
        return
    if doc.get("model") not in ("chat", "embed"):
        fails.add("wrong model in answer", "%s %r" % (kind, body[:200]))
    usage = doc.get("usage") or {}
    if isinstance(usage.get("total_tokens"), int):
        tokens[MODEL_OF[kind]] += usage["total_tokens"]


def check_stream(kind, text, fails):
    events = [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]
    data = []
    for e in events:
        lines = [ln[5:].lstrip(" ") if ln.startswith("data:") else None for ln in e.split("\n")]
        data.extend(d for d in lines if d is not None)
    if not data:
        return fails.add("empty stream", kind)
    last_json = None
    for d in data[:-1] if data[-1] == "[DONE]" else data:
        try:
            last_json = json.loads(d)
        except ValueError:
            return fails.add("stream event is not JSON", repr(d[:200]))
        if isinstance(last_json, dict) and "error" not in last_json and last_json.get("model") != "chat":
            fails.add("wrong model in stream", repr(d[:200]))
    ends_done = data[-1] == "[DONE]"
    ends_error = isinstance(last_json, dict) and "error" in last_json
    if not (ends_done or ends_error):
        fails.add("stream ends without [DONE] or an error", repr(text[-200:]))


class Run:
    def __init__(self, base, n, concurrency, deadline):
        self.base, self.n, self.concurrency, self.deadline = base, n, concurrency, deadline
        rng = random.Random(14)
        kinds = [k for k, share in MIX.items() for _ in range(share)]
        self.schedule = [rng.choice(kinds) for _ in range(n)]
        self.next = 0
        self.done = 0
        self.sent = collections.Counter()
        self.statuses = collections.Counter()
        self.tokens = collections.Counter()
        self.fails = Failures()
        self.latencies = []

    async def one(self, client, i):
        kind = self.schedule[i]
        path, headers, body, stream = request_for(kind, i)
        self.sent[kind] += 1
        started = time.monotonic()
        try:
            async with client.stream("POST", self.base + path, headers=headers, content=body) as r:
                self.statuses[r.status_code] += 1
                if r.status_code not in STATUS_OF[kind]:
                    text = (await r.aread()).decode(errors="replace")
                    return self.fails.add("unexpected status", "%s got %d: %s" % (kind, r.status_code, text[:200]))
                if kind == "stream_disconnect":
                    async for _ in r.aiter_raw():
                        break
                    return  # leaving the block closes the connection mid-stream
                raw = await r.aread()
                text = raw.decode(errors="replace")
                # Answers must carry no backend name (errors are left to tests/e2e: how a backend's
                # error text is renamed is not what a soak is for). Under load this also catches
                # a response renamed with another request's names.
                if r.status_code == 200 and leaks(text):
                    self.fails.add("backend name reached the client", "%s: %s" % (kind, leaks(text)))
                if stream and r.status_code == 200:
                    if "text/event-stream" not in r.headers.get("content-type", ""):
                        self.fails.add("stream without text/event-stream", kind)
                    check_stream(kind, text, self.fails)
                else:
                    check_json(kind, r.status_code, raw, self.fails, self.tokens)
        except httpx.HTTPError as e:
            self.fails.add("transport error", "%s: %r" % (kind, e))
        finally:
            self.latencies.append(time.monotonic() - started)
            self.done += 1

    async def worker(self, client):
        while self.next < self.n and time.monotonic() < self.deadline:
            i = self.next
            self.next += 1
            await self.one(client, i)

    async def run(self):
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
            await asyncio.gather(*(self.worker(client) for _ in range(self.concurrency)))


class MemorySampler(threading.Thread):
    """Envoy's resident set size every `every` seconds, with how many requests were done then."""

    def __init__(self, pid, progress, every=0.5):
        super().__init__(daemon=True)
        self.pid, self.progress, self.every = pid, progress, every
        self.samples = []  # (seconds since start, requests done, RSS in KiB)
        self.stop = threading.Event()
        self.started = time.monotonic()

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self):
        last_report = 0.0
        while not self.stop.is_set():
            t, done, rss = time.monotonic() - self.started, self.progress(), self.rss_kib()
            self.samples.append((t, done, rss))
            if t - last_report >= 30:
                print("  %5.0f s: %d requests done, Envoy RSS %.1f MiB" % (t, done, rss / 1024), flush=True)
                last_report = t
            self.stop.wait(self.every)


def memory_verdict(samples, n):
    """Peak RSS (KiB) in each quarter of the requests, and whether the last is within MAX_GROWTH_MIB
    of the second."""
    quarters = [[rss for _, done, rss in samples if q * n / 4 <= done < (q + 1) * n / 4 or (q == 3 and done >= n)]
                for q in range(4)]
    peaks = [max(q) if q else 0 for q in quarters]
    flat = bool(peaks[1]) and peaks[3] <= peaks[1] + MAX_GROWTH_MIB * 1024
    return peaks, flat


def envoy_stats(admin):
    with httpx.Client(timeout=10) as c:
        doc = c.get("http://127.0.0.1:%d/stats?format=json" % admin).json()
    return {s["name"]: s.get("value", 0) for s in doc["stats"] if "name" in s}


def check_counters(stats, run, fails):
    """The filter's counters against what was sent and answered, and against Envoy's own."""
    def stat(name):
        return stats.get(name, stats.get("wasmcustom." + name, 0))

    sent = run.sent
    per_model = collections.Counter()
    for kind, n in sent.items():
        if kind in MODEL_OF:
            per_model[MODEL_OF[kind]] += n
    soak_key = sum(n for k, n in sent.items() if k not in ("bad_key", "not_allowed"))
    cluster = "cluster.airouter_backend_provider."
    expected = {
        "http.airouter.downstream_rq_total": sum(sent.values()),
        "airouter_key_denied": sent["bad_key"],
        "airouter_key_requests.key.soak": soak_key,
        "airouter_key_requests.key.narrow": sent["not_allowed"],
        "airouter_backend_errors.backend.provider": sent["backend_500"],
        "airouter_key_tokens.key.soak": sum(run.tokens.values()),
        "airouter_backend_requests.backend.provider": stat(cluster + "upstream_rq_total"),
        cluster + "upstream_rq_5xx": sent["backend_500"],
        "http.airouter.downstream_rq_4xx": sum(n for s, n in run.statuses.items() if 400 <= s < 500),
        "http.airouter.downstream_rq_5xx": sum(n for s, n in run.statuses.items() if s >= 500),
    }
    for model in ("chat", "embed", "limited", "broken", "picky"):
        expected["airouter_model_requests.model." + model] = per_model[model]
    for model in ("chat", "embed"):
        expected["airouter_model_tokens.model." + model] = run.tokens[model]
    table = []
    for name, want in expected.items():
        got = stat(name)
        table.append((name, got, want))
        if got != want:
            fails.add("counter does not add up", "%s = %s, expected %s" % (name, got, want))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=1800, help="give up after this many seconds")
    ap.add_argument("--envoy-concurrency", type=int, default=2, help="Envoy worker threads")
    args = ap.parse_args()

    stack = Stack()
    passed = False
    port, admin, backend = free_port(), free_port(), free_port()
    started = time.monotonic()
    try:
        stack.start_backend("provider", backend)
        config = stack.workdir / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, backend=backend))
        envoy = stack.start_envoy(config, concurrency=args.envoy_concurrency)
        run = Run("http://127.0.0.1:%d" % port, args.requests, args.concurrency, started + args.deadline)
        sampler = MemorySampler(envoy.pid, lambda: run.done)
        sampler.start()
        t0 = time.monotonic()
        asyncio.run(run.run())
        elapsed = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
        time.sleep(0.5)  # let Envoy finish the last streams' accounting
        stats = envoy_stats(admin)
        fails = run.fails
        if run.done < args.requests:
            fails.add("deadline", "only %d of %d requests in %.0f s" % (run.done, args.requests, args.deadline))
        table = check_counters(stats, run, fails)
        peaks, flat = memory_verdict(sampler.samples, args.requests)
        if not flat:
            fails.add("memory grew", "peak RSS per quarter (MiB): %s" % [round(p / 1024, 1) for p in peaks])

        lat = sorted(run.latencies)
        pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0  # noqa: E731
        print("soak: %d requests at concurrency %d in %.1f s (%.0f req/s), p50 %.1f ms, p99 %.1f ms"
              % (run.done, args.concurrency, elapsed, run.done / max(elapsed, 1e-9), pct(0.5), pct(0.99)))
        print("mix: " + ", ".join("%s %d" % kv for kv in sorted(run.sent.items())))
        print("statuses: " + ", ".join("%d: %d" % kv for kv in sorted(run.statuses.items())))
        print("envoy RSS peak per quarter of the requests (MiB): %s; last vs second: %+.1f MiB (limit +%d)"
              % ([round(p / 1024, 1) for p in peaks], (peaks[3] - peaks[1]) / 1024, MAX_GROWTH_MIB))
        print("envoy RSS first/last sample (MiB): %.1f / %.1f, %d samples"
              % (sampler.samples[0][2] / 1024, sampler.samples[-1][2] / 1024, len(sampler.samples)))
        print("counters (got / expected):")
        for name, got, want in table:
            print("  %-50s %8s / %-8s %s" % (name, got, want, "ok" if got == want else "MISMATCH"))
        trace = os.environ.get("SOAK_TRACE")
        if trace:
            Path(trace).write_text(json.dumps({"samples": sampler.samples, "peaks": peaks}))
        print("total %.1f s" % (time.monotonic() - started))
        if fails:
            print("SOAK FAILED:\n" + fails.report())
            envoy_log = (stack.workdir / "envoy.log").read_text(errors="replace").splitlines()
            print("\n".join([ln for ln in envoy_log if not ln.startswith("{")][-40:]))
            print("logs (Envoy's access log has a line per request): %s" % stack.workdir)
            return 1
        print("soak passed")
        passed = True
        return 0
    finally:
        stack.stop()
        if passed:
            shutil.rmtree(stack.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
