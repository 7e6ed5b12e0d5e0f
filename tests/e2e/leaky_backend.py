#!/usr/bin/env python3
"""A backend that leaks everything it can: the fake upstream of `test_attack_response.py`.

It answers any POST under `/v1` by the model named in the JSON body, and writes its model name,
URL and provider headers everywhere a client might see them:

    *leak-json      200 JSON, the name as the model, inside longer strings and as a key
    *leak-sse       a chat stream with the name in event:, id:, comment and plain data lines,
                    inside strings, and an OpenAI-shaped error event with extra fields
    *leak-error     503 OpenAI-shaped error with extra fields (the backend's URL, its model)
    *leak-text      200 text/plain naming the model
    *leak-redirect  302 with a Location naming the backend's URL
    *leak-gzip      200 JSON compressed although the request asked for no encoding
    *leak-endless   one SSE event sent as 64-byte lines that never end (17 MiB), then [DONE]
    *leak-resp      a Responses API stream whose `response.completed` reports 400 tokens
    anything else   a plain chat completion (the "normal request" after each attack)

Every response carries the leaky headers in LEAKY_HEADERS. Standard library only.
"""

import argparse
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKEND_URL = "http://10.0.0.5:8000/v1"

LEAKY_HEADERS = [
    ("openai-model", "{model}"),
    ("openai-organization", "org-leaky"),
    ("openai-processing-ms", "12"),
    ("x-model", "{model}"),
    ("server", "leaky-vllm/0.9"),
    ("via", "1.1 leaky-proxy"),
    ("x-powered-by", "LeakyFastAPI"),
    ("set-cookie", "leaky_session=1; Path=/"),
    ("anthropic-ratelimit-requests-limit", "50"),
    ("x-ratelimit-limit-requests", "10000"),
    ("x-request-id", "req_leaky_{model}"),
    ("x-leaky-backend", BACKEND_URL),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "leaky-vllm/0.9"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("leaky-backend: " + fmt % args + "\n")

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, "application/json", b'{"status":"ok"}', model="none")
        self.reply(404, "application/json", b"{}", model="none")

    def headers_for(self, model):
        return [(k, v.format(model=model)) for k, v in LEAKY_HEADERS]

    def reply(self, status, ctype, body, model, extra=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in self.headers_for(model) + list(extra):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self, model):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for k, v in self.headers_for(model):
            self.send_header(k, v)
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        model = str(req.get("model", ""))
        kind = model.rsplit("leak-", 1)[-1] if "leak-" in model else "clean"
        getattr(self, "leak_" + kind.replace("-", "_"), self.leak_clean)(model, req)

    def leak_clean(self, model, req):
        body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        self.reply(200, "application/json", json.dumps(body).encode(), model)

    def leak_json(self, model, req):
        body = {"id": "chatcmpl-" + model, "object": "chat.completion", "created": 1, "model": model,
                "system_fingerprint": model, "served_by": {model: "pod-3"},
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "model %s overloaded (%s)." % (model, model)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        self.reply(200, "application/json", json.dumps(body).encode(), model)

    def leak_sse(self, model, req):
        self.start_stream(model)
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": {"content": "I am %s, hi" % model}, "finish_reason": None}]}
        error = {"error": {"message": "%s hiccup at %s" % (model, BACKEND_URL), "type": "server_error", "param": None,
                           "code": 503, "backend_url": BACKEND_URL, "model": model}}
        events = [
            "event: %s.chunk\nid: %s-1\n: served by %s at %s\ndata: %s\n\n" % (model, model, model, BACKEND_URL, json.dumps(chunk)),
            "data: plain text from %s\n\n" % model,
            "data: %s\n\n" % json.dumps(error),
            "data: [DONE]\n\n",
        ]
        data = "".join(events).encode()
        for i in range(0, len(data), 37):  # cut anywhere, as proxies do
            self.chunk(data[i:i + 37])
        self.end_stream()

    def leak_error(self, model, req):
        body = {"error": {"message": "The model `%s` is overloaded at %s" % (model, BACKEND_URL), "type": "server_error",
                          "param": None, "code": "overloaded", "backend_url": BACKEND_URL, "model": model},
                "served_by": model}
        self.reply(503, "application/json", json.dumps(body).encode(), model)

    def leak_text(self, model, req):
        self.reply(200, "text/plain; charset=utf-8", ("transcribed by %s: hello" % model).encode(), model)

    def leak_redirect(self, model, req):
        self.reply(302, "text/html", ("<a href='%s/%s'>moved</a>" % (BACKEND_URL, model)).encode(), model,
                   [("location", "%s/models/%s" % (BACKEND_URL, model))])

    def leak_gzip(self, model, req):
        body = gzip.compress(json.dumps({"object": "chat.completion", "model": model, "choices": []}).encode())
        self.reply(200, "application/json", body, model, [("content-encoding", "gzip")])

    def leak_endless(self, model, req):
        self.start_stream(model)
        line = b"data: " + b"x" * 57 + b"\n"
        for _ in range(17 * 1024 * 1024 // 64 // 64):
            self.chunk(line * 64)
        self.chunk(b"\ndata: [DONE]\n\n")
        self.end_stream()

    def leak_resp(self, model, req):
        if not req.get("stream"):
            body = {"id": "resp_1", "object": "response", "model": model, "status": "completed", "output": [],
                    "usage": {"input_tokens": 100, "output_tokens": 300, "total_tokens": 400}}
            return self.reply(200, "application/json", json.dumps(body).encode(), model)
        self.start_stream(model)
        resp = {"id": "resp_1", "object": "response", "created_at": 1, "model": model, "status": "in_progress",
                "output": [], "usage": None}
        msg = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Hi from " + model, "annotations": []}]}
        done = dict(resp, status="completed", output=[msg],
                    usage={"input_tokens": 100, "output_tokens": 300, "total_tokens": 400})
        events = [
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": resp}),
            ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1",
                                            "output_index": 0, "content_index": 0, "delta": "Hi from " + model}),
            ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": done}),
        ]
        for name, data in events:
            self.chunk(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        self.end_stream()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.verbose = args.verbose
    print("leaky-backend listening on %d" % args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
