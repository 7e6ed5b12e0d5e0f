"""Clients that frame a request exactly as told, where the openai SDK and urllib choose for us:
HTTP/2 (h2c, prior knowledge) with the body split into given DATA frames and ended by the last
frame, an empty DATA frame or trailers; HTTP/1.1 with a chunked body and trailers."""

import socket

import h2.config
import h2.connection
import h2.events


def h2_request(port, path, body_frames, key, trailers=None, extra=(), end_with_empty_data=False):
    """One h2c request (prior knowledge): the body as the given DATA frames, then optionally an
    empty DATA frame or trailers ending the stream. Returns (status, headers, body); raises
    ConnectionError when the connection ends before the response does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":path", path), (":scheme", "http"),
               (":authority", "127.0.0.1:%d" % port), ("content-type", "application/json"),
               ("authorization", "Bearer " + key), *extra]
    conn.send_headers(1, headers, end_stream=not body_frames and not trailers and not end_with_empty_data)
    for i, frame in enumerate(body_frames):
        last = i == len(body_frames) - 1 and not trailers and not end_with_empty_data
        conn.send_data(1, frame, end_stream=last)
    if end_with_empty_data:
        conn.send_data(1, b"", end_stream=True)
    elif trailers:
        conn.send_headers(1, trailers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, resp_headers, body, done = None, {}, b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            # The peer closed before the stream ended: the request was refused at the
            # connection level (as by Envoy's flood protection), not answered.
            sock.close()
            raise ConnectionError("connection closed before the response ended")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ConnectionTerminated) and not done:
                sock.close()
                raise ConnectionError("GOAWAY before the response ended: %r" % event.error_code)
            if isinstance(event, h2.events.ResponseReceived):
                resp_headers = {k.decode(): v.decode() for k, v in event.headers}
                status = int(resp_headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return status, resp_headers, body


def h1_chunked(port, path, chunks, key, trailer_lines=(), extra=()):
    """One HTTP/1.1 request with a chunked body and optional trailers. Returns (status, body)."""
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Content-Type: application/json",
            "Authorization: Bearer " + key, "Transfer-Encoding: chunked", "Connection: close"]
    head += ["%s: %s" % kv for kv in extra]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode()
    for c in chunks:
        raw += b"%x\r\n%s\r\n" % (len(c), c)
    raw += b"0\r\n" + b"".join(t.encode() + b"\r\n" for t in trailer_lines) + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(raw)
    data = b""
    while True:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body
