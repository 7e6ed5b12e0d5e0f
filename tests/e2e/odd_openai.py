"""An OpenAI-compatible upstream that answers what a hosted API should never answer: the fake
upstream of the gRPC API's hostile-answer tests (`test_grpc_api.py`). It runs in the test's
process on a thread and answers `POST .../chat/completions` by the backend model named in the body,
streamed when the body asks for it:

    odd-not-completion  200 JSON `{"foo": "bar"}` (a stream: one such event, then [DONE])
    odd-no-choices      200, a completion whose `choices` is empty (a stream: chunks without a choice)
    odd-no-finish       200, a choice with text but no finish reason
    odd-gzip            200 JSON gzip-compressed although no encoding was asked for
    odd-finish-long     a finish reason of 10 000 characters
    odd-finish-custom   the finish reason `eos_token` (not OpenAI's, but a plain name)
    odd-usage           usage counts beyond any integer type (1e30, 2^64)
    odd-error-huge      400 whose error message is 200 000 characters with control characters
                        (a stream: 200, then an error event with that message)
    odd-stall           one piece of text, then nothing (the router's idle timeout ends it);
                        not streamed: the headers and half a body, then nothing

Every answer names the backend model and `BACKEND_URL`, which no client may see.
"""

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKEND_URL = "http://10.7.7.7:8000/v1"
HUGE_MESSAGE = ("odd-error-huge at %s: " % BACKEND_URL) + "\x01\x1b[31m" + "m" * 200_000


def completion(model, choices, usage=None):
    return {"id": "chatcmpl-odd", "object": "chat.completion", "created": 0, "model": model,
            "choices": choices, "usage": usage or {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def choice(text="odd answer", finish="stop"):
    c = {"index": 0, "message": {"role": "assistant", "content": text}}
    if finish is not None:
        c["finish_reason"] = finish
    return c


def chunk(model, text=None, finish=None, choices=True):
    delta = {} if text is None else {"content": text}
    return {"id": "chatcmpl-odd", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        model, stream = body.get("model", ""), bool(body.get("stream"))
        if stream:
            self.stream(model)
        else:
            self.whole(model)

    def send(self, status, payload, extra=()):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def whole(self, model):
        if model == "odd-not-completion":
            return self.send(200, {"foo": "bar", "backend": BACKEND_URL})
        if model == "odd-no-choices":
            return self.send(200, completion(model, []))
        if model == "odd-no-finish":
            return self.send(200, completion(model, [choice(finish=None)]))
        if model == "odd-gzip":
            return self.send(200, gzip.compress(json.dumps(completion(model, [choice()])).encode()),
                             [("content-encoding", "gzip")])
        if model == "odd-finish-long":
            return self.send(200, completion(model, [choice(finish="x" * 10_000)]))
        if model == "odd-finish-custom":
            return self.send(200, completion(model, [choice(finish="eos_token")]))
        if model == "odd-usage":
            data = json.dumps(completion(model, [choice()])).replace(
                '"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2',
                '"prompt_tokens": 1e30, "completion_tokens": 18446744073709551616, "total_tokens": 1e300')
            return self.send(200, data.encode())
        if model == "odd-error-huge":
            return self.send(400, {"error": {"message": HUGE_MESSAGE, "type": "invalid_request_error" * 500,
                                             "param": "p" * 5000, "code": "c" * 5000}})
        if model == "odd-stall":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "400")
            self.end_headers()
            self.wfile.write(b'{"id":"x","model":"odd-stall","choi')
            self.wfile.flush()
            return self.stall()
        return self.send(200, completion(model, [choice()]))

    def stream(self, model):
        if model == "odd-gzip":
            data = b"".join(b"data: %s\n\n" % json.dumps(e).encode()
                            for e in [chunk(model, "odd answer"), chunk(model, finish="stop")]) + b"data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-encoding", "gzip")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(gzip.compress(data))
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        events = []
        if model == "odd-not-completion":
            events = [{"foo": "bar"}]
        elif model == "odd-no-choices":
            events = [chunk(model, choices=False), chunk(model, choices=False)]
        elif model == "odd-no-finish":
            events = [chunk(model, "odd answer")]
        elif model == "odd-finish-long":
            events = [chunk(model, "odd answer"), chunk(model, finish="x" * 10_000)]
        elif model == "odd-finish-custom":
            events = [chunk(model, "odd answer"), chunk(model, finish="eos_token")]
        elif model == "odd-error-huge":
            events = [chunk(model, "odd"), {"error": {"message": HUGE_MESSAGE, "type": "server_error", "code": "c" * 5000}}]
        elif model == "odd-stall":
            self.wfile.write(b"data: %s\n\n" % json.dumps(chunk(model, "odd answer")).encode())
            self.wfile.flush()
            return self.stall()
        else:
            events = [chunk(model, "odd answer"), chunk(model, finish="stop")]
        for e in events:
            self.wfile.write(b"data: %s\n\n" % json.dumps(e).encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def stall(self):
        """Sends nothing more until the router gives up on this connection (or 30 s pass)."""
        self.close_connection = True
        self.connection.settimeout(1)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if not self.connection.recv(1):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


class OddOpenAi:
    """`OddOpenAi(port).start()`; `stop()`."""

    def __init__(self, port):
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True

    def start(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
