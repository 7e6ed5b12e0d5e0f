"""The demo Anthropic backend (`examples/demo_anthropic.py`) against the official anthropic SDK:
it must speak the Messages API as Anthropic does, since tests use it in Anthropic's place, and
the recorded-shape streams it replays (the Rust goldens' inputs,
`filter/core/testdata/anthropic/backend`) must be what the SDK reads as Anthropic's streams."""

import subprocess
import sys
import urllib.error
import urllib.request

import anthropic
import pytest

from stack import ROOT, free_port, wait_http

FIXTURES = ROOT / "filter" / "core" / "testdata" / "anthropic" / "backend"
KEY = "sk-ant-demo-key"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("demo-anthropic") / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "demo_anthropic.py"), "--port", str(port),
             "--api-key", KEY, "--replay", str(FIXTURES), "--record"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http("http://127.0.0.1:%d/health" % port, proc=proc, log=log)
        yield "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(base, key=KEY):
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)


def test_answers_and_streams_deterministically(demo):
    c = client(demo)
    m = c.messages.create(model="claude-demo-1", max_tokens=50, system="Be brief.",
                          messages=[{"role": "user", "content": "hello wörld"}])
    assert [b.text for b in m.content] == ["You said: hello wörld"]
    assert (m.stop_reason, m.usage.input_tokens, m.usage.output_tokens) == ("end_turn", 4, 4)
    with c.messages.stream(model="claude-demo-1", max_tokens=50,
                           messages=[{"role": "user", "content": "hello wörld"}]) as s:
        assert "".join(s.text_stream) == "You said: hello wörld"
        final = s.get_final_message()
    assert final.usage.output_tokens == 4
    m = c.messages.create(model="claude-demo-1", max_tokens=2, messages=[{"role": "user", "content": "a b c"}])
    assert (m.content[0].text, m.stop_reason) == ("You said:", "max_tokens")
    assert c.messages.count_tokens(model="claude-demo-1", messages=[{"role": "user", "content": "a b c"}]).input_tokens == 3


def test_tools_are_called_then_their_results_echoed(demo):
    c = client(demo)
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    ask = [{"role": "user", "content": "Weather?"}]
    m = c.messages.create(model="claude-demo-1", max_tokens=50, tools=tools, messages=ask)
    assert m.stop_reason == "tool_use"
    call = m.content[-1]
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"city": "demo"})
    with c.messages.stream(model="claude-demo-1", max_tokens=50, tools=tools, messages=ask) as s:
        assert s.get_final_message().content[-1].input == {"city": "demo"}
    result = [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]
    m = c.messages.create(model="claude-demo-1", max_tokens=50, tools=tools,
                          messages=ask + [{"role": "assistant", "content": m.content}, {"role": "user", "content": result}])
    assert m.content[0].text == "Tool said: 18C"


def test_errors_have_anthropics_shape_and_status(demo):
    c = client(demo)
    ask = dict(max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.OverloadedError):
        c.messages.create(model="overloaded", **ask)
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(model="rate-limited", **ask)
    assert e.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.InternalServerError):
        c.messages.create(model="api-error", **ask)
    with pytest.raises(anthropic.AuthenticationError):
        client(demo, "wrong").messages.create(model="claude-demo-1", **ask)
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="claude-demo-1", max_tokens=5,
                          messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    # Without anthropic-version (the SDK always sends it), the request is refused.
    req = urllib.request.Request(demo + "/v1/messages", data=b"{}", headers={"x-api-key": KEY, "content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "cache_usage"])
def test_replayed_streams_are_anthropic_streams(demo, name):
    with client(demo).messages.stream(model=name, max_tokens=5, messages=[{"role": "user", "content": "x"}]) as s:
        final = s.get_final_message()
    kinds = {"text": ["text"], "tool_use": ["text", "tool_use", "tool_use", "tool_use"],
             "thinking": ["thinking", "redacted_thinking", "text"], "cache_usage": ["text"]}
    assert [b.type for b in final.content] == kinds[name]
    if name == "tool_use":
        assert [b.input for b in final.content[1:]] == [
            {"location": "San Francisco, CA", "unit": "fahrenheit"}, {"location": "Paris, FR"}, {}]
    if name == "thinking":
        assert final.content[0].signature.startswith("EqQB")
    if name == "cache_usage":
        assert (final.usage.cache_read_input_tokens, final.usage.cache_creation_input_tokens) == (20000, 1500)


def test_replayed_errors_keep_their_status(demo):
    c = client(demo)
    with pytest.raises(anthropic.APIStatusError) as e:
        with c.messages.stream(model="error", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()
    assert e.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.OverloadedError):
        c.messages.create(model="error_overloaded", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    m = c.messages.create(model="message_tool_use", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert m.content[-1].input == {"location": "San Francisco, CA", "unit": "celsius"}
