"""Anthropic both ways through real Envoy and the release filter (issue 17).

Backends of `kind = "anthropic"`: the demo Anthropic server (`examples/demo_anthropic.py`, a
stand-in for Anthropic's hosted API that checks requests as Anthropic does) serves chat requests
the filter translated, and a second one replays the recorded-shape streams of
`filter/core/testdata/anthropic/backend/` in small writes cut at awkward places. Failover mixes
kinds per attempt: Anthropic to an OpenAI-compatible server, an unreachable OpenAI-compatible
server to Anthropic, Anthropic to real Triton. The openai SDK is the client of
`/v1/chat/completions`, the anthropic SDK of `/v1/messages` (served by every kind). No backend's
model name, URL or key reaches a client on either front.
"""

import base64
import json
import urllib.request

import anthropic
import httpx
import openai
import pytest

from stack import ROOT, Stack, free_port

ANTHROPIC_KEY = "sk-ant-test-backend-key"
REPLAY_DIR = ROOT / "filter" / "core" / "testdata" / "anthropic" / "backend"
CLIENT_KEY = "sk-anthropic-e2e"
# The recorded streams the replaying backend serves, each under the model named after its file.
RECORDED = ["text", "tool_use", "thinking", "cache_usage", "error"]
# What the backends know the models by: never shown to a client.
HIDDEN = ["claude-demo-1", "claude-sonnet-4-5", "claude-opus-4-1", "acme-llama-3-8b-instruct", "vllm_chat",
          ANTHROPIC_KEY]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
address = "127.0.0.1"
port = {sidecar}
grpc_port = {sidecar_grpc}

[backends.claude]
kind = "anthropic"
url = "http://127.0.0.1:{a}/v1"
api_key_env = "E2E_ANTHROPIC_KEY"

[backends.claude-lenient]
kind = "anthropic"
url = "http://127.0.0.1:{a}/v1"
api_key_env = "E2E_ANTHROPIC_KEY"
[backends.claude-lenient.anthropic]
default_max_tokens = 7
unsupported_parameters = "drop"

[backends.recorded]
kind = "anthropic"
url = "http://127.0.0.1:{r}/v1"

[backends.openai]
kind = "openai"
url = "http://127.0.0.1:{o}/v1"

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 500

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"

[[models]]
name = "claude"
apis = ["chat"]
target = {{ backend = "claude", model = "claude-demo-1" }}

[[models]]
name = "claude-lenient"
apis = ["chat"]
target = {{ backend = "claude-lenient", model = "claude-demo-1" }}

[[models]]
name = "claude-busy"
apis = ["chat"]
target = {{ backend = "claude", model = "overloaded" }}

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "openai", model = "acme-llama-3-8b-instruct" }}

[[models]]
name = "busy-then-openai"
apis = ["chat"]
targets = [{{ backend = "claude", model = "overloaded" }}, {{ backend = "openai", model = "acme-llama-3-8b-instruct" }}]

[[models]]
name = "dead-then-claude"
apis = ["chat"]
targets = [{{ backend = "dead", model = "ghost" }}, {{ backend = "claude", model = "claude-demo-1" }}]

[[models]]
name = "busy-then-triton"
apis = ["chat"]
targets = [{{ backend = "claude", model = "overloaded" }}, {{ backend = "triton", model = "vllm_chat" }}]
triton = {{ family = "vllm", template = "chatml" }}

[[models]]
name = "triton-chat"
apis = ["chat"]
target = {{ backend = "triton", model = "vllm_chat" }}
triton = {{ family = "vllm", template = "chatml" }}

{recorded}
[[models]]
name = "signed-thinking"
apis = ["chat"]
target = {{ backend = "recorded", model = "replay-thinking" }}

[[keys]]
name = "e2e"
key = "{key}"
"""


class Env(dict):
    """The addresses of the stack (a dict), and the stack, whose logs a failure shows."""

    def __init__(self, stack, **addresses):
        super().__init__(**addresses)
        self.stack = stack


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("anthropic")
    ports = {k: free_port() for k in ("port", "admin", "sidecar", "sidecar_grpc", "a", "r", "o", "dead", "grpc")}
    config = work / "airouter.toml"
    recorded = "".join('[[models]]\nname = "recorded-%s"\napis = ["chat"]\ntarget = {{ backend = "recorded", model = "%s" }}\n\n'
                       % (n, n) for n in RECORDED)
    config.write_text(CONFIG.format(key=CLIENT_KEY, recorded=recorded.replace("{{", "{").replace("}}", "}"), **ports))
    stack = Stack(work)
    try:
        stack.start_anthropic("claude", ports["a"], api_key=ANTHROPIC_KEY, record=True)
        stack.start_anthropic("recorded", ports["r"], replay=REPLAY_DIR)
        stack.start_backend("openai", ports["o"], "/v1", record=True)
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=["vllm_chat"])
        stack.start_sidecar(config)
        stack.start_envoy(config, {"E2E_ANTHROPIC_KEY": ANTHROPIC_KEY})
        yield Env(stack, base="http://127.0.0.1:%d" % ports["port"], claude="http://127.0.0.1:%d" % ports["a"],
                  openai="http://127.0.0.1:%d" % ports["o"])
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def oai(env):
    return openai.OpenAI(base_url=env["base"] + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)


def claude(env, key=CLIENT_KEY):
    return anthropic.Anthropic(base_url=env["base"], api_key=key, max_retries=0, timeout=30)


def requests_seen(base):
    with urllib.request.urlopen(base + "/__requests", timeout=5) as r:
        return json.loads(r.read())


def forget(base):
    urllib.request.urlopen(urllib.request.Request(base + "/__requests", method="DELETE"), timeout=5).read()


def no_leaks(text):
    leaked = [h for h in HIDDEN if h in text]
    assert not leaked, "backend names reached the client: %s in %r" % (leaked, text[:2000])


def raw_post(env, path, body, headers=None):
    h = {"authorization": "Bearer " + CLIENT_KEY, "content-type": "application/json"}
    h.update(headers or {})
    return httpx.post(env["base"] + path, json=body, headers=h, timeout=30)


# -- OpenAI clients, Anthropic backends ------------------------------------------------------------

def test_a_chat_request_reaches_anthropic_as_a_messages_request_with_its_key(env):
    forget(env["claude"])
    r = oai(env).chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
        user="u-42", stop=["zzz"])
    assert r.model == "claude" and r.object == "chat.completion"
    assert r.choices[0].message.content == "You said: hello" and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    (seen,) = requests_seen(env["claude"])
    assert seen["path"] == "/v1/messages"
    h = seen["headers"]
    assert h["x-api-key"] == ANTHROPIC_KEY and "authorization" not in h and h["anthropic-version"] == "2023-06-01"
    body = json.loads(seen["body"])
    assert body["model"] == "claude-demo-1" and body["system"] == "Be brief."
    assert body["max_tokens"] == 4096 and body["stop_sequences"] == ["zzz"] and body["metadata"] == {"user_id": "u-42"}
    assert body["messages"] == [{"role": "user", "content": "hello"}] or \
        body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    no_leaks(r.model_dump_json())


def test_a_stream_comes_as_chunks_with_the_role_first_and_usage_only_when_asked(env):
    chunks = list(oai(env).chat.completions.create(
        model="claude", stream=True, messages=[{"role": "user", "content": "stream me"}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: stream me"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks) and all(c.model == "claude" for c in chunks)
    chunks = list(oai(env).chat.completions.create(
        model="claude", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream me"}]))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    no_leaks("".join(c.model_dump_json() for c in chunks))


def test_tools_round_trip_through_the_translation(env):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r = oai(env).chat.completions.create(model="claude", messages=msgs, tools=tools, tool_choice="required")
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    msgs += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    r2 = oai(env).chat.completions.create(model="claude", messages=msgs, tools=tools)
    assert "sunny" in r2.choices[0].message.content
    streamed = list(oai(env).chat.completions.create(model="claude", messages=msgs[:1], tools=tools, stream=True))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in streamed if c.choices and c.choices[0].delta.tool_calls)
    assert isinstance(json.loads(args), dict)


def test_parameters_anthropic_lacks_are_refused_or_dropped_as_configured(env):
    with pytest.raises(openai.BadRequestError) as e:
        oai(env).chat.completions.create(model="claude", n=2, messages=[{"role": "user", "content": "x"}])
    assert "n" in e.value.body["message"] and e.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        oai(env).chat.completions.create(model="claude", temperature=1.5, messages=[{"role": "user", "content": "x"}])
    forget(env["claude"])
    r = oai(env).chat.completions.create(model="claude-lenient", n=2, seed=3, temperature=1.5,
                                         messages=[{"role": "user", "content": "one two three four five six seven eight"}])
    assert r.choices[0].finish_reason == "length"
    body = json.loads(requests_seen(env["claude"])[-1]["body"])
    assert body["max_tokens"] == 7 and "n" not in body and "seed" not in body and body["temperature"] == 1


def test_an_overloaded_anthropic_backend_is_a_503_in_openais_envelope(env):
    with pytest.raises(openai.InternalServerError) as e:
        oai(env).chat.completions.create(model="claude-busy", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503 and e.value.body["code"] == "overloaded"
    no_leaks(json.dumps(e.value.body))


def test_failover_crosses_kinds_per_attempt(env):
    forget(env["openai"])
    r = oai(env).chat.completions.create(model="busy-then-openai", messages=[{"role": "user", "content": "to openai"}])
    assert r.model == "busy-then-openai" and r.choices[0].message.content == "You said: to openai"
    seen = requests_seen(env["openai"])[-1]
    assert json.loads(base64.b64decode(seen["body_b64"]))["model"] == "acme-llama-3-8b-instruct"
    assert "x-api-key" not in seen["headers"] and "anthropic-version" not in seen["headers"]
    r = oai(env).chat.completions.create(model="dead-then-claude", messages=[{"role": "user", "content": "to claude"}])
    assert r.model == "dead-then-claude" and r.choices[0].message.content == "You said: to claude"
    chunks = list(oai(env).chat.completions.create(model="dead-then-claude", stream=True,
                                                   messages=[{"role": "user", "content": "streamed over"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: streamed over"
    r = oai(env).chat.completions.create(model="busy-then-triton", messages=[{"role": "user", "content": "to triton"}])
    assert r.model == "busy-then-triton" and r.choices[0].message.content == "You said: to triton"
    no_leaks(r.model_dump_json())


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "cache_usage"])
def test_recorded_streams_split_anywhere_come_out_whole(env, name):
    chunks = list(oai(env).chat.completions.create(
        model="recorded-" + name, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "replay"}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == "recorded-" + name for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [{"tool_use": "tool_calls", "thinking": "length"}.get(name, "stop")]
    if name == "cache_usage":
        assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 20000
    no_leaks("".join(c.model_dump_json() for c in chunks))


def test_a_recorded_error_mid_stream_ends_the_stream_as_an_error(env):
    with httpx.stream("POST", env["base"] + "/v1/chat/completions", timeout=30,
                      headers={"authorization": "Bearer " + CLIENT_KEY},
                      json={"model": "recorded-error", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
        text = r.read().decode()
    # The backend's own message is replaced by the router's (values from a backend are not passed
    # on), its kind kept; the stream is then ended as one cut short, with [DONE].
    assert r.status_code == 200 and '"code":"overloaded"' in text and "Partial ans" in text
    assert '"finish_reason":"stop"' not in text and text.rstrip().endswith("data: [DONE]")
    no_leaks(text)


# -- Anthropic clients ------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["claude", "chat", "triton-chat", "dead-then-claude"])
def test_the_anthropic_sdk_is_served_by_every_kind(env, model):
    msg = claude(env).messages.create(model=model, max_tokens=64, system="Be brief.",
                                      messages=[{"role": "user", "content": "hi there"}])
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert msg.content[0].type == "text" and msg.content[0].text == "You said: hi there"
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
    with claude(env).messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi there"}]) as s:
        assert "".join(s.text_stream) == "You said: hi there"
        final = s.get_final_message()
    assert final.model == model and final.stop_reason == "end_turn"
    no_leaks(msg.model_dump_json() + final.model_dump_json())


def test_the_anthropic_sdk_uses_tools_through_an_openai_backend_and_an_anthropic_one(env):
    tools = [{"name": "get_weather", "description": "Weather in a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    msg = claude(env).messages.create(model="claude", max_tokens=64, tools=tools, tool_choice={"type": "any"},
                                      messages=[{"role": "user", "content": "weather in Paris?"}])
    use = [b for b in msg.content if b.type == "tool_use"][0]
    assert msg.stop_reason == "tool_use" and use.name == "get_weather" and isinstance(use.input, dict)
    follow = claude(env).messages.create(model="claude", max_tokens=64, tools=tools, messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}])
    assert "sunny" in follow.content[0].text


def test_anthropic_clients_get_anthropics_error_shape(env):
    with pytest.raises(anthropic.AuthenticationError) as e:
        claude(env, key="sk-nope").messages.create(model="claude", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as e:
        claude(env).messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "not_found_error"
    r = raw_post(env, "/v1/messages", {"model": "claude", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    r = raw_post(env, "/v1/messages", {"model": "claude-busy", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]})
    # Overloaded is Anthropic's 529 on its front (OpenAI's clients get 503).
    assert r.status_code == 529 and r.json()["type"] == "error" and r.json()["error"]["type"] == "overloaded_error"
    r = httpx.post(env["base"] + "/v1/messages", content=b"{not json", timeout=10,
                   headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    no_leaks(r.text)


def test_anthropic_headers_from_the_client_do_not_reach_a_backend(env):
    forget(env["claude"])
    r = raw_post(env, "/v1/messages", {"model": "claude", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]},
                 {"anthropic-version": "2099-01-01", "anthropic-beta": "something-new"})
    assert r.status_code == 200, r.text
    h = requests_seen(env["claude"])[-1]["headers"]
    assert h["anthropic-version"] == "2023-06-01" and "anthropic-beta" not in h
    assert h["x-api-key"] == ANTHROPIC_KEY


# -- Anthropic clients, Anthropic backends: the request as sent -------------------------------------

def test_a_messages_request_to_an_anthropic_backend_goes_as_the_client_sent_it(env):
    forget(env["claude"])
    sent = {"model": "claude", "max_tokens": 64, "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi there"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "SIG-1"},
                                                           {"type": "text", "text": "Well"}]},
                         {"role": "user", "content": "go on"}]}
    # This SDK's `create` takes no `top_k`: sent as an extra field, as its users do.
    msg = claude(env).messages.create(**{k: v for k, v in sent.items() if k != "top_k"}, extra_body={"top_k": 5})
    assert msg.model == "claude" and msg.content[0].text == "You said: go on"
    got = json.loads(requests_seen(env["claude"])[-1]["body"])
    # Only the model differs: nothing was dropped, refused or rewritten on the way.
    assert got == dict(sent, model="claude-demo-1")
    no_leaks(msg.model_dump_json())


def test_thinking_and_its_signature_come_back_from_an_anthropic_backend(env):
    # The replaying backend knows the model as `replay-thinking` (a backend model named `thinking`
    # would have that word renamed wherever it stands, protocol included).
    with claude(env).messages.stream(model="signed-thinking", max_tokens=64,
                                     messages=[{"role": "user", "content": "replay"}]) as s:
        final = s.get_final_message()
    thinking = [b for b in final.content if b.type == "thinking"]
    assert thinking and thinking[0].signature.startswith("EqQB") and thinking[0].thinking
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.model == "signed-thinking" and final.usage.output_tokens == 148
    no_leaks(final.model_dump_json())


def test_a_recorded_anthropic_stream_cut_by_an_error_ends_with_one_error_event(env):
    with httpx.stream("POST", env["base"] + "/v1/messages", timeout=30,
                      headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
                      json={"model": "recorded-error", "max_tokens": 8, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}) as r:
        text = r.read().decode()
    assert r.status_code == 200 and text.count("event: error") == 1, text
    assert text.rstrip().endswith("}") and "message_stop" not in text
    no_leaks(text)


def test_tokens_are_counted_by_an_anthropic_backend_only(env):
    forget(env["claude"])
    counted = claude(env).messages.count_tokens(model="claude", system="Be brief.",
                                                messages=[{"role": "user", "content": "one two three"}])
    assert counted.input_tokens == 5
    seen = requests_seen(env["claude"])[-1]
    assert seen["path"] == "/v1/messages/count_tokens" and json.loads(seen["body"])["model"] == "claude-demo-1"
    with pytest.raises(anthropic.NotFoundError) as e:
        claude(env).messages.count_tokens(model="chat", messages=[{"role": "user", "content": "x"}])
    assert "Token counting is served" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        claude(env).messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])


def test_an_event_stream_to_a_request_that_asked_for_none_is_a_502(env):
    # The replaying backend streams whatever it is asked.
    with pytest.raises(openai.InternalServerError) as e:
        oai(env).chat.completions.create(model="recorded-text", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502 and e.value.body["code"] == "bad_backend_response"
    with pytest.raises(anthropic.InternalServerError) as e:
        claude(env).messages.create(model="recorded-text", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502 and e.value.body["type"] == "error"
