"""A scripted fake Anthropic upstream on raw sockets (HTTP/1.1). Answers by the backend model
named in the request body; records every request (method, path, headers, body)."""

import gzip
import json
import socket
import socketserver
import threading
import time

SECRET_KEY = "sk-ant-backend-SECRET-9f8e7d"


def ev(name, obj, crlf=False):
    nl = "\r\n" if crlf else "\n"
    return ("event: %s%sdata: %s%s%s" % (name, nl, json.dumps(obj), nl, nl)).encode()


def msg_start(model, usage=None):
    return {"type": "message_start", "message": {
        "id": "msg_01SECRETID", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": usage or {"input_tokens": 11, "output_tokens": 1}}}


def text_stream(model, text="Hello from %s at http://10.1.2.3:9000/x", crlf=False, stop="end_turn", usage=None):
    t = text % model if "%s" in text else text
    out = ev("message_start", msg_start(model, usage), crlf)
    out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, crlf)
    out += ev("ping", {"type": "ping"}, crlf)
    for piece in (t[:5], t[5:]):
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}, crlf)
    out += ev("content_block_stop", {"type": "content_block_stop", "index": 0}, crlf)
    out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 9}}, crlf)
    out += ev("message_stop", {"type": "message_stop"}, crlf)
    return out


def message(model, content, stop="end_turn", usage=None):
    return {"id": "msg_01SECRETID", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": usage or {"input_tokens": 11, "output_tokens": 9}}


def err(kind, message):
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_SECRET123"}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(60)
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
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            h1 = {k: v[0] for k, v in headers.items()}
            body = b""
            try:
                if "content-length" in h1:
                    want = int(h1["content-length"])
                    while len(buf) < want:
                        buf += conn.recv(65536)
                    body, buf = buf[:want], buf[want:]
                elif h1.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        while b"\r\n" not in buf:
                            buf += conn.recv(65536)
                        size_line, buf = buf.split(b"\r\n", 1)
                        size = int(size_line.split(b";")[0], 16)
                        while len(buf) < size + 2:
                            buf += conn.recv(65536)
                        body, buf = body + buf[:size], buf[size + 2:]
                        if size == 0:
                            break
            except (OSError, ValueError):
                return
            req = {"method": method, "path": path, "headers": headers, "body": body}
            self.server.owner.requests.append(req)
            try:
                keep = self.server.owner.answer(conn, req)
            except OSError:
                return
            if not keep:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def send(conn, status, body, ctype="application/json", extra=(), reason="X"):
    head = "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (status, reason, ctype, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in extra)
    conn.sendall(head.encode() + b"\r\n" + body)


def send_stream(conn, data, split=None, delay=0.0, close=False, ctype="text/event-stream", extra=()):
    head = "HTTP/1.1 200 OK\r\ncontent-type: %s\r\n" % ctype
    head += "".join("%s: %s\r\n" % kv for kv in extra)
    if close:
        head += "connection: close\r\n\r\n"
        conn.sendall(head.encode())
        pieces = [data] if not split else [data[i:i + split] for i in range(0, len(data), split)]
        for p in pieces:
            conn.sendall(p)
            if delay:
                time.sleep(delay)
        return False
    head += "transfer-encoding: chunked\r\n\r\n"
    conn.sendall(head.encode())
    pieces = [data] if not split else [data[i:i + split] for i in range(0, len(data), split)]
    for p in pieces:
        conn.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        if delay:
            time.sleep(delay)
    conn.sendall(b"0\r\n\r\n")
    return True


class FakeAnthropic:
    def __init__(self, port):
        self.port = port
        self.requests = []
        self.models = [
            {"type": "model", "id": "ant-one", "display_name": "One", "created_at": "2024-10-22T00:00:00Z"},
            {"type": "model", "id": "ant-two", "display_name": "Two", "created_at": "not-a-date"},
            {"type": "model", "id": "secret-hidden-model", "display_name": "x", "created_at": "2024-01-01T00:00:00Z"},
            {"type": "model", "id": "ant-\u0000ctl", "created_at": "2024-01-01T00:00:00Z"},
            {"type": "model", "id": "ant-" + "x" * 300, "created_at": "2024-01-01T00:00:00Z"},
            {"type": "model", "id": "ant-http://10.0.0.9:8000", "created_at": "2024-01-01T00:00:00Z"},
        ]
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self

    def start(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def last(self, model=None):
        for r in reversed(self.requests):
            try:
                b = json.loads(r["body"] or b"{}")
            except ValueError:
                b = {}
            if model is None or b.get("model") == model:
                return r, b
        return None, None

    def answer(self, conn, req):
        path = req["path"].split("?")[0]
        if path == "/__requests":
            self.requests.pop()
            out = [{"method": r["method"], "path": r["path"], "headers": r["headers"], "body": r["body"].decode("latin-1")} for r in self.requests]
            send(conn, 200, json.dumps(out).encode())
            return True
        if path == "/__clear":
            self.requests.clear()
            send(conn, 200, b"{}")
            return True
        if req["method"] == "GET" and path.endswith("/models"):
            send(conn, 200, json.dumps({"data": self.models, "has_more": False, "first_id": "ant-one", "last_id": "x"}).encode())
            return True
        try:
            b = json.loads(req["body"] or b"{}")
        except ValueError:
            send(conn, 400, json.dumps(err("invalid_request_error", "bad json")).encode())
            return True
        model = b.get("model", "")
        stream = bool(b.get("stream"))
        if path.endswith("/count_tokens"):
            ct = getattr(self, "ct_" + model.replace("-", "_").replace(".", "_"), None)
            if ct is not None:
                return ct(conn, model, b)
            send(conn, 200, json.dumps({"input_tokens": 42}).encode())
            return True
        h = getattr(self, "m_" + model.replace("-", "_").replace(".", "_"), None)
        if h is None:
            if stream:
                return send_stream(conn, text_stream(model))
            send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "Hello from %s" % model}])).encode())
            return True
        return h(conn, model, b, stream)

    # ---- scenarios -------------------------------------------------------------------------
    def m_secret_normal(self, conn, model, b, stream):
        if stream:
            return send_stream(conn, text_stream(model), split=1)
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "Hello from %s" % model}])).encode(),
             extra=[("anthropic-ratelimit-requests-remaining", "5"), ("request-id", "req_SECRET"), ("server", "secret-node")])
        return True

    def m_secret_crlf(self, conn, model, b, stream):
        return send_stream(conn, text_stream(model, crlf=True), split=3)

    def m_secret_tool(self, conn, model, b, stream):
        args = json.dumps({"location": "Berlin, secret-tool", "unit": "c"})
        if not stream:
            send(conn, 200, json.dumps(message(model, [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Berlin"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
            ], stop="tool_use")).encode())
            return True
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}})
        for i in range(0, len(args), 7):
            out += ev("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": args[i:i + 7]}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 1})
        out += ev("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 2})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out, split=2)

    def m_secret_badtool(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "f", "input": {}}})
        for p in ['{"a": ', '"\\u12', 'zz", ]]]']:
            out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_thinking(self, conn, model, b, stream):
        if not stream:
            send(conn, 200, json.dumps(message(model, [
                {"type": "thinking", "thinking": "secret thoughts", "signature": "SIGSECRET"},
                {"type": "redacted_thinking", "data": "ENCRYPTEDSECRET"},
                {"type": "text", "text": "answer"}])).encode())
            return True
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think"}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIGSECRET"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "ENCRYPTEDSECRET"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 1})
        out += ev("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "answer"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 2})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out, split=5)

    def m_secret_errmid(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}})
        out += ev("error", err("overloaded_error", "Overloaded on node gpu-7.internal:8443 for secret-errmid"))
        return send_stream(conn, out)

    def m_secret_529(self, conn, model, b, stream):
        send(conn, 529, json.dumps(err("overloaded_error", "Overloaded: api-7.internal:8443")).encode())
        return True

    def m_secret_429(self, conn, model, b, stream):
        send(conn, 429, json.dumps(err("rate_limit_error", "rate limit for secret-429 org org_SECRET")).encode(),
             extra=[("retry-after", "7"), ("anthropic-ratelimit-requests-reset", "2030-01-01T00:00:00Z")])
        return True

    def m_secret_400(self, conn, model, b, stream):
        send(conn, 400, json.dumps(err("invalid_request_error", "secret-400: see https://internal.example/x at 10.2.3.4:80 max_tokens too large")).encode())
        return True

    def m_secret_401(self, conn, model, b, stream):
        send(conn, 401, json.dumps(err("authentication_error", "invalid x-api-key " + SECRET_KEY)).encode())
        return True

    def m_secret_413(self, conn, model, b, stream):
        send(conn, 413, json.dumps(err("request_too_large", "Request exceeds the maximum allowed number of bytes.")).encode())
        return True

    def m_secret_html(self, conn, model, b, stream):
        send(conn, 200, b"<html>secret-html on 10.0.0.1</html>", ctype="text/html")
        return True

    def m_secret_trunc(self, conn, model, b, stream):
        out = text_stream(model)
        out = out[:out.index(b"event: content_block_stop")]
        return send_stream(conn, out, close=True)

    def m_secret_truncjson(self, conn, model, b, stream):
        conn.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"id":"x","model":"secret-truncjson","content":[{"type":"te')
        return False

    def m_secret_nostop(self, conn, model, b, stream):
        # well-terminated HTTP body (chunked end) but no message_stop event
        out = text_stream(model)
        out = out[:out.index(b"event: message_stop")]
        return send_stream(conn, out)

    def m_secret_noevent(self, conn, model, b, stream):
        out = text_stream(model).replace(b"event: content_block_delta\n", b"").replace(b"event: message_start\n", b"")
        return send_stream(conn, out)

    def m_secret_unknown(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += b": a comment naming secret-unknown\n\n"
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"query\":\"x\"}"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://secret.example", "title": "t"}]}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 1})
        out += ev("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {"type": "web_search_result_location", "url": "https://secret.example"}}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "cited"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 2})
        out += ev("future_event", {"type": "future_event", "x": 1})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_hang(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        conn.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(out), out))
        time.sleep(20)
        return False

    def m_secret_huge(self, conn, model, b, stream):
        big = "A" * (17 * 1024 * 1024)
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "small"}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": big}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out, split=1 << 20)

    def m_secret_big(self, conn, model, b, stream):
        # 2 MiB in one delta: must pass whole
        big = "B" * (2 * 1024 * 1024)
        out = text_stream(model, text=big)
        return send_stream(conn, out, split=65536)

    def m_secret_jsonct(self, conn, model, b, stream):
        # client streamed, backend answers a plain JSON message
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "json anyway"}])).encode())
        return True

    def m_secret_ssenon(self, conn, model, b, stream):
        return send_stream(conn, text_stream(model))

    def m_secret_cache(self, conn, model, b, stream):
        usage = {"input_tokens": 10, "output_tokens": 4, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}
        if stream:
            return send_stream(conn, text_stream(model, usage=usage))
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "cached"}], usage=usage)).encode())
        return True

    def m_secret_500text(self, conn, model, b, stream):
        send(conn, 500, b"upstream connect error to gpu-node-3 (10.0.0.5:8000) for secret-500text", ctype="text/plain")
        return True

    def m_secret_redirect(self, conn, model, b, stream):
        send(conn, 302, b"", extra=[("location", "https://secret-internal.example/v1/messages")])
        return True

    def m_secret_gzip(self, conn, model, b, stream):
        body = gzip.compress(json.dumps(message(model, [{"type": "text", "text": "zipped secret-gzip"}])).encode())
        send(conn, 200, body, extra=[("content-encoding", "gzip")])
        return True

    def m_secret_notmsg(self, conn, model, b, stream):
        send(conn, 200, json.dumps({"foo": "secret-notmsg", "url": "http://10.9.9.9:1"}).encode())
        return True

    def m_secret_err200(self, conn, model, b, stream):
        send(conn, 200, json.dumps(err("overloaded_error", "Overloaded at 10.9.9.9:1")).encode())
        return True

    def m_secret_empty(self, conn, model, b, stream):
        send(conn, 200, json.dumps(message(model, [], stop="end_turn")).encode())
        return True

    def m_secret_refusal(self, conn, model, b, stream):
        if stream:
            return send_stream(conn, text_stream(model, text="no", stop="refusal"))
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "no"}], stop="refusal")).encode())
        return True

    def m_secret_pause(self, conn, model, b, stream):
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "paused"}], stop="pause_turn")).encode())
        return True

    def m_secret_maxtok(self, conn, model, b, stream):
        if stream:
            return send_stream(conn, text_stream(model, text="cut", stop="max_tokens"))
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "cut"}], stop="max_tokens")).encode())
        return True

    def m_secret_ctx(self, conn, model, b, stream):
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "ctx"}], stop="model_context_window_exceeded")).encode())
        return True

    def m_secret_errct(self, conn, model, b, stream):
        # error event sent as content-type text/event-stream but HTTP 200 and only an error
        return send_stream(conn, ev("error", err("api_error", "Internal error at 10.0.0.7:443")))

    def m_secret_hugeusage(self, conn, model, b, stream):
        usage = {"input_tokens": 2 ** 64 + 5, "output_tokens": -5}
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "u"}], usage=usage)).encode())
        return True

    # ---- review17b scenarios ---------------------------------------------------------------
    def ct_secret_ctstr(self, conn, model, b):
        send(conn, 200, json.dumps({"input_tokens": "many at secret-ctstr", "extra": "http://10.1.2.3:9/"}).encode())
        return True

    def ct_secret_ctobj(self, conn, model, b):
        send(conn, 200, json.dumps({"type": "message", "model": model, "id": "msg_01SECRETID", "content": []}).encode())
        return True

    def ct_secret_cthtml(self, conn, model, b):
        send(conn, 200, b"<html>count at 10.0.0.1 secret-cthtml</html>", ctype="text/html")
        return True

    def ct_secret_ctsse(self, conn, model, b):
        return send_stream(conn, text_stream(model))

    def ct_secret_ctgzip(self, conn, model, b):
        send(conn, 200, gzip.compress(json.dumps({"input_tokens": 5, "m": model}).encode()), extra=[("content-encoding", "gzip")])
        return True

    def ct_secret_cterr(self, conn, model, b):
        send(conn, 500, b"count_tokens failed on gpu-node-3 10.0.0.5:8000 secret-cterr", ctype="text/plain")
        return True

    def ct_secret_ctneg(self, conn, model, b):
        send(conn, 200, json.dumps({"input_tokens": -3}).encode())
        return True

    def m_secret_after(self, conn, model, b, stream):
        # events after message_stop: more text, a second message
        out = text_stream(model, text="first")
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "INJECTED AFTER STOP"}})
        out += text_stream(model, text="second message")
        return send_stream(conn, out)

    def m_secret_cronly(self, conn, model, b, stream):
        out = text_stream(model, text="cr only").replace(b"\n", b"\r")
        return send_stream(conn, out, split=3)

    def m_secret_errthen(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += ev("error", err("overloaded_error", "Overloaded"))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "AFTER ERROR"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_multidata(self, conn, model, b, stream):
        # valid SSE: one event's data split over two data: lines, plus id:/retry: lines
        out = ev("message_start", msg_start(model))
        d = json.dumps({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ("event: content_block_start\nid: secret-multidata-1\nretry: 1000\ndata: %s\ndata: %s\n\n" % (d[:20], d[20:])).encode()
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "multi"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_evname(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += ev("secret-evname-event", {"type": "secret-evname-event", "host": "gpu-node-3"})
        out += text_stream(model, text="x")[len(ev("message_start", msg_start(model))):]
        return send_stream(conn, out)

    def m_secret_streamusage(self, conn, model, b, stream):
        usage = {"input_tokens": 50000, "output_tokens": 1}
        out = ev("message_start", msg_start(model, usage))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "u"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 60000}})
        out += ev("message_stop", {"type": "message_stop"})
        if stream:
            return send_stream(conn, out)
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "u"}], usage={"input_tokens": 50000, "output_tokens": 60000})).encode())
        return True

    def m_secret_negusage(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model, {"input_tokens": -100000, "output_tokens": 1}))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "u"}})
        out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1.5e300}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_ctjson(self, conn, model, b, stream):
        # streaming answer labelled application/json
        return send_stream(conn, text_stream(model), ctype="application/json")

    def m_secret_ctplain(self, conn, model, b, stream):
        return send_stream(conn, text_stream(model), ctype="text/plain")

    def m_secret_gzipsse(self, conn, model, b, stream):
        return send_stream(conn, gzip.compress(text_stream(model)), extra=[("content-encoding", "gzip")])

    def m_secret_nullmsg(self, conn, model, b, stream):
        send(conn, 200, b"null")
        return True

    def m_secret_arrmsg(self, conn, model, b, stream):
        send(conn, 200, json.dumps([message(model, [{"type": "text", "text": "x"}])]).encode())
        return True

    def m_secret_idname(self, conn, model, b, stream):
        m = message(model, [{"type": "text", "text": "SECRET-IDNAME upper"}])
        m["id"] = "msg_" + model
        m["container"] = {"id": "cnt_10.0.0.5:8000", "host": "http://internal.example/x"}
        send(conn, 200, json.dumps(m).encode(), extra=[("content-type", "application/json; model=secret-idname"),
                                                      ("x-secret-idname", "1")])
        return True

    def m_secret_escname(self, conn, model, b, stream):
        body = json.dumps(message(model, [{"type": "text", "text": "x"}])).replace('"' + model + '"', '"secret\\u002descname"')
        body = body.replace('"text": "x"', '"text": "by SECRET\\u002DESCNAME"')
        send(conn, 200, body.encode())
        return True

    def m_secret_dupkey(self, conn, model, b, stream):
        # duplicate "model" key in the backend's JSON answer: first the client name, last the secret one
        body = '{"id":"msg_1","type":"message","role":"assistant","model":"x","model":"secret-dupkey","content":[{"type":"text","text":"d"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}'
        send(conn, 200, body.encode())
        return True

    def m_secret_stopnodelta(self, conn, model, b, stream):
        # message_stop while a content block is still open and no message_delta
        out = ev("message_start", msg_start(model))
        out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "half"}})
        out += ev("message_stop", {"type": "message_stop"})
        return send_stream(conn, out)

    def m_secret_badjsonev(self, conn, model, b, stream):
        out = ev("message_start", msg_start(model))
        out += b"event: content_block_delta\ndata: {not json at secret-badjsonev 10.0.0.5:80\n\n"
        out += text_stream(model, text="after")[len(ev("message_start", msg_start(model))):]
        return send_stream(conn, out)

    def m_secret_datanoev(self, conn, model, b, stream):
        # data-only events (no event: line) as some compatible servers write
        out = text_stream(model, text="noevline")
        out = b"\n".join(l for l in out.split(b"\n") if not l.startswith(b"event:"))
        return send_stream(conn, out)

    def m_secret_negin(self, conn, model, b, stream):
        usage = {"input_tokens": -50000, "output_tokens": 1}
        if stream:
            out = ev("message_start", msg_start(model, usage))
            out += ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            out += ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "n"}})
            out += ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            out += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}})
            out += ev("message_stop", {"type": "message_stop"})
            return send_stream(conn, out)
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "n"}], usage=usage)).encode())
        return True

    def m_secret_bigjson(self, conn, model, b, stream):
        send(conn, 200, json.dumps(message(model, [{"type": "text", "text": "J" * (2 * 1024 * 1024)}])).encode())
        return True

    def m_secret_nousage(self, conn, model, b, stream):
        out = text_stream(model, text="no usage here at all")
        out = out.replace(b', "usage": {"output_tokens": 9}', b"")
        out = out.replace(b', "usage": {"input_tokens": 11, "output_tokens": 1}', b"")
        if stream:
            return send_stream(conn, out)
        m = message(model, [{"type": "text", "text": "x"}]); del m["usage"]
        send(conn, 200, json.dumps(m).encode())
        return True

    def m_secret_ctypes(self, conn, model, b, stream):
        return send_stream(conn, text_stream(model, text="typed"), ctype="text/event-stream; charset=utf-8; model=secret-ctypes")

    def m_secret_twostart(self, conn, model, b, stream):
        # a second message_start mid-stream, with different usage
        out = ev("message_start", msg_start(model))
        out += ev("message_start", msg_start(model, {"input_tokens": 999999, "output_tokens": 1}))
        out += text_stream(model, text="t")[len(ev("message_start", msg_start(model))):]
        return send_stream(conn, out)
