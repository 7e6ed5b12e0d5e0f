"""One trace from the client to Triton (`[tracing]`): the openai SDK sends a chat request with a
W3C `traceparent` through real Envoy (its OpenTelemetry tracer) to the real sidecar (its own
spans, `opentelemetry-otlp`) and on to real Triton 2.51 (its OpenTelemetry trace mode, exporting
over OTLP/HTTP), all exporting to one real OTLP receiver (`otlp_receiver.py`: the protocol's own
`TraceService` over gRPC for Envoy and the sidecar, OTLP/HTTP for Triton).

Checked: the trace id the client chose is on Envoy's span, the sidecar's and Triton's, each a
child of the one before (client → Envoy → sidecar → Triton), streamed and not; the spans carry the
GenAI attributes with client-visible names and no key. A call of the gRPC client API makes one
trace too: Envoy's gRPC listener → the sidecar's call span → Envoy's OpenAI listener → the
sidecar's Triton span → Triton.
"""

import secrets

import grpc

import openai
import pytest

from grpc_stubs import compile_stubs
from otlp_receiver import OtlpReceiver
from stack import ROOT, Stack, free_port

KEY = "sk-traced-client"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}
grpc_port = {sidecar_grpc}

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"
timeout_ms = 30000

[[models]]
name = "traced-chat"
apis = ["chat"]
target = {{ backend = "triton", model = "vllm_chat" }}
triton = {{ family = "vllm", template = "chatml", max_tokens = 16, eos_token = "</s>" }}

[[keys]]
name = "tracer"
key = "{key}"

[grpc_api]
port = {grpc_api}

[tracing]
endpoint = "127.0.0.1:{otlp}"
service_name = "router"
"""


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    work = tmp_path_factory.mktemp("tracing")
    ports = {k: free_port() for k in ("port", "admin", "sidecar", "sidecar_grpc", "grpc", "otlp", "otlp_http", "grpc_api")}
    receiver = OtlpReceiver(ports["otlp"], ports["otlp_http"]).start()
    stack = Stack(work)
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(key=KEY, **ports))
    # Triton's own OpenTelemetry tracing: every request, exported over OTLP/HTTP.
    trace_args = ["--trace-config", "mode=opentelemetry",
                  "--trace-config", "opentelemetry,url=http://127.0.0.1:%d/v1/traces" % ports["otlp_http"],
                  "--trace-config", "opentelemetry,resource=service.name=triton",
                  "--trace-config", "rate=1", "--trace-config", "level=TIMESTAMPS"]
    try:
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=["vllm_chat"],
                           extra_args=trace_args)
        stack.start_sidecar(config)
        stack.start_envoy(config)
        yield stack, ports, receiver
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        receiver.stop()


def chat(ports, trace_id, stream):
    client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key=KEY, max_retries=0, timeout=60)
    headers = {"traceparent": "00-%s-%s-01" % (trace_id, secrets.token_hex(8))}
    messages = [{"role": "user", "content": "say back traced words"}]
    if stream:
        chunks = list(client.chat.completions.create(model="traced-chat", messages=messages, stream=True,
                                                      extra_headers=headers))
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return client.chat.completions.create(model="traced-chat", messages=messages, extra_headers=headers)


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_one_trace_spans_client_envoy_sidecar_and_triton(traced, stream):
    stack, ports, receiver = traced
    trace_id = secrets.token_hex(16)
    assert chat(ports, trace_id, stream)

    def complete(spans):
        ours = [s for s in spans if s["trace_id"] == trace_id]
        services = {s["service"] for s in ours}
        # Triton exports its spans in batches: wait until no Triton span's parent is missing.
        known = {s["span_id"] for s in ours}
        whole = all(s["parent_span_id"] in known for s in ours if s["service"] == "triton")
        return {"router", "router-sidecar", "triton"} <= services and whole

    spans = [s for s in receiver.wait_for(complete, timeout=90) if s["trace_id"] == trace_id]
    by_service = {}
    for s in spans:
        by_service.setdefault(s["service"], []).append(s)
    assert {"router", "router-sidecar", "triton"} <= set(by_service), (spans, stack.logs())
    (envoy,) = by_service["router"]
    (sidecar,) = by_service["router-sidecar"]
    # Envoy's span is the client's span's child; the sidecar's, Envoy's (through the
    # traceparent Envoy sent on); Triton's spans hang under the sidecar's.
    assert sidecar["parent_span_id"] == envoy["span_id"], (envoy, sidecar)
    triton_ids = {s["span_id"] for s in by_service["triton"]}
    roots = [s for s in by_service["triton"] if s["parent_span_id"] not in triton_ids]
    assert roots and all(s["parent_span_id"] == sidecar["span_id"] for s in roots), (sidecar, roots)
    assert envoy["attributes"]["gen_ai.request.model"] == "traced-chat"
    assert envoy["attributes"]["gen_ai.provider.name"] == "triton"
    assert sidecar["name"] == "chat traced-chat"
    assert sidecar["attributes"]["gen_ai.request.model"] == "traced-chat"
    assert sidecar["attributes"]["http.response.status_code"] == 200
    assert all(KEY not in str(s) for s in spans)


@pytest.mark.parametrize("streamed", [False, True], ids=["call", "streamed-call"])
def test_a_grpc_api_call_is_one_trace_through_both_listeners(traced, tmp_path, streamed):
    stack, ports, receiver = traced
    pb, pb_grpc = compile_stubs(tmp_path)
    stub = pb_grpc.RouterStub(grpc.insecure_channel("127.0.0.1:%d" % ports["grpc_api"]))
    trace_id = secrets.token_hex(16)
    metadata = [("authorization", "Bearer " + KEY),
                ("traceparent", "00-%s-%s-01" % (trace_id, secrets.token_hex(8)))]
    req = pb.GenerationRequest(model="traced-chat", messages=[pb.Message(role="user", content="grpc traced")])
    if streamed:
        assert list(stub.StreamingRouteRequest(req, metadata=metadata, timeout=60))
    else:
        assert stub.RouteRequest(req, metadata=metadata, timeout=60).model == "traced-chat"

    def complete(spans):
        ours = [s for s in spans if s["trace_id"] == trace_id]
        return sum(s["service"] == "router" for s in ours) >= 2 and sum(
            s["service"] == "router-sidecar" for s in ours) >= 2 and any(s["service"] == "triton" for s in ours)

    # Triton exports in batches (every 5 s by default), later still on a loaded machine.
    spans = [s for s in receiver.wait_for(complete, timeout=90) if s["trace_id"] == trace_id]
    assert complete(spans), (spans, stack.logs())
    by_id = {s["span_id"]: s for s in spans}
    envoy_openai = next(s for s in spans if s["service"] == "router" and "gen_ai.request.model" in s["attributes"])
    # Up from the OpenAI listener's span: the sidecar's call span, then Envoy's gRPC listener.
    call = by_id[envoy_openai["parent_span_id"]]
    assert call["service"] == "router-sidecar" and call["attributes"]["rpc.system"] == "grpc", call
    assert call["attributes"]["rpc.grpc.status_code"] == 0
    grpc_listener = by_id[call["parent_span_id"]]
    assert grpc_listener["service"] == "router", grpc_listener
    # Down from it: the sidecar's Triton span.
    assert any(s["service"] == "router-sidecar" and s["parent_span_id"] == envoy_openai["span_id"] for s in spans)
