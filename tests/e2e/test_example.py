"""The shipped example config, as `make run` serves it, on free ports: demo models answer the
openai SDK through real Envoy (the real model through llama.cpp's server), and the hashed
restricted key sees only its model."""

import json
import re
import time

import openai
import pytest

from stack import ROOT, Stack, free_port


# Where the example's sidecar writes session records, once it runs.
SESSIONS = {}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    work = tmp_path_factory.mktemp("example")
    text = (ROOT / "examples" / "airouter.toml").read_text()
    ports = {p: free_port() for p in (8080, 9901, 8101, 8102, 8103, 8104, 8105, 8106, 8109)}
    for old, new in ports.items():
        text = re.sub(r"\b%d\b" % old, str(new), text)
    # Paths in the config are relative to it: anchored where it came from, as it moves.
    text = re.sub(r'(chat_template_gguf = )"([^"]+)"',
                  lambda m: '%s"%s"' % (m.group(1), (ROOT / "examples" / m.group(2)).resolve()), text)
    # The demo's session records go to its work directory (`.run/sessions`); here, the test's.
    text = text.replace('dir = "../.run/sessions"', 'dir = "sessions"')
    config = work / "airouter.toml"
    config.write_text(text)
    stack = Stack(work)
    try:
        stack.start_backend("demo", ports[8101], "/v1")
        stack.start_backend("demo-hosted", ports[8102], "/openai/v1", api_key="sk-hosted-demo")
        from run_demo import LLM_ALIAS, TRITON_MODELS
        stack.start_llama_cpp(ports[8105], LLM_ALIAS)
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports[8104], models=TRITON_MODELS)
        stack.start_sidecar(config)
        stack.start_envoy(config, {"DEMO_HOSTED_KEY": "sk-hosted-demo"})
        SESSIONS["dir"] = work / "sessions"
        yield "http://127.0.0.1:%d/v1" % ports[8080]
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_demo_models_answer_with_the_demo_key(example):
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0)
    ids = {m.id for m in client.models.list().data}
    assert {"demo-chat", "demo-embed", "demo-tts", "demo-whisper", "demo-llm", "demo-triton-chat",
            "demo-triton-embed"} <= ids
    chat = client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hi"}])
    assert chat.model == "demo-chat" and chat.choices[0].message.content == "You said: hi"
    emb = client.embeddings.create(model="demo-embed", input="hi")
    assert emb.model == "demo-embed" and len(emb.data[0].embedding) == 8
    hosted = client.chat.completions.create(model="hosted-anything", messages=[{"role": "user", "content": "x"}])
    assert hosted.model == "hosted-anything"


def test_unknown_chat_model_falls_back_to_the_default(example):
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0)
    chat = client.chat.completions.create(model="whatever", messages=[{"role": "user", "content": "hi"}])
    assert chat.model == "demo-chat"


def test_hashed_restricted_key_sees_only_its_model(example):
    client = openai.OpenAI(base_url=example, api_key="sk-restricted", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["demo-chat"]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="demo-embed", input="x")


def test_demo_triton_models_answer_through_the_sidecar(example):
    """demo-triton-chat is the real model on Triton (tests/triton/models/llama_chat), its prompt
    built from the chat template in the GGUF file: real tokens stream, one per chunk or so."""
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0, timeout=60)
    chunks = list(client.chat.completions.create(model="demo-triton-chat", stream=True, max_tokens=12,
                                                 temperature=0, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "Name a colour."}]))
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(texts)
    assert text.strip() and "Name a colour" not in text and "<|im_" not in text
    assert sum(1 for t in texts if t) >= 2, "streamed in pieces: %r" % texts
    assert all(c.model == "demo-triton-chat" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert 0 < chunks[-1].usage.completion_tokens <= 12 and chunks[-1].usage.prompt_tokens > 5
    emb = client.embeddings.create(model="demo-triton-embed", input=["a", "b"])
    assert emb.model == "demo-triton-embed" and len(emb.data) == 2 and len(emb.data[0].embedding) == 8


def test_the_demo_keeps_a_session_record_of_each_request(example):
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0)
    client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "record me"}])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [json.loads(p.read_text()) for p in SESSIONS["dir"].glob("*.json")]
        found = [r for r in found if "record me" in json.dumps(r.get("request"))]
        if found:
            break
        time.sleep(0.1)
    assert found, "no session record"
    assert found[0]["key"] == "demo" and found[0]["response"]["text"] == "You said: record me"


def test_demo_failover_is_served_by_its_second_target(example):
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0)
    r = client.chat.completions.create(model="demo-failover", messages=[{"role": "user", "content": "hi"}])
    assert r.model == "demo-failover" and r.choices[0].message.content == "You said: hi"


def test_demo_llm_answers_real_text_under_its_name(example):
    """demo-llm is SmolLM2-135M on llama.cpp's server: real text (not an echo), the client's
    name on the answer and on every chunk, the backend's name nowhere."""
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0, timeout=60)
    chat = client.chat.completions.with_raw_response.create(
        model="demo-llm", max_tokens=12, temperature=0, seed=7,
        messages=[{"role": "user", "content": "Name a colour."}])
    body = chat.http_response.text
    answer = chat.parse()
    assert answer.model == "demo-llm" and answer.choices[0].finish_reason in ("stop", "length")
    text = answer.choices[0].message.content
    assert text.strip() and "Name a colour." not in text
    assert 0 < answer.usage.completion_tokens <= 12
    assert "SmolLM2-135M-Instruct" not in body and ".gguf" not in body
    chunks = list(client.chat.completions.create(model="demo-llm", stream=True, max_tokens=8, temperature=0,
                                                 messages=[{"role": "user", "content": "Name a colour."}]))
    assert chunks and all(c.model == "demo-llm" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
