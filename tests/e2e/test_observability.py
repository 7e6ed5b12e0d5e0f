"""Observability end to end (`[tracing]`, `[telemetry]`): real Envoy with the release filter,
its OpenTelemetry tracer exporting to a real OTLP/gRPC receiver (`otlp_receiver.py`), the demo
backend playing the providers, the openai SDK as the client.

Checked: Envoy's span continues the client's `traceparent` and carries the GenAI attributes the
filter sets (operation, provider, models, tokens, finish reasons) and never a key; the GenAI
histograms in `/stats/prometheus` are named as the OpenTelemetry GenAI semantic conventions name
them (checked against the conventions' own list, the `opentelemetry-semantic-conventions`
package) and move after real requests; the JSON access log carries the route, the models, the
key's name, usage and a failover model's attempts, never a key.
"""

import json
import re
import secrets
import time
import urllib.request

import pytest
from openai import OpenAI
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from otlp_receiver import OtlpReceiver
from stack import Stack, free_port

KEY = "sk-observed-client"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.demo]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 300

[[models]]
name = "chat"
apis = ["chat", "completions", "embeddings"]
target = {{ backend = "demo", model = "acme-chat-7b" }}

[[models]]
name = "sturdy"
apis = ["chat"]
targets = [
  {{ backend = "dead", model = "dead-chat" }},
  {{ backend = "demo", model = "acme-sturdy-13b" }},
]

[[keys]]
name = "observed-team"
key = "{key}"

[tracing]
endpoint = "127.0.0.1:{otlp}"
service_name = "airouter-test"

[telemetry]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("observability")
    ports = {k: free_port() for k in ("port", "admin", "a", "dead", "otlp")}
    receiver = OtlpReceiver(ports["otlp"]).start()
    s = Stack(work)
    try:
        s.start_backend("demo", ports["a"])
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(key=KEY, **ports))
        s.start_envoy(config)
        yield s, ports, receiver
    finally:
        s.stop()
        receiver.stop()


def client(ports):
    return OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key=KEY, max_retries=0)


def prometheus(ports):
    url = "http://127.0.0.1:%d/stats/prometheus" % ports["admin"]
    return urllib.request.urlopen(url, timeout=10).read().decode()


def test_envoy_span_continues_the_trace_and_carries_gen_ai_attributes(stack):
    s, ports, receiver = stack
    trace_id = secrets.token_hex(16)
    traceparent = "00-%s-%s-01" % (trace_id, secrets.token_hex(8))
    answer = client(ports).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "trace me"}],
        extra_headers={"traceparent": traceparent})
    assert answer.model == "chat"
    spans = receiver.wait_for(lambda sp: any(x["trace_id"] == trace_id for x in sp))
    ours = [x for x in spans if x["trace_id"] == trace_id]
    assert len(ours) == 1, s.logs()
    span = ours[0]
    assert span["service"] == "airouter-test"
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "demo"
    assert attrs["gen_ai.request.model"] == "chat"
    assert attrs["gen_ai.response.model"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == str(answer.usage.prompt_tokens)
    assert attrs["gen_ai.usage.output_tokens"] == str(answer.usage.completion_tokens)
    assert attrs["gen_ai.response.finish_reasons"] == "stop"
    assert attrs["airouter.key_name"] == "observed-team"
    assert all(KEY not in str(v) for v in attrs.values())


def test_a_stream_is_traced_and_timed(stack):
    s, ports, receiver = stack
    trace_id = secrets.token_hex(16)
    chunks = list(client(ports).chat.completions.create(
        model="chat", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream to me please"}],
        extra_headers={"traceparent": "00-%s-%s-01" % (trace_id, secrets.token_hex(8))}))
    usage = [c.usage for c in chunks if c.usage]
    assert usage, chunks
    spans = receiver.wait_for(lambda sp: any(x["trace_id"] == trace_id for x in sp))
    attrs = next(x for x in spans if x["trace_id"] == trace_id)["attributes"]
    assert attrs.get("gen_ai.usage.output_tokens") == str(usage[-1].completion_tokens), attrs
    text = prometheus(ports)
    assert re.search(r'^gen_ai_server_time_to_first_token_milliseconds_count\{[^}]*gen_ai_request_model="chat"[^}]*\} [1-9]',
                     text, re.M), text[-3000:]


def test_gen_ai_histograms_follow_the_conventions_and_move(stack):
    s, ports, _ = stack
    before = prometheus(ports)
    c = client(ports)
    for i in range(3):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "count %d" % i}])
    c.embeddings.create(model="chat", input="embed me")
    # Envoy merges its workers' histograms when it flushes its stats (every 5 s by default).
    deadline = time.monotonic() + 20
    text = prometheus(ports)
    while "embeddings" not in text and time.monotonic() < deadline:
        time.sleep(0.5)
        text = prometheus(ports)
    time.sleep(6)
    text = prometheus(ports)
    families = set(re.findall(r"^# TYPE (gen_ai_\S+) histogram$", text, re.M))
    # The conventions' names, as OpenTelemetry's Prometheus mapping writes them: dots become
    # underscores; durations, recorded in milliseconds (Envoy's histograms hold integers), carry
    # that unit's suffix.
    conventions = {
        gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE: "",
        gen_ai_metrics.GEN_AI_SERVER_REQUEST_DURATION: "_milliseconds",
        gen_ai_metrics.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: "_milliseconds",
        gen_ai_metrics.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN: "_milliseconds",
    }
    expected = {name.replace(".", "_") + suffix for name, suffix in conventions.items()}
    assert families == expected, families
    known = {v for k, v in vars(gen_ai_metrics).items() if k.startswith("GEN_AI_")}
    assert set(conventions) <= known

    def count(body, metric, **labels):
        total = 0
        for line in body.splitlines():
            if line.startswith(metric + "_count{") and all('%s="%s"' % kv in line for kv in labels.items()):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    tokens = "gen_ai_client_token_usage"
    for kind in ("input", "output"):
        labels = dict(gen_ai_token_type=kind, gen_ai_operation_name="chat", gen_ai_request_model="chat",
                      gen_ai_provider_name="demo", key_name="observed-team")
        assert count(text, tokens, **labels) >= count(before, tokens, **labels) + 3, text[-4000:]
    duration = "gen_ai_server_request_duration_milliseconds"
    assert count(text, duration, gen_ai_operation_name="embeddings") >= 1
    # The conventions' bucket boundaries (token usage: powers of 4).
    assert re.search(r'^gen_ai_client_token_usage_bucket\{[^}]*le="16"\}', text, re.M)
    # Only configured names become labels.
    assert "count 0" not in text and KEY not in text


def test_the_json_access_log_names_route_models_key_usage_and_attempts(stack):
    s, ports, _ = stack
    c = client(ports)
    c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "log me"}])
    answer = c.chat.completions.create(model="sturdy", messages=[{"role": "user", "content": "fail over"}])
    assert answer.model == "sturdy"
    s.stop()  # flush Envoy's stdout
    lines = [json.loads(l) for l in s.envoy_log.read_text().splitlines() if l.startswith("{")]
    chat = [l for l in lines if l.get("model") == "chat" and l.get("operation") == "chat"]
    assert chat, lines[-5:]
    entry = chat[-1]
    assert entry["route"] == "demo"
    assert entry["backend_model"] == "acme-chat-7b"
    assert entry["key_name"] == "observed-team"
    assert int(entry["input_tokens"]) > 0 and int(entry["output_tokens"]) > 0
    assert entry["finish_reason"] == "stop"
    sturdy = [l for l in lines if l.get("model") == "sturdy"][-1]
    assert sturdy["route"].startswith("@failover-")
    assert sturdy["backend_model"] == "acme-sturdy-13b"
    assert sturdy["failover_attempts"].splitlines()[0].startswith("dead\tdead-chat")
    assert sturdy["attempts"] == 2
    assert all(KEY not in json.dumps(l) for l in lines)


def test_at_sampling_zero_a_client_header_forces_no_trace(tmp_path):
    """A client cannot make Envoy trace what the operator's sampling leaves out: neither
    `x-client-trace-id` (Envoy's `client_sampling`, 100% by default, is rendered as 0) nor a
    `traceparent` marked sampled (#18 review, O1/O2). A request whose trace the sampling does
    pick shows that the receiver and the stack work."""
    ports = {k: free_port() for k in ("port", "admin", "a", "dead", "otlp")}
    receiver = OtlpReceiver(ports["otlp"]).start()
    s = Stack(tmp_path)
    try:
        s.start_backend("demo", ports["a"])
        config = tmp_path / "airouter.toml"
        config.write_text(CONFIG.format(key=KEY, **ports).replace(
            'service_name = "airouter-test"', 'service_name = "airouter-test"\nsampling = 0'))
        s.start_envoy(config)
        forced = secrets.token_hex(16)
        parent = secrets.token_hex(16)
        for headers in ({"x-client-trace-id": forced},
                        {"traceparent": "00-%s-%s-01" % (parent, secrets.token_hex(8))}):
            client(ports).chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}], extra_headers=headers)
        # Envoy flushes spans every 5 s: wait for two flushes, then nothing may have come.
        time.sleep(11)
        spans = receiver.wait_for(lambda sp: True, timeout=1.0) or []
        assert not [x for x in spans if x["trace_id"] == parent], spans
        assert not [x for x in spans if forced in str(x["attributes"])], spans
        assert not spans, spans
    finally:
        s.stop()
        receiver.stop()
