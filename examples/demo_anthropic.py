#!/usr/bin/env python3
"""An Anthropic-compatible demo backend for AI Router (the Messages API, version 2023-06-01).

It plays a hosted Anthropic API: `make run` can put it behind Envoy as a `kind = "anthropic"`
backend, and the end-to-end tests start it as a stand-in for Anthropic. Deterministic:

    POST /v1/messages               "You said: <last user text>", streamed as Anthropic's events
                                    when `stream` is true; with `tools`, the first tool is
                                    called (its input built from its schema) unless the last
                                    user turn carries tool results, which are then echoed
    POST /v1/messages/count_tokens  {"input_tokens": N}
    GET  /v1/models                 the demo's models, in Anthropic's list shape

Tokens are words: `input_tokens` counts the words of the system prompt and the messages,
`output_tokens` those of the answer (`max_tokens` cuts it, with `stop_reason: max_tokens`).

Requests are checked as Anthropic checks them, so that a translation error shows: the key
(when `--api-key` is given: `x-api-key`, or `Authorization: Bearer` as recent SDKs send it), the
`anthropic-version` header, `model`, a positive
`max_tokens`, user/assistant turns that alternate and start with the user, non-empty text
blocks, `temperature` from 0 to 1, tool results answering the previous turn's tool calls, and
no fields the API does not define. Errors have Anthropic's shape
(`{"type":"error","error":{"type","message"},"request_id"}`). Models named:

    overloaded     529 overloaded_error
    rate-limited   429 rate_limit_error with retry-after: 1
    api-error      500 api_error

`--replay DIR` also serves recorded fixtures (`filter/core/testdata/anthropic/backend`): a
request whose model names a fixture (`tool_use` or `replay-tool_use` for `tool_use.sse`) gets
that file as it is, written in small pieces cut at awkward places; `.sse` files as an event stream, others as JSON
with the `status` that DIR's `cases.toml` gives the case (200 when none).

Standard library only, so it runs anywhere Python does.
"""

import argparse
import json
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_VERSION = "2023-06-01"
DEMO_MODELS = ["claude-demo-1", "claude-demo-1-mini"]

# The top-level fields of a Messages request (anything else is refused, as Anthropic does).
REQUEST_FIELDS = {
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers",
}

BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}

FAULTS = {
    "overloaded": (529, "overloaded_error", "Overloaded", []),
    "rate-limited": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit.", [("retry-after", "1")]),
    "api-error": (500, "api_error", "Internal server error", []),
}


class RequestError(Exception):
    """A request Anthropic would refuse: its status, error type and message."""

    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def invalid(message):
    return RequestError(400, "invalid_request_error", message)


def words(text):
    return len(str(text).split())


def block_texts(content):
    """The text of a message's content (a string or blocks), tool results included."""
    if isinstance(content, str):
        return [content]
    out = []
    for b in content or []:
        if b.get("type") == "text":
            out.append(b.get("text", ""))
        elif b.get("type") == "tool_result":
            c = b.get("content", "")
            out.extend(block_texts(c) if isinstance(c, list) else [str(c)])
    return out


def check_request(req):
    """Raises RequestError for what Anthropic would refuse."""
    extra = sorted(set(req) - REQUEST_FIELDS)
    if extra:
        raise invalid(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(req.get("model"), str) or not req["model"]:
        raise invalid("model: Field required")
    mt = req.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        raise invalid("max_tokens: Field required (a positive integer)")
    t = req.get("temperature")
    if t is not None and not (isinstance(t, (int, float)) and 0 <= t <= 1):
        raise invalid("temperature: Input should be less than or equal to 1")
    system = req.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise invalid("system: Input should be a valid string or list")
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: at least one message is required")
    previous_calls = set()
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise invalid("messages: first message must use the \"user\" role")
        if i > 0 and messages[i - 1].get("role") == role:
            raise invalid(f"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row")
        content = m.get("content")
        if isinstance(content, str):
            if not content and i < len(messages) - 1:
                raise invalid(f"messages.{i}: all messages must have non-empty content")
            previous_calls = set()
            continue
        if not isinstance(content, list) or not content:
            raise invalid(f"messages.{i}.content: Input should be a valid string or a non-empty list")
        calls, results, other_first = set(), [], False
        for j, b in enumerate(content):
            kind = b.get("type") if isinstance(b, dict) else None
            if kind not in BLOCK_TYPES:
                raise invalid(f"messages.{i}.content.{j}.type: Input tag '{kind}' is not a valid block type")
            if kind == "text" and not b.get("text"):
                raise invalid(f"messages.{i}.content.{j}.text: text content blocks must be non-empty")
            if kind == "tool_use":
                if role != "assistant" or not isinstance(b.get("input"), dict):
                    raise invalid(f"messages.{i}.content.{j}: tool_use blocks need an assistant turn and an object input")
                calls.add(b.get("id"))
            if kind == "tool_result":
                if role != "user" or other_first:
                    raise invalid(f"messages.{i}.content.{j}: tool_result blocks must come first in a user turn")
                results.append(b.get("tool_use_id"))
            else:
                other_first = True
        for r in results:
            if r not in previous_calls:
                raise invalid(f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {r}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
        previous_calls = calls


def schema_input(schema):
    """An input for a tool: each required property (or each property) with a demo value."""
    props = (schema or {}).get("properties") or {}
    names = (schema or {}).get("required") or list(props)
    demo = {"string": "demo", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
    return {n: demo.get((props.get(n) or {}).get("type"), "demo") for n in names}


def answer(req):
    """The content blocks and stop reason of the demo's answer."""
    messages = req["messages"]
    last = messages[-1]
    tools = req.get("tools") or []
    content = last.get("content")
    results = [b for b in content if b.get("type") == "tool_result"] if isinstance(content, list) else []
    choice = (req.get("tool_choice") or {}).get("type", "auto")
    if tools and not results and choice != "none":
        named = (req.get("tool_choice") or {}).get("name")
        tool = next((t for t in tools if t.get("name") == named), tools[0])
        blocks = [{"type": "text", "text": "Let me use %s." % tool.get("name")},
                  {"type": "tool_use", "id": "toolu_demo_%d" % len(messages), "name": tool.get("name"),
                   "input": schema_input(tool.get("input_schema"))}]
        return blocks, "tool_use"
    if results:
        text = "Tool said: " + " ".join(block_texts(results))
    else:
        text = "You said: " + " ".join(block_texts(content))
    stop = "end_turn"
    for s in req.get("stop_sequences") or []:
        if s and s in text:
            text, stop = text[:text.index(s)], "stop_sequence"
            break
    limit = req["max_tokens"]
    if limit < words(text):
        text, stop = " ".join(text.split()[:limit]), "max_tokens"
    return [{"type": "text", "text": text}], stop


def input_tokens(req):
    system = req.get("system") or ""
    system = system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)
    return words(system) + sum(words(" ".join(block_texts(m.get("content")))) for m in req["messages"])


def output_tokens(blocks):
    return sum(words(b["text"]) if b["type"] == "text" else words(json.dumps(b["input"])) for b in blocks)


def stream_events(message, blocks):
    """The events of a streamed message, as Anthropic sends them."""
    start = dict(message, content=[], stop_reason=None, stop_sequence=None,
                 usage={"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
            pieces = b["text"].split(" ")
            for k, w in enumerate(pieces):
                piece = w if k == 0 else " " + w
                yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}
            text = json.dumps(b["input"])
            for k in range(0, len(text), 7):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta", "partial_json": text[k:k + 7]}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                            "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


def pieces(data, seed=7):
    """`data` cut into small pieces of 1 to 16 bytes, the same every time (inside events, lines
    and UTF-8 characters, as real servers and proxies cut them)."""
    out, i, x = [], 0, seed
    while i < len(data):
        x = (x * 1103515245 + 12345) % (1 << 31)
        n = 1 + x % 16
        out.append(data[i:i + n])
        i += n
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-anthropic"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("demo-anthropic: " + fmt % args + "\n")

    # -- plumbing ----------------------------------------------------------------------------
    def send_body(self, status, ctype, body, extra_headers=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.send_header("request-id", "req_demo")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj, extra_headers=()):
        self.send_body(status, "application/json", json.dumps(obj).encode(), extra_headers)

    def send_error_json(self, status, kind, message, extra_headers=()):
        self.send_json(status, {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_demo"}, extra_headers)

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

    def send_stream(self, data):
        """Sends `data` as an event stream in small pieces."""
        self.start_stream()
        for piece in pieces(data):
            self.write_chunk(piece)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def headers_ok(self):
        want = self.server.api_key
        given = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
        if want and given != want:
            self.send_error_json(401, "authentication_error", "invalid x-api-key")
            return False
        if not self.headers.get("anthropic-version"):
            self.send_error_json(400, "invalid_request_error", "anthropic-version: header is required")
            return False
        return True

    def record(self, body):
        if self.server.record:
            with self.server.lock:
                self.server.requests.append({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(errors="replace"),
                })

    # -- routes ------------------------------------------------------------------------------
    def do_GET(self):
        if self.path == "/__requests" and self.server.record:
            with self.server.lock:
                return self.send_json(200, self.server.requests)
        if self.path == "/health":
            return self.send_json(200, {"status": "ok"})
        if not self.headers_ok():
            return
        if self.path.split("?", 1)[0] == "/v1/models":
            data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(), "created_at": "2025-01-01T00:00:00Z"}
                    for m in DEMO_MODELS]
            return self.send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
        self.send_error_json(404, "not_found_error", "Not found")

    def do_DELETE(self):
        if self.path == "/__requests":
            with self.server.lock:
                self.server.requests.clear()
            return self.send_json(200, {})
        self.send_error_json(405, "invalid_request_error", "Method not allowed")

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.record(body)
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return self.send_error_json(404, "not_found_error", f"Not found: {path}")
        if not self.headers_ok():
            return
        try:
            req = json.loads(body or b"null")
        except ValueError:
            return self.send_error_json(400, "invalid_request_error", "There was an issue with the request body: invalid JSON")
        if not isinstance(req, dict):
            return self.send_error_json(400, "invalid_request_error", "The request body must be a JSON object")
        model = str(req.get("model", ""))
        if path == "/v1/messages" and self.replay(model):
            return
        if model in FAULTS:
            status, kind, message, headers = FAULTS[model]
            return self.send_error_json(status, kind, message, headers)
        try:
            if path == "/v1/messages/count_tokens":
                req.setdefault("max_tokens", 1)
                check_request({k: v for k, v in req.items() if k != "stream"})
                return self.send_json(200, {"input_tokens": input_tokens(req)})
            check_request(req)
        except RequestError as e:
            return self.send_error_json(e.status, e.kind, e.message)
        self.messages(req, model)

    def replay(self, model):
        """Serves the fixture named by `model` from `--replay DIR`, if there is one."""
        folder = self.server.replay
        model = model.removeprefix("replay-")
        if not folder or not model or "/" in model or model.startswith("."):
            return False
        for ext in ("sse", "json", "txt"):
            path = folder / f"{model}.{ext}"
            if path.is_file():
                data = path.read_bytes()
                if ext == "sse":
                    self.send_stream(data)
                else:
                    status = self.server.cases.get(model, {}).get("status", 200)
                    self.send_body(status, "application/json" if ext == "json" else "text/html", data)
                return True
        return False

    def messages(self, req, model):
        blocks, stop = answer(req)
        message = {"id": "msg_demo_%d" % len(req["messages"]), "type": "message", "role": "assistant", "model": model,
                   "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": input_tokens(req), "output_tokens": output_tokens(blocks),
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        if req.get("stream"):
            data = b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), json.dumps(ev, ensure_ascii=False).encode())
                            for name, ev in stream_events(message, blocks))
            return self.send_stream(data)
        self.send_json(200, message)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8107)
    ap.add_argument("--api-key", default="", help="require this key (x-api-key or bearer)")
    ap.add_argument("--replay", default="", help="serve the fixtures in this directory by model name")
    ap.add_argument("--record", action="store_true", help="keep requests for GET /__requests (tests)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.api_key = args.api_key
    server.replay = Path(args.replay) if args.replay else None
    cases = server.replay / "cases.toml" if server.replay else None
    server.cases = tomllib.loads(cases.read_text()) if cases and cases.is_file() else {}
    server.record = args.record
    server.verbose = args.verbose
    server.requests = []
    server.lock = threading.Lock()
    print(f"demo-anthropic listening on http://{args.host}:{args.port}/v1/messages", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
