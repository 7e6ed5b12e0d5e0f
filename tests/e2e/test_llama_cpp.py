"""The conformance battery against a real OpenAI-compatible server nobody here wrote: llama.cpp's
(llama-cpp-python's `llama_cpp.server`) running SmolLM2-135M-Instruct on CPU, behind real Envoy
and the release filter, driven by the openai SDK.

Real text varies, so the tests assert shapes, names, finish reasons and usage arithmetic, never
prose; every request is greedy (temperature 0, a seed) and short. The server's quirks, checked
here against the server itself so that a release that fixes one shows up:
- `stream_options.include_usage` is ignored: no usage chunk. The router counts the stream from
  its text and, for a client that asked, writes the usage chunk (docs/config.md, "Usage the
  router estimates").
- `n` > 1 answers one choice; the router passes what the backend answers (docs/config.md).
- the request's `model` is echoed back, and `/v1/models` names the model file: the router must
  never let either reach a client.
- a context overflow is a 400 in OpenAI's envelope when not streamed; streamed, the server sends
  200 and an empty event stream, then drops the connection.
- valid OpenAI chat shapes it does not implement (content as a list of parts, the `developer`
  role, an assistant turn with `content: null`) are 500s whose text the router hides.
- with its default `interrupt_requests`, a stream is dropped when another request arrives
  (examples/stack.py turns that off).
A non-streamed answer whose client left is generated to its end: tests/e2e/review20 checks that.
"""

import json
import re
import threading
import time
import urllib.error
import urllib.request

import httpx
import openai
import pytest

from stack import Stack, free_port, llm_model_path

# The name the server answers to (`--model_alias`), and the client's names for the model.
BACKEND_MODEL = "SmolLM2-135M-Instruct"
MODEL = "tiny"
BUDGETED_TPM = 60
# What uvicorn and llama-cpp-python add to each answer (Envoy sets its own `server: envoy`).
HEADERS_OF_THE_SERVER = ("x-request-id", "openai-processing-ms", "vary")

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.llama]
kind = "openai"
url = "http://127.0.0.1:{llama}/v1"
timeout_ms = 60000

[[models]]
name = "{model}"
apis = ["chat", "completions", "embeddings"]
target = {{ backend = "llama", model = "{backend_model}" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "budgeted"
key = "sk-budgeted"
tokens_per_minute = {tpm}
"""

GREEDY = {"temperature": 0, "seed": 7}
COLOUR = [{"role": "user", "content": "Name a colour."}]
COUNT = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]


class Llama:
    def __init__(self, stack, port, admin, llama):
        self.stack = stack
        self.base = "http://127.0.0.1:%d/v1" % port
        self.admin = "http://127.0.0.1:%d" % admin
        self.direct = "http://127.0.0.1:%d/v1" % llama

    def client(self, key="sk-test"):
        return openai.OpenAI(base_url=self.base, api_key=key, max_retries=0, timeout=60)

    def post(self, path, body, key="sk-test", base=None):
        """(status, headers, body text) of one request, errors included."""
        req = urllib.request.Request((base or self.base) + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": "Bearer " + key})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def stat(self, name):
        """A counter of the filter (`wasmcustom.NAME`), 0 when never bumped."""
        url = self.admin + "/stats?filter=^wasmcustom\\.%s$" % re.escape(name)
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == "wasmcustom." + name:
                    return int(value)
        return 0

    def stat_above(self, name, floor, timeout=5.0):
        """The counter once it is above `floor`: a stream is charged at its end, which Envoy may
        hand the filter just after the client has read `[DONE]`."""
        deadline = time.monotonic() + timeout
        while (value := self.stat(name)) <= floor and time.monotonic() < deadline:
            time.sleep(0.02)
        return value


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    work = tmp_path_factory.mktemp("llama")
    stack = Stack(work)
    port, admin, server = free_port(), free_port(), free_port()
    try:
        stack.start_llama_cpp(server, BACKEND_MODEL)
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, llama=server, model=MODEL,
                                        backend_model=BACKEND_MODEL, tpm=BUDGETED_TPM))
        stack.start_envoy(config)
        yield Llama(stack, port, admin, server)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def assert_no_leak(text):
    """Nothing that names the backend's model reaches a client: the name it answers to, the
    model file, its path."""
    for needle in (BACKEND_MODEL, llm_model_path().name, str(llm_model_path().parent)):
        assert needle.lower() not in text.lower(), "%r reached the client: %s" % (needle, text[:2000])


def sse_data(text):
    """The `data:` values of an event stream, in order."""
    return [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]


def chunks_of(text):
    """The JSON chunks of an event stream (without `[DONE]`), and whether it ended with it."""
    data = sse_data(text)
    assert data and data[-1] == "[DONE]", text[-500:]
    return [json.loads(d) for d in data[:-1]], data.count("[DONE]") == 1


def streamed_text(chunk):
    return "".join((c.get("delta") or {}).get("content") or c.get("text") or "" for c in chunk["choices"])


def carries_output(chunk):
    """A chunk with output for its choice, even empty text (docs/config.md, "Usage the router
    estimates"): `text`, or a delta's content, reasoning, refusal or tool calls."""
    keys = ("content", "reasoning_content", "refusal", "tool_calls")
    return any("text" in c or any((c.get("delta") or {}).get(k) is not None for k in keys)
               for c in chunk["choices"])


def estimate_tokens(data):
    """The router's text estimate (filter/core/src/token_estimate.rs), as docs/config.md states it:
    letters a token per five (rounded up), a digit or other visible ASCII character a token, a
    run of two or more whitespace characters a token, a non-ASCII character one per two bytes."""
    tokens, letters, spaces, i = 0, 0, 0, 0
    while i < len(data):
        b = data[i]
        if chr(b).isascii() and chr(b).isalpha():
            tokens += 1 if spaces > 1 else 0
            spaces = 0
            letters += 1
            i += 1
            continue
        tokens += -(-letters // 5)
        letters = 0
        if b in b" \t\n\r\x0c":
            spaces += 1
            i += 1
            continue
        tokens += 1 if spaces > 1 else 0
        spaces = 0
        if b < 0x80:
            tokens += 1
            i += 1
        else:
            n = 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 1
            tokens += -(-n // 2)
            i += n
    return tokens + -(-letters // 5) + (1 if spaces > 1 else 0)


def test_chat_answers_real_text_under_the_clients_name(llama):
    status, headers, body = llama.post("/chat/completions", {"model": MODEL, "messages": COLOUR, "max_tokens": 12,
                                                             **GREEDY})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == MODEL and answer["object"] == "chat.completion"
    [choice] = answer["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    usage = answer["usage"]
    assert 0 < usage["completion_tokens"] <= 12 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert_no_leak(body)
    assert_no_leak(json.dumps(headers))
    assert not set(HEADERS_OF_THE_SERVER) & set(headers), headers
    assert headers.get("server", "envoy") == "envoy", headers
    # The key's and the model's token stats are charged what the server reported.
    assert llama.stat("airouter_model_tokens.model.%s" % MODEL) >= usage["total_tokens"]


def test_the_sdk_reads_chat_and_the_models_list(llama):
    client = llama.client()
    r = client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=8, **GREEDY)
    assert r.model == MODEL and r.choices[0].message.content
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_max_tokens_ends_with_length(llama):
    client = llama.client()
    r = client.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=3, **GREEDY)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    c = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=3, **GREEDY)
    assert c.model == MODEL and c.choices[0].finish_reason == "length" and c.usage.completion_tokens == 3


def test_stop_strings_end_chat_and_completions(llama):
    client = llama.client()
    r = client.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=30, stop=[","], **GREEDY)
    assert r.choices[0].finish_reason == "stop" and "," not in r.choices[0].message.content
    assert r.usage.completion_tokens < 30
    c = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=8, stop=[","], **GREEDY)
    assert c.choices[0].finish_reason == "stop" and "," not in c.choices[0].text and c.choices[0].text.strip()


def test_legacy_completions_answer_and_stream(llama):
    client = llama.client()
    c = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, **GREEDY)
    assert c.model == MODEL and c.object == "text_completion" and c.choices[0].text.strip()
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    status, _, body = llama.post("/completions", {"model": MODEL, "prompt": "One, two,", "max_tokens": 6,
                                                  "stream": True, **GREEDY})
    assert status == 200
    chunks, one_done = chunks_of(body)
    assert one_done and all(ch["model"] == MODEL and ch["object"] == "text_completion" for ch in chunks)
    assert "".join(streamed_text(ch) for ch in chunks).strip()
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert not any("usage" in ch for ch in chunks), "no usage was asked for"
    assert_no_leak(body)


def test_chat_stream_is_renamed_and_ends_well(llama):
    status, headers, body = llama.post("/chat/completions", {"model": MODEL, "messages": COLOUR, "max_tokens": 8,
                                                             "stream": True, **GREEDY})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    chunks, one_done = chunks_of(body)
    assert one_done and all(ch["model"] == MODEL and ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert "".join(streamed_text(ch) for ch in chunks).strip()
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert not any("usage" in ch for ch in chunks)
    assert_no_leak(body)
    assert not set(HEADERS_OF_THE_SERVER) & set(headers), headers


def test_the_server_itself_sends_no_usage_in_a_stream_even_when_asked(llama):
    """The quirk the router makes up for (llama-cpp-python 0.3.36). Should a release fix it,
    this fails: then the router's own chunk is no longer written (it only ever is when the
    backend sends none), and this test should assert the server's usage instead."""
    body = {"model": BACKEND_MODEL, "messages": COLOUR, "max_tokens": 6, "stream": True,
            "stream_options": {"include_usage": True}, **GREEDY}
    status, _, text = llama.post("/chat/completions", body, base=llama.direct)
    assert status == 200
    chunks, _ = chunks_of(text)
    assert not any(ch.get("usage") for ch in chunks), "llama.cpp's server now sends usage in streams"


def test_a_client_that_asks_for_usage_gets_the_routers_usage_chunk(llama):
    """The backend sends none; the router counts the stream (one token per chunk with output, or
    its text's estimate if more; the prompt the request's estimate) and writes OpenAI's usage
    chunk just before [DONE]."""
    request = {"model": MODEL, "messages": COUNT, "max_tokens": 16, "stream": True,
               "stream_options": {"include_usage": True}, **GREEDY}
    estimated = llama.stat("airouter_usage_estimated")
    tokens = llama.stat("airouter_key_tokens.key.tester")
    status, _, body = llama.post("/chat/completions", request)
    assert status == 200
    chunks, one_done = chunks_of(body)
    assert one_done
    *content, last = chunks
    assert last["choices"] == [] and last["model"] == MODEL and last["object"] == "chat.completion.chunk"
    assert last["id"] == content[0]["id"] and last["created"] == content[0]["created"]
    assert not any("usage" in ch for ch in content), "one usage chunk, the last before [DONE]"
    usage = last["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] == estimate_tokens(json.dumps(request).encode())
    texts = [streamed_text(ch) for ch in content]
    output_chunks = sum(1 for ch in content if carries_output(ch))
    by_text = sum(estimate_tokens(t.encode()) for t in texts)
    assert usage["completion_tokens"] == max(output_chunks, by_text) > 0
    # Never below what the server counts for the same answer (greedy, so the same tokens).
    real = llama.client().chat.completions.create(model=MODEL, messages=COUNT, max_tokens=16, **GREEDY)
    assert usage["completion_tokens"] >= real.usage.completion_tokens
    # Charged to the key and counted as an estimate.
    assert llama.stat_above("airouter_usage_estimated", estimated) == estimated + 1
    total = tokens + usage["total_tokens"] + real.usage.total_tokens
    assert llama.stat_above("airouter_key_tokens.key.tester", total - 1) == total
    assert_no_leak(body)
    # The openai SDK reads it as OpenAI's usage chunk.
    sdk = list(llama.client().chat.completions.create(model=MODEL, messages=COUNT, max_tokens=16, stream=True,
                                                      stream_options={"include_usage": True}, **GREEDY))
    sdk_usage = sdk[-1].usage
    assert sdk[-1].choices == [] and sdk_usage.completion_tokens == usage["completion_tokens"]
    assert sdk_usage.total_tokens == sdk_usage.prompt_tokens + sdk_usage.completion_tokens
    assert all(c.usage is None for c in sdk[:-1])


def test_a_budgeted_keys_stream_without_usage_is_charged(llama):
    """Issue 20: a tokens_per_minute key streamed freely behind llama.cpp. Each stream is now
    charged its estimate; the client, who did not ask for usage, gets no usage chunk."""
    client = llama.client("sk-budgeted")
    before = llama.stat("airouter_key_tokens.key.budgeted")
    charged = []
    # Streams are admitted while the key is under its budget, each charged its estimate, until
    # the budget is spent and the next request is refused.
    for _ in range(BUDGETED_TPM // 16 + 1):
        so_far = before + sum(charged)
        if so_far >= BUDGETED_TPM:
            break
        chunks = list(client.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=16, stream=True,
                                                     **GREEDY))
        assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason
        charged.append(llama.stat_above("airouter_key_tokens.key.budgeted", so_far) - so_far)
    assert charged and all(c > 16 for c in charged), charged
    assert sum(charged) >= BUDGETED_TPM
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=4, **GREEDY)
    assert "tokens" in e.value.message


def test_n_above_one_gets_the_one_choice_the_server_answers(llama):
    """llama.cpp's server answers one choice whatever `n` is; the router passes the request and
    the answer as they are (docs/config.md, "What the router does not make up for")."""
    r = llama.client().chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=6, n=2, **GREEDY)
    assert r.model == MODEL and [c.index for c in r.choices] == [0]


def test_embeddings_are_openai_shaped_vectors(llama):
    client = llama.client()
    r = client.embeddings.create(model=MODEL, input=["hello there", "world"])
    assert r.model == MODEL and [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == 576 and isinstance(d.embedding[0], float) for d in r.data)
    assert r.usage.prompt_tokens > 0
    status, _, body = llama.post("/embeddings", {"model": MODEL, "input": "hi", "encoding_format": "float"})
    assert status == 200 and json.loads(body)["model"] == MODEL
    assert_no_leak(body)


def test_a_context_overflow_is_a_400_in_openais_envelope(llama):
    long = [{"role": "user", "content": "word " * 3000}]
    status, headers, body = llama.post("/chat/completions", {"model": MODEL, "messages": long, "max_tokens": 4})
    assert status == 400 and headers["content-type"] == "application/json", body
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == "context_length_exceeded" and err["type"] == "invalid_request_error"
    assert "context" in err["message"]
    assert_no_leak(body)
    with pytest.raises(openai.BadRequestError) as e:
        llama.client().chat.completions.create(model=MODEL, messages=long, max_tokens=4)
    assert e.value.code == "context_length_exceeded"


def test_a_streamed_context_overflow_ends_with_an_error_not_silence(llama):
    """The server answers 200 with an event stream and drops the connection without an event;
    the client gets an error event and [DONE] rather than an empty stream."""
    long = [{"role": "user", "content": "word " * 3000}]
    status, _, body = llama.post("/chat/completions", {"model": MODEL, "messages": long, "max_tokens": 4,
                                                       "stream": True})
    assert status == 200
    data = sse_data(body)
    assert data[-1] == "[DONE]" and json.loads(data[-2])["error"]["code"] == "stream_truncated", body
    assert_no_leak(body)


def test_a_client_leaving_mid_stream_leaves_the_server_usable(llama):
    body = {"model": MODEL, "messages": COUNT, "max_tokens": 48, "stream": True, **GREEDY}
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", llama.base + "/chat/completions", json=body,
                         headers={"authorization": "Bearer sk-test"}) as r:
            assert r.status_code == 200
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data:")
                if seen == 3:
                    break
    started = time.monotonic()
    r = llama.client().chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=6, **GREEDY)
    assert r.model == MODEL and r.choices[0].message.content
    assert time.monotonic() - started < 30


VALID_SHAPES_IT_REFUSES = {
    "content parts": [{"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}],
    "developer role": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
    "assistant content null": [
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
}


@pytest.mark.parametrize("case", sorted(VALID_SHAPES_IT_REFUSES))
def test_valid_chat_shapes_the_server_refuses_are_a_generic_500(llama, case):
    """The server answers these 500 with a TypeError from the chat template or a pydantic dump
    naming its files (a release that takes them shows up here); the client gets the router's
    generic 500 in OpenAI's envelope, none of that text."""
    body = {"model": BACKEND_MODEL, "messages": VALID_SHAPES_IT_REFUSES[case], "max_tokens": 4, **GREEDY}
    status, _, direct = llama.post("/chat/completions", body, base=llama.direct)
    assert status == 500 and ("validation" in direct or "concatenate" in direct), direct[:300]
    status, _, text = llama.post("/chat/completions", dict(body, model=MODEL))
    assert status == 500 and json.loads(text) == {"error": {
        "message": "The backend had an internal error while processing the request.",
        "type": "server_error", "param": None, "code": None}}, text
    assert_no_leak(text)


def test_a_stream_is_not_cut_short_by_another_clients_request(llama):
    """llama-cpp-python's server, by default (`interrupt_requests`), ends the answer it is
    streaming as soon as another request waits for the model, dropping the connection mid-stream;
    examples/stack.py starts it with `--interrupt_requests false`, so the second request waits
    its turn and the first client gets its whole answer."""
    body = {"model": MODEL, "messages": COUNT, "max_tokens": 24, "stream": True, **GREEDY}
    whole = "".join(streamed_text(c) for c in chunks_of(llama.post("/chat/completions", body)[2])[0])
    other = {}

    def second():
        other["status"] = llama.post("/chat/completions", {"model": MODEL, "messages": COLOUR, "max_tokens": 2,
                                                           **GREEDY})[0]

    lines, waiter = [], threading.Thread(target=second)
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", llama.base + "/chat/completions", json=body,
                         headers={"authorization": "Bearer sk-test"}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("data:") and sum(x.startswith("data:") for x in lines) == 3:
                    waiter.start()
    waiter.join(60)
    chunks, done = chunks_of("\n".join(lines))
    assert done and "".join(streamed_text(c) for c in chunks) == whole
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert other["status"] == 200
