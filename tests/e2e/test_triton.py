"""Triton end to end: openai SDK -> Envoy + AI Router filter -> sidecar -> real Triton (CPU).

The model repository (tests/triton/models) reproduces each family's contract; the same battery
runs for every LLM family, streaming and not."""

import base64
import hashlib
import json
import struct
import time

import openai
import pytest

from conftest import assert_no_backend_names
from stack import ROOT, Stack, free_port

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[sidecar]
port = {sidecar}

[backends.triton]
kind = "triton"
url = "grpc://127.0.0.1:{grpc}"
timeout_ms = 30000

[backends.triton-down]
kind = "triton"
url = "grpc://127.0.0.1:{dead}"
connect_timeout_ms = 500

[[models]]
name = "vllm-chat"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "vllm_chat" }}
triton = {{ family = "vllm", template = "chatml", max_tokens = 32, eos_token = "</s>" }}

[[models]]
name = "trt-chat"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "trtllm_ensemble" }}
triton = {{ family = "trtllm", template = "llama3", max_tokens = 32, stop_strings = ["</s>"] }}

[[models]]
name = "bls-chat"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "trtllm_bls" }}
triton = {{ family = "trtllm-bls", template = "plain", max_tokens = 32, stop_strings = ["</s>"] }}

[[models]]
name = "sync-chat"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "trtllm_sync" }}
triton = {{ family = "trtllm", template = "gemma", max_tokens = 32, stop_strings = ["</s>"] }}

[[models]]
name = "broken-mid"
apis = ["chat"]
target = {{ backend = "triton", model = "fail_midstream" }}
triton = {{ family = "vllm", template = "chatml" }}

[[models]]
name = "broken-first"
apis = ["chat"]
target = {{ backend = "triton", model = "fail_first" }}
triton = {{ family = "vllm", template = "chatml" }}

[[models]]
name = "embed"
apis = ["embeddings"]
target = {{ backend = "triton", model = "embed" }}
triton = {{ family = "embeddings" }}

[[models]]
name = "embed-bad"
apis = ["embeddings"]
target = {{ backend = "triton", model = "embed_bad_batch" }}
triton = {{ family = "embeddings" }}

[[models]]
name = "garbled"
apis = ["chat"]
target = {{ backend = "triton", model = "bad_bytes" }}
triton = {{ family = "vllm", template = "chatml" }}

[[models]]
name = "offline"
apis = ["chat"]
target = {{ backend = "triton-down", model = "vllm_chat" }}
triton = {{ family = "vllm", template = "chatml" }}
"""

FAMILIES = ["vllm-chat", "trt-chat", "bls-chat", "sync-chat"]
TRITON_NAMES = ["bad_bytes", "vllm_chat", "trtllm_ensemble", "trtllm_bls", "trtllm_sync", "fail_midstream", "fail_first", "embed_bad_batch"]
# The repository's stand-ins (the real model, llama_chat, has tests/e2e/test_triton_llama.py).
STAND_INS = TRITON_NAMES + ["embed"]


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    work = tmp_path_factory.mktemp("triton")
    stack = Stack(work)
    ports = dict(port=free_port(), admin=free_port(), sidecar=free_port(), grpc=free_port(), dead=free_port())
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(**ports))
    try:
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=STAND_INS)
        stack.start_sidecar(config)
        stack.start_envoy(config)
        yield stack, "http://127.0.0.1:%d/v1" % ports["port"], ports
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.fixture
def client(triton):
    return openai.OpenAI(base_url=triton[1], api_key="none", max_retries=0, timeout=60)


def ask(text):
    return [{"role": "system", "content": "Be literal."}, {"role": "user", "content": text}]


def no_leak(obj):
    text = obj if isinstance(obj, (str, bytes)) else json.dumps(obj) if isinstance(obj, dict) else obj.model_dump_json()
    if isinstance(text, bytes):
        text = text.decode()
    leaked = [n for n in TRITON_NAMES if n in text]
    assert not leaked, leaked


@pytest.mark.parametrize("model", FAMILIES)
def test_chat_non_streaming(client, model):
    r = client.chat.completions.create(model=model, messages=ask("say hello world"))
    assert r.model == model
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "You said: say hello world"
    assert r.choices[0].finish_reason == "stop"
    # Counted per streamed token, or estimated for a model that answers in one piece.
    assert r.usage.completion_tokens == (7 if model == "sync-chat" else 6) and r.usage.prompt_tokens > 0
    assert r.id.startswith("chatcmpl-")
    no_leak(r)


@pytest.mark.parametrize("model", FAMILIES)
def test_chat_streaming_with_usage(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=ask("say hello world"), stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: say hello world"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == (7 if model == "sync-chat" else 6)
    for c in chunks:
        assert c.model == model
        no_leak(c)


@pytest.mark.parametrize("model", FAMILIES)
def test_no_usage_chunk_unless_asked(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=ask("hi"), stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


@pytest.mark.parametrize("model", FAMILIES)
def test_repeated_and_overlapping_pieces_survive(client, model):
    r = client.chat.completions.create(model=model, messages=ask("count dots"))
    assert r.choices[0].message.content == "..."
    streamed = "".join(c.choices[0].delta.content or "" for c in
                       client.chat.completions.create(model=model, messages=ask("these please"), stream=True) if c.choices)
    assert streamed == "the these"


@pytest.mark.parametrize("model", FAMILIES)
def test_length_and_stop(client, model):
    r = client.chat.completions.create(model=model, messages=ask("say a b c d"), max_completion_tokens=2)
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("You said", "length")
    r = client.chat.completions.create(model=model, messages=ask("say a b c d"), stop=["said"])
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("You", "stop")


@pytest.mark.parametrize("model", FAMILIES)
def test_n_choices(client, model):
    r = client.chat.completions.create(model=model, messages=ask("say twice"), n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content == "You said: say twice" for c in r.choices)
    chunks = list(client.chat.completions.create(model=model, messages=ask("say twice"), n=2, stream=True))
    for i in (0, 1):
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i) == "You said: say twice"


@pytest.mark.parametrize("model", ["vllm-chat", "bls-chat"])
def test_utf8_split_and_end_marker(client, model):
    r = client.chat.completions.create(model=model, messages=ask("utf8 please"))
    assert r.choices[0].message.content == "\U0001f600 ok"
    r = client.chat.completions.create(model=model, messages=ask("with-eos"))
    assert r.choices[0].message.content == "done"


@pytest.mark.parametrize("model", FAMILIES)
def test_legacy_completions(client, model):
    r = client.completions.create(model=model, prompt=["say one", "say two"])
    assert [c.text for c in r.choices] == ["You said: say one", "You said: say two"]
    r = client.completions.create(model=model, prompt="say x", echo=True)
    assert r.choices[0].text == "say xYou said: say x"
    chunks = list(client.completions.create(model=model, prompt="say x", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "You said: say x"
    for tokens in ([1, 2], [[1, 2]]):
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model=model, prompt=tokens)
        assert e.value.body["param"] == "prompt"


def vector(text):
    return [(b - 128) / 128.0 for b in hashlib.sha256(text.encode()).digest()[:8]]


def test_embeddings(client):
    r = client.embeddings.create(model="embed", input=["alpha", "beta"], encoding_format="float")
    assert r.model == "embed" and r.object == "list"
    assert [d.index for d in r.data] == [0, 1] and all(d.object == "embedding" for d in r.data)
    assert r.data[1].embedding == pytest.approx(vector("beta"))
    assert r.usage.prompt_tokens > 0


def test_embeddings_base64_and_batches_beyond_the_model_limit(triton):
    import urllib.request
    body = json.dumps({"model": "embed", "input": ["t%d" % i for i in range(20)], "encoding_format": "base64"}).encode()
    req = urllib.request.Request(triton[1] + "/embeddings", data=body, headers={"content-type": "application/json"})
    data = json.loads(urllib.request.urlopen(req, timeout=30).read())
    assert len(data["data"]) == 20
    floats = struct.unpack("<8f", base64.b64decode(data["data"][19]["embedding"]))
    assert list(floats) == pytest.approx(vector("t19"))
    no_leak(data)


def test_embedding_errors(client):
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embed", input=[[1, 2, 3]])
    with pytest.raises(openai.APIStatusError) as e:
        client.embeddings.create(model="embed-bad", input=["a", "b"])
    assert e.value.status_code == 502
    no_leak(e.value.response.text)


def test_error_before_the_first_token_is_an_http_error(client):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="broken-first", messages=ask("hi"), stream=True)
    # A backend's 5xx text (here the engine's, via the sidecar) is replaced by a generic one.
    assert e.value.status_code == 500 and "internal error" in e.value.message
    no_leak(e.value.response.text)


def test_error_mid_stream_is_an_error_event_then_a_clean_end(client, triton):
    stream = client.chat.completions.create(model="broken-mid", messages=ask("say a b c"), stream=True)
    got = []
    with pytest.raises(openai.APIError) as e:
        for c in stream:
            got.append(c)
    # The engine's own text is the backend's: the client reads a generic server error.
    assert "internal error" in str(e.value)
    assert "".join(c.choices[0].delta.content or "" for c in got if c.choices) == "You said"
    import urllib.request
    body = json.dumps({"model": "broken-mid", "stream": True, "messages": ask("say a b c")}).encode()
    raw = urllib.request.urlopen(urllib.request.Request(triton[1] + "/chat/completions", data=body,
                                                        headers={"content-type": "application/json"}), timeout=30).read()
    events = [e for e in raw.decode().split("\n\n") if e]
    assert '"error"' in events[-2] and events[-1] == "data: [DONE]"


def test_triton_down_is_503(client):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="offline", messages=ask("hi"))
    assert e.value.status_code == 503


def test_client_disconnect_cancels_the_triton_request(client, tmp_path):
    marker = tmp_path / "cancelled"
    stream = client.chat.completions.create(model="vllm-chat", messages=ask("slow marker=%s" % marker), stream=True)
    seen = 0
    for c in stream:
        if c.choices and c.choices[0].delta.content:
            seen += 1
        if seen >= 2:
            break
    stream.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.1)
    assert marker.exists(), "Triton never saw the request cancelled"


def test_models_are_listed(client):
    ids = {m.id for m in client.models.list().data}
    assert set(FAMILIES) | {"embed"} <= ids


@pytest.mark.parametrize("targets", [
    'target = { backend = "t", model = "vllm_chat" }',
    # A Triton target behind another one is checked too.
    'targets = [{ backend = "o", model = "x" }, { backend = "t", model = "vllm_chat" }]',
])
def test_sidecar_refuses_a_model_that_cannot_work_as_configured(triton, tmp_path, targets):
    import subprocess
    from stack import AIROUTER
    config = tmp_path / "wrong.toml"
    config.write_text(
        '[sidecar]\nport = %d\n[backends.t]\nkind = "triton"\nurl = "grpc://127.0.0.1:%d"\n'
        '[backends.o]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\n'
        '[[models]]\nname = "m"\napis = ["chat"]\n%s\n'
        'triton = { family = "trtllm", template = "chatml" }\n' % (free_port(), triton[2]["grpc"], targets))
    out = subprocess.run([str(AIROUTER), "serve", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "cannot be served as `trtllm`" in out.stderr and "max_tokens" in out.stderr, out.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_bytes_from_triton_are_a_502(client, stream):
    with pytest.raises(openai.APIStatusError) as e:
        r = client.chat.completions.create(model="garbled", messages=ask("hi"), stream=stream)
        list(r) if stream else r
    assert e.value.status_code == 502
    assert "bad gateway" in e.value.message
    no_leak(e.value.response.text)


def test_sidecar_takes_instructions_only_with_the_shared_secret(triton, tmp_path):
    import urllib.error
    import urllib.request
    port = free_port()
    config = tmp_path / "secret.toml"
    config.write_text(
        '[sidecar]\nport = %d\nsecret_env = "AIROUTER_TEST_SIDECAR_SECRET"\n[backends.t]\nkind = "triton"\n'
        'url = "grpc://127.0.0.1:%d"\n[[models]]\nname = "m"\napis = ["chat"]\n'
        'target = { backend = "t", model = "vllm_chat" }\ntriton = { family = "vllm", template = "chatml" }\n'
        % (port, triton[2]["grpc"]))
    stack = Stack(tmp_path)
    try:
        stack.start_sidecar(config, {"AIROUTER_TEST_SIDECAR_SECRET": "s3cret"})
        body = json.dumps({"model": "m", "messages": ask("say ok")}).encode()
        base = {"content-type": "application/json", "x-airouter-triton-backend": "t",
                "x-airouter-triton-model": "vllm_chat", "x-airouter-client-model": "m"}

        def call(extra):
            req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body,
                                         headers=dict(base, **extra))
            try:
                with urllib.request.urlopen(req, timeout=20) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert call({})[0] == 403
        assert call({"x-airouter-sidecar-secret": "guess"})[0] == 403
        status, answer = call({"x-airouter-sidecar-secret": "s3cret"})
        assert status == 200 and answer["choices"][0]["message"]["content"] == "You said: say ok"
    finally:
        stack.stop()


def test_triton_down_at_start_then_back(tmp_path):
    """The sidecar starts without Triton, answers 503, and serves once Triton is up."""
    ports = dict(port=free_port(), admin=free_port(), sidecar=free_port(), grpc=free_port())
    config = tmp_path / "late.toml"
    config.write_text(
        '[listener]\naddress = "127.0.0.1"\nport = {port}\n[admin]\nport = {admin}\n[sidecar]\nport = {sidecar}\n'
        '[backends.t]\nkind = "triton"\nurl = "grpc://127.0.0.1:{grpc}"\nconnect_timeout_ms = 500\n'
        '[[models]]\nname = "late"\napis = ["chat"]\ntarget = {{ backend = "t", model = "vllm_chat" }}\n'
        'triton = {{ family = "vllm", template = "chatml" }}\n'.format(**ports))
    stack = Stack(tmp_path)
    try:
        stack.start_sidecar(config)
        stack.start_envoy(config)
        client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % ports["port"], api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as e:
            client.chat.completions.create(model="late", messages=ask("hi"))
        assert e.value.status_code == 503
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=["vllm_chat"])
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = client.chat.completions.create(model="late", messages=ask("say back"))
            except openai.InternalServerError:
                time.sleep(0.5)
        assert answer is not None and answer.choices[0].message.content == "You said: say back"
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_sidecar_health_reports_server_and_model_readiness(triton):
    import urllib.request
    health = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/health" % triton[2]["sidecar"], timeout=20).read())
    assert health["backends"] == {"triton": "ready", "triton-down": "unavailable"}
    assert health["models"]["vllm-chat"] == "ready" and health["models"]["offline"] == "unavailable"
