"""A real OTLP receiver for the tracing tests: the OpenTelemetry protocol's own gRPC
`TraceService` (from the official `opentelemetry-proto` package) served with grpcio, and OTLP/HTTP
(`POST /v1/traces`, protobuf or JSON bodies) served with the standard library, both keeping every span
they are sent. No OpenTelemetry Collector build installs from PyPI, npm or Debian here, so the
receiver is the protocol's reference definitions behind the reference gRPC server.

Spans are kept as plain dicts: trace and span ids in hex, the parent span id, name, kind,
the resource's `service.name` and the attributes as Python values."""

import base64
import json
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def _spans(request):
    out = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": s.kind,
                    "service": resource.get("service.name"),
                    "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                })
    return out


def _parse_http(content_type, body):
    """An OTLP/HTTP export: protobuf, or the protocol's JSON encoding (ids in hex)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    if "json" not in content_type:
        request.ParseFromString(body)
        return request
    doc = json.loads(body)
    for rs in doc.get("resourceSpans", doc.get("resource_spans", [])):
        for ss in rs.get("scopeSpans", rs.get("scope_spans", [])):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    return request


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects spans sent over OTLP/gRPC (port `grpc_port`) and OTLP/HTTP (port `http_port`)."""

    def __init__(self, grpc_port, http_port=None):
        self.spans = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port("127.0.0.1:%d" % grpc_port)
        self._http = None
        if http_port:
            receiver = self

            class Handler(BaseHTTPRequestHandler):
                def do_POST(self):  # noqa: N802 - the standard library's name
                    body = self.rfile.read(int(self.headers.get("content-length", "0")))
                    receiver._keep(_parse_http(self.headers.get("content-type", ""), body))
                    reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                    self.send_response(200)
                    self.send_header("content-type", "application/x-protobuf")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)

                def log_message(self, *args):
                    pass

            self._http = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)

    def _keep(self, request):
        with self._lock:
            self.spans.extend(_spans(request))

    def Export(self, request, context):  # noqa: N802 - the service's method name
        self._keep(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self):
        self._server.start()
        if self._http:
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._server.stop(0)
        if self._http:
            self._http.shutdown()

    def wait_for(self, predicate, timeout=20.0):
        """The spans once `predicate(spans)` holds; the spans so far when it never does."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)
