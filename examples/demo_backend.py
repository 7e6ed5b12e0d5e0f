#!/usr/bin/env python3
"""An OpenAI-compatible demo backend for AI Router.

`make run` starts it behind Envoy so the stack answers out of the box; the end-to-end tests start
it as a stand-in for remote providers. It answers chat and legacy completions (streamed or not) by
echoing the prompt, embeddings with deterministic vectors, speech with fixed audio bytes, and
multipart transcriptions. Backend model names whose text starts with `fail-` or `slow-` inject
faults, so tests can see how the router passes upstream errors on:

    fail-429   429 with Retry-After and an OpenAI-shaped error naming the model
    fail-500   500 with a plain-text body naming the model
    fail-400   400 in vLLM's error shape, naming the model
    fail-403   403, OpenAI's permission error naming the model
    fail-503   503 with Retry-After, an error naming the model and an internal URL
    slow-N     waits N seconds before answering
    cut-stream streams two chat chunks, then closes the connection without `data: [DONE]`
    ticking-stream streams "tick" 20 times, 0.1 s apart (with --record, GET /__streams says how
               many were sent and whether the client left first)
    attack-*   values the router must bound (absurd 429 hints, usage near 2^64): see
               `request_attack_fault`

Its model list (`GET /v1/models`) is empty unless `--models` names some (`id` or
`id:created:owned_by`, comma-separated); with `--record`, `PUT /__models` replaces the answer:
`{"data": [...]}` is listed as it is, `{"status": 503}` answers that status instead (model
discovery's tests change the list and fail on demand this way).

A backend model named `classifier` (or `classifier-*`) plays the classifier of a `[[routers]]`
entry instead of echoing: its reply is one label picked by the readable rules in `CLASSIFIER_RULES`
from the last user message it is shown, after a `<think>` block saying which rule fired, as small
reasoning models answer. Its Responses API (`/responses`) plays a search-enabled model: it answers
with a fixed, dated "search result" naming the tools it was given.

Standard library only, so it runs anywhere Python does.
"""

import argparse
import base64
import hashlib
import json
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SPEECH_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 4


def embedding(text, dim=8):
    digest = hashlib.sha256(text.encode()).digest()
    return [round((b - 128) / 128.0, 6) for b in digest[:dim]]


# The demo classifier's rules, first match wins: (label, words any of which in the message picks it).
CLASSIFIER_RULES = [
    ("ENRICH", ("today", "latest", "news", "current", "this week", "price of")),
    ("COMPLEX", ("prove", "design", "architecture", "step by step", "optimize", "refactor")),
    ("MODERATE", ("explain", "compare", "why", "summarize", "difference")),
]


def classify(text):
    """The demo classifier's label for `text`, and why: the first rule with a word in it, else
    SIMPLE (a long message is COMPLEX)."""
    lower = text.lower()
    for label, words in CLASSIFIER_RULES:
        for w in words:
            if w in lower:
                return label, "the message mentions %r" % w
    if len(text) > 600:
        return "COMPLEX", "the message is long"
    return "SIMPLE", "no rule matched"


def last_user_text(messages):
    for m in reversed(messages or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c)
    return ""


def parse_multipart(body, content_type):
    """Minimal multipart/form-data reader: {name: bytes}."""
    boundary = None
    for part in content_type.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "boundary":
            boundary = v.strip('"')
    if not boundary:
        return {}
    fields = {}
    for chunk in body.split(b"--" + boundary.encode()):
        if b"\r\n\r\n" not in chunk:
            continue
        head, _, content = chunk.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        for line in head.decode(errors="replace").split("\r\n"):
            if line.lower().startswith("content-disposition"):
                for p in line.split(";"):
                    k, _, v = p.strip().partition("=")
                    if k == "name":
                        fields[v.strip('"')] = content
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-backend"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("demo-backend: " + fmt % args + "\n")

    # -- plumbing ----------------------------------------------------------------------------
    def send_json(self, status, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_bytes(self, status, ctype, body):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def stream_events(self, events):
        """Sends SSE events cut at awkward places (inside events and inside UTF-8 characters),
        as real servers and proxies do, to exercise the router's framing."""
        data = b"".join(b"data: " + e + b"\n\n" for e in events)
        cuts = sorted({len(data) * k // 7 for k in range(1, 7)})
        prev = 0
        for c in cuts + [len(data)]:
            self.write_chunk(data[prev:c])
            prev = c
            time.sleep(0.002)
        self.end_stream()

    def prefix_ok(self):
        prefix = self.server.prefix
        path = self.path.split("?", 1)[0]
        if not path.startswith(prefix + "/"):
            self.send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error", "param": None, "code": None}})
            return None
        return path[len(prefix):]

    def auth_ok(self):
        want = self.server.api_key
        if want and self.headers.get("authorization") != f"Bearer {want}":
            self.send_json(401, {"error": {"message": "Incorrect API key provided to the demo backend.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
            return False
        return True

    def record(self, body):
        if self.server.record:
            with self.server.lock:
                self.server.requests.append({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body_b64": base64.b64encode(body).decode(),
                })

    # -- routes ------------------------------------------------------------------------------
    def do_GET(self):
        if self.path == "/__requests" and self.server.record:
            with self.server.lock:
                return self.send_json(200, self.server.requests)
        if self.path == "/__streams" and self.server.record:
            with self.server.lock:
                return self.send_json(200, self.server.streams)
        if self.path == "/health":
            return self.send_json(200, {"status": "ok"})
        sub = self.prefix_ok()
        if sub is None or not self.auth_ok():
            return
        self.record(b"")
        if sub == "/models":
            with self.server.lock:
                answer = self.server.models
            if "status" in answer:
                return self.send_json(int(answer["status"]), {"error": {"message": "the model list is down", "type": "server_error", "param": None, "code": None}})
            return self.send_json(200, {"object": "list", "data": answer.get("data", [])})
        self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})

    def do_PUT(self):
        if self.path == "/__models" and self.server.record:
            length = int(self.headers.get("content-length") or 0)
            answer = json.loads(self.rfile.read(length) or b"{}")
            with self.server.lock:
                self.server.models = answer
            return self.send_json(200, {})
        self.send_json(405, {})

    def do_DELETE(self):
        if self.path == "/__requests":
            with self.server.lock:
                self.server.requests.clear()
                self.server.streams.clear()
            return self.send_json(200, {})
        self.send_json(405, {})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.record(body)
        sub = self.prefix_ok()
        if sub is None or not self.auth_ok():
            return
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            fields = parse_multipart(body, ctype)
            req = {k: v.decode(errors="replace") for k, v in fields.items() if k != "file"}
            req["_file_size"] = len(fields.get("file", b""))
        else:
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return self.send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error", "param": None, "code": None}})
        model = str(req.get("model", ""))
        if self.request_attack_fault(model, req):
            return
        if self.fault(model):
            return
        handler = {
            "/chat/completions": self.chat,
            "/completions": self.completions,
            "/embeddings": self.embeddings,
            "/audio/speech": self.speech,
            "/audio/transcriptions": self.transcription,
            "/audio/translations": self.transcription,
            "/responses": self.responses_api,
            "/moderations": self.moderations,
            "/images/generations": self.images,
        }.get(sub)
        if handler is None:
            return self.send_json(404, {"error": {"message": f"unknown path {sub}", "type": "invalid_request_error", "param": None, "code": None}})
        handler(req, model)

    def fault(self, model):
        if model.startswith("slow-"):
            time.sleep(float(model[5:] or 1))
            return False
        if model == "fail-429":
            self.send_json(429, {"error": {"message": f"Rate limit reached for {model}.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, [("retry-after", "1")])
            return True
        if model == "fail-500":
            self.send_bytes(500, "text/plain", f"backend {model} crashed".encode())
            return True
        if model == "fail-403":
            self.send_json(403, {"error": {"message": f"This key may not use {model}.", "type": "permission_error", "param": None, "code": "model_not_allowed"}})
            return True
        if model == "fail-503":
            self.send_json(503, {"error": {"message": f"{model} is overloaded at http://10.9.8.7:8000.", "type": "server_error", "param": None, "code": None}}, [("retry-after", "2")])
            return True
        if model == "cut-stream":
            # A body delimited by closing the connection (no length, no chunking): the backend
            # "dies" after two events, and the stream simply ends.
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for word in ("partial", " answer"):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.close_connection = True
            return True
        if model == "fail-400":
            self.send_json(400, {"object": "error", "message": f"model {model} rejects this", "type": "BadRequestError", "param": None, "code": 400})
            return True
        return False

    # -- request-side attack faults (tests/e2e/test_attack_request.py) ---------------------------
    # Backends sending values the router must bound: 429s whose hints ask for absurd waits, and
    # usage reports near 2^64. Only for backend model names starting with `attack-`.
    ATTACK_429_HINTS = {
        "attack-retry-inf": [("retry-after", "inf")],
        "attack-retry-1e300": [("retry-after", "1e300")],
        "attack-retry-negative": [("retry-after", "-5")],
        "attack-retry-huge": [("retry-after", "99999999999999999999")],
        "attack-retry-date": [("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")],
        "attack-retry-reset": [("x-ratelimit-reset-requests", "99999999h"), ("x-ratelimit-reset-tokens", "1m30s")],
    }

    def request_attack_fault(self, model, req):
        """`attack-retry-*`: 429 with the hints above; `attack-limit-*` (a pass-through name):
        429 with `Retry-After: 30`; `attack-huge-usage`: a chat answer (streamed if asked) whose
        usage says 18446744073709551615 tokens."""
        hints = self.ATTACK_429_HINTS.get(model)
        if hints is None and model.startswith("attack-limit-"):
            hints = [("retry-after", "30")]
        if hints is not None:
            self.send_json(429, {"error": {"message": "Rate limit reached.", "type": "requests", "param": None,
                                           "code": "rate_limit_exceeded"}}, hints)
            return True
        if model != "attack-huge-usage":
            return False
        huge = 2**64 - 1
        usage = {"prompt_tokens": huge, "completion_tokens": 0, "total_tokens": huge}
        message = {"role": "assistant", "content": "counted"}
        if req.get("stream"):
            self.start_stream()
            events = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": message, "finish_reason": "stop"}]},
                      {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage}]
            self.stream_events([json.dumps(e).encode() for e in events] + [b"[DONE]"])
            return True
        self.send_json(200, {"id": "c", "object": "chat.completion", "created": 0, "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})
        return True
    # -- end of request-side attack faults ------------------------------------------------------

    def chat(self, req, model):
        if model == "classifier" or model.startswith("classifier-"):
            label, why = classify(last_user_text(req.get("messages")))
            text = "<think>%s, so %s.</think>\n%s" % (why, label, label)
            usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
            return self.send_json(200, {"id": "chatcmpl-classify", "object": "chat.completion", "created": int(time.time()), "model": model,
                                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                                        "usage": usage})
        text = "You said: " + last_user_text(req.get("messages"))
        limit = req.get("max_completion_tokens") or req.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and 0 < limit < len(text.split()):
            # Like a real server: at most max_tokens "tokens" (words here), then finish "length".
            text, finish = " ".join(text.split()[:limit]), "length"
        if model == "ticking-stream" and req.get("stream"):
            return self.ticking_stream(model)
        cid, created = "chatcmpl-demo", int(time.time())
        usage = {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}
        if req.get("stream"):
            self.start_stream()
            words = text.split(" ")
            events = [{"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": model,
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
            for i, w in enumerate(words):
                piece = w if i == 0 else " " + w
                events.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            events.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (req.get("stream_options") or {}).get("include_usage"):
                events.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage})
            encoded = [json.dumps(e, ensure_ascii=False).encode() for e in events] + [b"[DONE]"]
            return self.stream_events(encoded)
        self.send_json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model, "system_fingerprint": model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                             "usage": usage})

    def ticking_stream(self, model):
        """20 "tick " chunks 0.1 s apart; with --record, `GET /__streams` then tells how many were
        sent and whether the client left first (a write failed), so tests can see a cancelled
        request stop the generation."""
        self.start_stream()
        sent, left = 0, False
        try:
            for _ in range(20):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": "tick "}, "finish_reason": None}]}
                self.write_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                sent += 1
                time.sleep(0.1)
            self.write_chunk(b"data: [DONE]\n\n")
            self.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            left = True
            self.close_connection = True
        if self.server.record:
            with self.server.lock:
                self.server.streams.append({"model": model, "chunks_sent": sent, "client_left": left})

    def completions(self, req, model):
        prompt = req.get("prompt", "")
        prompts = prompt if isinstance(prompt, list) else [prompt]
        choices = [{"index": i, "text": f" echo: {p}", "finish_reason": "stop", "logprobs": None} for i, p in enumerate(prompts)]
        usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        if req.get("stream"):
            self.start_stream()
            events = [json.dumps({"id": "cmpl-demo", "object": "text_completion", "created": 0, "model": model, "choices": [c]}).encode() for c in choices]
            return self.stream_events(events + [b"[DONE]"])
        self.send_json(200, {"id": "cmpl-demo", "object": "text_completion", "created": int(time.time()), "model": model, "choices": choices, "usage": usage})

    def embeddings(self, req, model):
        inp = req.get("input", "")
        texts = inp if isinstance(inp, list) else [inp]
        data = []
        for i, t in enumerate(texts):
            vec = embedding(str(t))
            if req.get("encoding_format") == "base64":
                vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        self.send_json(200, {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})

    def speech(self, req, model):
        self.send_bytes(200, "audio/mpeg", SPEECH_BYTES)

    def transcription(self, req, model):
        self.send_json(200, {"text": f"transcribed {req.get('_file_size', 0)} bytes"})

    def responses_api(self, req, model):
        tools = [t.get("type") for t in req.get("tools") or [] if isinstance(t, dict)]
        if tools:
            query = req.get("input")
            if isinstance(query, list):
                query = " ".join(str(i.get("content", "")) for i in query if isinstance(i, dict))
            text = "Search results (%s, demo data as of 2026-01-01) for %r: the demo index has one page about it." % (", ".join(map(str, tools)), str(query)[:200])
            return self.send_json(200, {"id": "resp_demo", "object": "response", "created_at": int(time.time()), "model": model, "status": "completed",
                                        "output": [{"type": "web_search_call", "id": "ws_demo", "status": "completed"},
                                                   {"type": "message", "id": "msg_demo", "status": "completed", "role": "assistant",
                                                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                                        "usage": {"input_tokens": 30, "output_tokens": 25, "total_tokens": 55}})
        self.send_json(200, {"id": "resp_demo", "object": "response", "created_at": int(time.time()), "model": model, "status": "completed",
                             "output": [{"type": "message", "id": "msg_demo", "status": "completed", "role": "assistant",
                                         "content": [{"type": "output_text", "text": f"You said: {req.get('input')}", "annotations": []}]}]})

    def moderations(self, req, model):
        self.send_json(200, {"id": "modr-demo", "model": model, "results": [{"flagged": False, "categories": {}, "category_scores": {}}]})

    def images(self, req, model):
        self.send_json(200, {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(b"PNG").decode()}]})


def model_entry(spec):
    """One entry of the model list from `id` or `id:created:owned_by` (either may be empty)."""
    model_id, _, rest = spec.partition(":")
    created, _, owned_by = rest.partition(":")
    entry = {"id": model_id, "object": "model"}
    if created:
        entry["created"] = int(created)
    if owned_by:
        entry["owned_by"] = owned_by
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8101)
    ap.add_argument("--prefix", default="/v1", help="path prefix the API lives under")
    ap.add_argument("--api-key", default="", help="require this bearer key")
    ap.add_argument("--record", action="store_true", help="keep requests for GET /__requests (tests)")
    ap.add_argument("--models", default="", help="ids its /models lists: id or id:created:owned_by, comma-separated")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.prefix = args.prefix.rstrip("/")
    server.api_key = args.api_key
    server.record = args.record
    server.verbose = args.verbose
    server.requests = []
    server.models = {"data": [model_entry(m) for m in args.models.split(",") if m]}
    server.streams = []
    server.lock = threading.Lock()
    print(f"demo-backend listening on http://{args.host}:{args.port}{server.prefix}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
