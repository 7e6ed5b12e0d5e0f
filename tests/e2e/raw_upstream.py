"""A tiny HTTP/1.1 upstream on raw sockets, for what a well-behaved server never does.

It runs in the test's process on a thread, keeps every request it receives (method, path,
lower-cased headers, body), and answers by the `model` in the JSON body:

- `cut-json`: a 200 whose `content-length` promises more than it sends, then closes mid-JSON;
- anything else: a small chat completion naming that model;

unless it was started with `status` other than 200, when every answer is that status with an
OpenAI error body (a backend that always fails, for failover).
"""

import json
import socket
import socketserver
import threading


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(10)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body, buf = self._body(conn, headers, buf)
            if body is None:
                return
            self.server.owner.requests.append({"method": method, "path": path, "headers": headers, "body": body})
            if not self._answer(conn, body):
                return

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
                    while len(buf) < size + 2:
                        buf += more()
                    body, buf = body + buf[:size], buf[size + 2:]
                    if size == 0:
                        return body, buf
            return b"", buf
        except (ConnectionError, OSError, ValueError):
            return None, b""

    def _answer(self, conn, body):
        """Sends the answer; False when the connection is to be closed."""
        try:
            model = json.loads(body or b"{}").get("model", "")
        except ValueError:
            model = ""
        status = self.server.owner.status
        if status != 200:
            payload = json.dumps({"error": {"message": "always failing", "type": "server_error", "param": None, "code": None}})
            conn.sendall(b"HTTP/1.1 %d Failing\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (status, len(payload), payload.encode()))
            return True
        if model == "cut-json":
            conn.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{"id":"x","model":"cut-json","choi')
            conn.shutdown(socket.SHUT_RDWR)
            return False
        payload = json.dumps({
            "id": "chatcmpl-raw", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload))
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class RawUpstream:
    """`RawUpstream(port).start()`; `requests` lists what it received; `stop()`."""

    def __init__(self, port, status=200):
        self.port = port
        self.status = status
        self.requests = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self

    def start(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
