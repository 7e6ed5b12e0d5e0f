"""A raw-socket HTTP/1.1 upstream whose answers are scripted per backend model name.

`ScriptedUpstream(port).start()`; `script[scenario or model] = fn(request) -> bytes | list[bytes]` (a list is
sent piece by piece; `None` in it closes the connection right there); every request it received is
kept in `requests`. The scenario is the request's `x-scenario` header (clients' headers reach
backends), else the backend model name. Requests are (method, path, lower-cased headers as a list of pairs, body). Unknown models get
a small chat completion naming the model (with usage when streamed and asked for).
"""

import json
import socket
import socketserver
import threading
import time


def http(status, headers, body=b"", reason="X"):
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    head += "".join("%s: %s\r\n" % kv for kv in headers)
    return head.encode() + b"\r\n" + body


def json_response(status, obj, extra=()):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return http(status, [("content-type", "application/json"), ("content-length", str(len(body))), *extra], body)


def chunked(status, headers, pieces, trailers=()):
    out = [http(status, [*headers, ("transfer-encoding", "chunked")])]
    for p in pieces:
        out.append(b"%x\r\n%s\r\n" % (len(p), p))
    out.append(b"0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in trailers) + b"\r\n")
    return out


def sse(events, headers=(), trailers=()):
    pieces = [b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events]
    return chunked(200, [("content-type", "text/event-stream"), *headers], pieces, trailers)


def chat_completion(model, content="ok", usage=None):
    return {"id": "chatcmpl-s", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(15)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
            body, buf = self._body(conn, dict(headers), buf)
            if body is None:
                return
            req = {"method": method, "path": path, "headers": headers, "body": body}
            self.server.owner.requests.append(req)
            try:
                parsed = json.loads(body or b"{}")
                model = parsed.get("model", "") if isinstance(parsed, dict) else ""
            except ValueError:
                model = ""
            scenario = dict(headers).get("x-scenario", "")
            fn = self.server.owner.script.get(scenario) or self.server.owner.script.get(model)
            out = fn(req) if fn else self._default(model, parsed if model else {})
            if isinstance(out, bytes):
                out = [out]
            for piece in out:
                if piece is None:
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if isinstance(piece, (int, float)):
                    time.sleep(piece)
                    continue
                try:
                    conn.sendall(piece)
                except OSError:
                    return

    @staticmethod
    def _default(model, req):
        if req.get("stream"):
            events = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}]
            if (req.get("stream_options") or {}).get("include_usage"):
                events.append({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                               "usage": {"prompt_tokens": 200, "completion_tokens": 200, "total_tokens": 400}})
            return sse(events + [b"[DONE]"])
        return json_response(200, chat_completion(model))

    def _body(self, conn, headers, buf):
        def more():
            data = conn.recv(65536)
            if not data:
                raise ConnectionError
            return data

        try:
            if "content-length" in headers:
                want = int(headers["content-length"])
                while len(buf) < want:
                    buf += more()
                return buf[:want], buf[want:]
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    while b"\r\n" not in buf:
                        buf += more()
                    size_line, buf = buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        while b"\r\n\r\n" not in b"\r\n" + buf:
                            buf += more()
                        _, buf = (b"\r\n" + buf).split(b"\r\n\r\n", 1)
                        return body, buf
                    while len(buf) < size + 2:
                        buf += more()
                    body, buf = body + buf[:size], buf[size + 2:]
            return b"", buf
        except (ConnectionError, OSError, ValueError):
            return None, b""


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ScriptedUpstream:
    def __init__(self, port):
        self.port = port
        self.requests = []
        self.script = {}
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self

    def start(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
