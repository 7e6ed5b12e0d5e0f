"""`make bench`'s real-model section: time to first token and decoding speed of SmolLM2-135M-Instruct
(the Q4_1 GGUF `make llm` installs) reached three ways, with the same chat request (greedy, the
same prompt and max_tokens, streamed):

  llama.cpp direct   llama.cpp's OpenAI server (llama-cpp-python), one thread
  via Envoy          the same server through Envoy and the AI Router filter (alias, renaming, usage)
  via Triton         Envoy and the filter, the sidecar, Triton over KServe v2 gRPC, and the same
                     model run by llama.cpp (one thread) in tests/triton/models/llama_chat

Runs are interleaved (each round asks the three in turn, one request at a time, so the engines
never compete), after one warm-up request each; medians and p90 are reported. Time to first token
(TTFT) is from sending the request to the first chunk with text; the time per token is the time
from the first text chunk to the last over the chunks in between (one token each, or nearly).

`python tests/bench/run.py --only real-model` (`make bench-llm`) runs this section alone and
rewrites only its part of BENCHMARKS.md.
"""

import http.client
import json
import math
import os
import statistics
import time

from stack import ROOT, free_port

RUNS = int(os.environ.get("BENCH_LLM_RUNS", "10"))
MAX_TOKENS = int(os.environ.get("BENCH_LLM_TOKENS", "64"))
ALIAS = "SmolLM2-135M-Instruct"
MESSAGES = [{"role": "user", "content": "Tell me a story about a dragon who learns to read."}]
HEADING = "## Real model: time to first token and tokens per second"
PATHS = (("direct", "llama.cpp server, direct"), ("envoy", "through Envoy and the filter"),
         ("triton", "through Envoy, the filter, the sidecar and Triton"))

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[backends.llama]
kind = "openai"
url = "http://127.0.0.1:{llama}/v1"
timeout_ms = 120000

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"
timeout_ms = 120000

[[models]]
name = "llm-envoy"
apis = ["chat"]
target = {{ backend = "llama", model = "{alias}" }}

[[models]]
name = "llm-triton"
apis = ["chat"]
target = {{ backend = "triton", model = "llama_chat" }}
triton = {{ family = "vllm", chat_template_gguf = "{gguf}", stream_text = "delta" }}
"""


def start(stack):
    """The three paths on one stack: {path: (port, model name)}."""
    from stack import llm_model_path  # noqa: PLC0415

    ports = {k: free_port() for k in ("port", "admin", "sidecar", "llama", "grpc")}
    stack.start_llama_cpp(ports["llama"], ALIAS, name="bench-llama-cpp")
    stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], name="bench-triton",
                       models=["llama_chat"])
    config = stack.workdir / "real-model.toml"
    config.write_text(CONFIG.format(alias=ALIAS, gguf=llm_model_path(), **ports))
    stack.start_sidecar(config)
    stack.start_envoy(config, name="bench-envoy-llm")
    return {"direct": (ports["llama"], ALIAS), "envoy": (ports["port"], "llm-envoy"),
            "triton": (ports["port"], "llm-triton")}


def one(port, model):
    """(TTFT ms, ms per token after the first, text chunks) of one streamed chat request."""
    body = json.dumps({"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0,
                       "seed": 7, "stream": True}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"content-type": "application/json", "authorization": "Bearer sk-bench"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("%s answered %d: %s" % (model, resp.status, resp.read()[:500]))
    stamps, buf = [], b""
    while chunk := resp.read1(65536):
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            data = event.partition(b"data: ")[2]
            if not data or data == b"[DONE]":
                continue
            choices = json.loads(data).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                stamps.append(time.perf_counter())
    conn.close()
    if len(stamps) < 2:
        raise RuntimeError("%s streamed %d text chunks" % (model, len(stamps)))
    return (stamps[0] - t0) * 1e3, (stamps[-1] - stamps[0]) * 1e3 / (len(stamps) - 1), len(stamps)


def measure(stack):
    """{path: {"ttft": [...], "per_token": [...], "chunks": [...]}} over RUNS interleaved rounds."""
    paths = start(stack)
    results = {p: {"ttft": [], "per_token": [], "chunks": []} for p, _ in PATHS}
    for p, _ in PATHS:
        one(*paths[p])  # warm-up: the first request loads caches on every hop
    for r in range(RUNS):
        print("real model: round %d/%d" % (r + 1, RUNS), flush=True)
        for p, _ in PATHS:
            ttft, per_token, chunks = one(*paths[p])
            results[p]["ttft"].append(ttft)
            results[p]["per_token"].append(per_token)
            results[p]["chunks"].append(chunks)
    return results


def p90(values):
    """The nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)] if ordered else None


def report_lines(results):
    """The section of BENCHMARKS.md for `measure`'s results."""
    lines = [HEADING, "",
             "SmolLM2-135M-Instruct (Q4_1 GGUF) on CPU, llama.cpp with one thread on each server, the same "
             "chat request (a one-line prompt, greedy, `max_tokens` %d, streamed), %d rounds each asking "
             "the three paths in turn, one request at a time, after a warm-up request each. TTFT runs from "
             "sending the request to the first chunk with text; the time per token from that chunk to "
             "the last, over the chunks in between. The direct and Envoy paths share one server; Triton "
             "runs its own copy of the same library and file in its Python backend, with its own "
             "per-token loop (tests/triton/models/llama_chat), lighter than llama-cpp-python's server: "
             "the time per token compares engines as much as paths. Not pinned to cores: the machine's "
             "other load shows in the p90." % (MAX_TOKENS, RUNS), "",
             "| path | TTFT median ms | TTFT p90 ms | ms per token median | ms per token p90 | tokens/s median | text chunks |",
             "|---|---|---|---|---|---|---|"]
    for key, name in PATHS:
        r = results.get(key)
        if not r or not r["ttft"]:
            continue
        per_token = statistics.median(r["per_token"])
        lines.append("| %s | %.1f | %.1f | %.2f | %.2f | %.1f | %d |" % (
            name, statistics.median(r["ttft"]), p90(r["ttft"]), per_token, p90(r["per_token"]),
            1000 / per_token if per_token else 0, statistics.median(r["chunks"])))
    direct, envoy, triton = (results.get(k, {}).get("ttft") for k, _ in PATHS)
    if direct and envoy and triton:
        lines += ["", "Median TTFT against the direct path: %+.1f ms through Envoy and the filter, %+.1f ms "
                  "through the whole Triton path (filter, sidecar, gRPC, Triton, its Python backend); a "
                  "difference within the spread between median and p90 is noise." % (
                      statistics.median(envoy) - statistics.median(direct),
                      statistics.median(triton) - statistics.median(direct))]
    return lines


def splice(report, lines):
    """`report` (BENCHMARKS.md's text) with this section replaced by `lines`, or added before the
    micro-benchmarks when it has none."""
    text = report.rstrip("\n").split("\n")
    block = lines + [""]
    if HEADING in text:
        start = text.index(HEADING)
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
        text[start:end] = block
    else:
        at = next((i for i, line in enumerate(text) if line.startswith("## Micro-benchmarks")), len(text))
        text[at:at] = block
    return "\n".join(text) + "\n"
