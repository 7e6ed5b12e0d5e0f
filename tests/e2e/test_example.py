"""The shipped example config, as `make run` serves it, on free ports: demo models answer the
openai SDK through real Envoy (the real model through llama.cpp's server), the hashed
restricted key sees only its model, the router `ai-router` routes by the demo classifier's
label, with curl and with the openai SDK, and the gRPC client API answers the README's grpcio
and curl examples with the demo key."""

import base64
import json
import re
import subprocess
import sys
import time
import urllib.request

import openai
import pytest

from stack import ROOT, Stack, free_port

# The demo backends' addresses (they record what they receive: GET /__requests).
BACKENDS = {}


# Where the example's sidecar writes session records, once it runs.
SESSIONS = {}

# Where the example serves the gRPC client API (the README's 127.0.0.1:50051, moved).
GRPC_API = {}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    work = tmp_path_factory.mktemp("example")
    text = (ROOT / "examples" / "airouter.toml").read_text()
    ports = {p: free_port() for p in (8080, 9901, 8101, 8102, 8103, 8104, 8105, 8106, 8107, 8109, 50051)}
    for old, new in ports.items():
        text = re.sub(r"\b%d\b" % old, str(new), text)
    # Paths in the config are relative to it: anchored where it came from, as it moves.
    text = re.sub(r'(chat_template_gguf = |_file = )"([^"]+)"',
                  lambda m: '%s"%s"' % (m.group(1), (ROOT / "examples" / m.group(2)).resolve()), text)
    # The demo's session records go to its work directory (`.run/sessions`); here, the test's.
    text = text.replace('dir = "../.run/sessions"', 'dir = "sessions"')
    config = work / "airouter.toml"
    config.write_text(text)
    stack = Stack(work)
    try:
        stack.start_backend("demo", ports[8101], "/v1", record=True)
        stack.start_backend("demo-hosted", ports[8102], "/openai/v1", api_key="sk-hosted-demo", record=True)
        stack.start_anthropic("demo-anthropic", ports[8107], api_key="sk-ant-demo")
        from run_demo import LLM_ALIAS, TRITON_MODELS
        stack.start_llama_cpp(ports[8105], LLM_ALIAS)
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports[8104], models=TRITON_MODELS)
        stack.start_sidecar(config)
        stack.start_envoy(config, {"DEMO_HOSTED_KEY": "sk-hosted-demo", "DEMO_ANTHROPIC_KEY": "sk-ant-demo"})
        SESSIONS["dir"] = work / "sessions"
        BACKENDS.update(demo="http://127.0.0.1:%d" % ports[8101], hosted="http://127.0.0.1:%d" % ports[8102])
        GRPC_API["target"] = "127.0.0.1:%d" % ports[50051]
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


def test_demo_claude_answers_openai_clients_and_any_model_answers_anthropic_clients(example):
    """`demo-claude` is the Anthropic-compatible demo server behind the filter's translation;
    `/v1/messages` serves the Anthropic SDK from any chat model, streaming included."""
    import anthropic
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0)
    chat = client.chat.completions.create(model="demo-claude", messages=[{"role": "user", "content": "hi"}])
    assert chat.model == "demo-claude" and chat.choices[0].message.content == "You said: hi"
    assert chat.choices[0].finish_reason == "stop" and chat.usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="demo-claude", stream=True, messages=[{"role": "user", "content": "hi"}]) if c.choices)
    assert text == "You said: hi"
    claude = anthropic.Anthropic(base_url=example[:-len("/v1")], api_key="sk-demo", max_retries=0)
    for model in ("demo-chat", "demo-claude"):
        msg = claude.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert msg.model == model and msg.content[0].text == "You said: hi", msg
        assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
        with claude.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
            assert "".join(s.text_stream) == "You said: hi"
            assert s.get_final_message().model == model
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=example[:-len("/v1")], api_key="sk-wrong", max_retries=0).messages.create(
            model="demo-chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"


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


def recorded(backend, path):
    """The JSON bodies a demo backend received on `path` (it records with --record)."""
    with urllib.request.urlopen(BACKENDS[backend] + "/__requests", timeout=5) as r:
        seen = json.loads(r.read())
    return [json.loads(base64.b64decode(x["body_b64"]) or b"{}") for x in seen if x["path"] == path]


def classified(text):
    """The label the demo classifier answered for a request whose last message is `text`."""
    asked = [b for b in recorded("demo", "/v1/chat/completions")
             if b.get("model") == "classifier" and b["messages"][-1]["content"].endswith(text)]
    assert len(asked) == 1, asked
    sys.path.insert(0, str(ROOT / "examples"))
    from demo_backend import classify  # noqa: PLC0415 - the demo's own rules say which label

    return classify(asked[0]["messages"][-1]["content"])[0]


def test_ai_router_routes_each_label_of_the_demo_classifier(example):
    """SIMPLE and MODERATE: the real model, its system prompt (local.md, the date and time in
    Berlin) in its prompt; COMPLEX: the echo "cloud", whose max_tokens the route raises to 1024;
    ENRICH: the search model asked through the Responses API with web_search, its answer in the
    real model's prompt. The client sees ai-router only."""
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0, timeout=60)
    assert "ai-router" in {m.id for m in client.models.list().data}

    def ask(text, **kw):
        r = client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": text}],
                                           temperature=0, seed=7, **kw)
        assert r.model == "ai-router"
        return r

    simple = ask("Name a colour.", max_tokens=8)
    assert classified("Name a colour.") == "SIMPLE"
    assert simple.choices[0].message.content.strip() and "You said" not in simple.choices[0].message.content
    direct = client.chat.completions.create(model="demo-llm", messages=[{"role": "user", "content": "Name a colour."}],
                                            max_tokens=8, temperature=0, seed=7)
    # The route's system prompt (about 40 tokens with the date) replaces the template's default.
    assert simple.usage.prompt_tokens > direct.usage.prompt_tokens + 15, (simple.usage, direct.usage)

    moderate = ask("Explain rain in one line.", max_tokens=8)
    assert classified("Explain rain in one line.") == "MODERATE" and moderate.choices[0].message.content.strip()

    complex_ = ask("Design a cache for me.", max_tokens=2)
    assert classified("Design a cache for me.") == "COMPLEX"
    assert complex_.choices[0].message.content == "You said: Design a cache for me."
    assert complex_.choices[0].finish_reason == "stop", "the floor lifted max_tokens = 2"
    cloud = [b for b in recorded("hosted", "/openai/v1/chat/completions") if b.get("model") == "cloud-large"]
    assert cloud[-1]["max_tokens"] == 1024
    assert cloud[-1]["messages"][0]["role"] == "system" and "Europe/Berlin" in cloud[-1]["messages"][0]["content"]

    enrich = ask("What is the latest news on Rust?", max_tokens=8)
    assert classified("What is the latest news on Rust?") == "ENRICH"
    searches = recorded("hosted", "/openai/v1/responses")
    assert searches and searches[-1]["model"] == "search-fast" and searches[-1]["tools"] == [{"type": "web_search"}]
    plain = ask("What is the state of Rust?", max_tokens=8)
    assert classified("What is the state of Rust?") == "SIMPLE"
    # The search result (about 60 tokens) went into the prompt before the question.
    assert enrich.usage.prompt_tokens > plain.usage.prompt_tokens + 30, (enrich.usage, plain.usage)


def test_ai_router_streams_and_skips_the_classifier_for_open_webui_tasks(example):
    client = openai.OpenAI(base_url=example, api_key="sk-demo", max_retries=0, timeout=60)
    title = "### Task:\nGenerate a concise title for the chat.\n### Chat History:\nUSER: why is the sky blue?"
    chunks = list(client.chat.completions.create(model="ai-router", stream=True, max_tokens=8, temperature=0,
                                                 messages=[{"role": "user", "content": title}]))
    assert chunks and all(c.model == "ai-router" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert not [b for b in recorded("demo", "/v1/chat/completions")
                if b.get("model") == "classifier" and "Generate a concise title" in json.dumps(b)]


def test_ai_router_answers_curl(example):
    """The README's curl commands, non-streamed and streamed (COMPLEX: the echo "cloud")."""
    body = json.dumps({"model": "ai-router", "messages": [{"role": "user", "content": "Design a tiny cache"}]})
    argv = ["curl", "-s", example + "/chat/completions", "-H", "Authorization: Bearer sk-demo",
            "-H", "content-type: application/json", "-d", body]
    out = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    doc = json.loads(out)
    assert doc["model"] == "ai-router" and doc["choices"][0]["message"]["content"] == "You said: Design a tiny cache"
    assert "cloud-large" not in out.decode() and "demo-cloud" not in out.decode()
    streamed = json.dumps({"model": "ai-router", "stream": True,
                           "messages": [{"role": "user", "content": "Design a tiny cache"}]})
    out = subprocess.run(argv[:-1] + [streamed, "-N"], capture_output=True, check=True, timeout=60).stdout.decode()
    events = [e[len("data: "):] for e in out.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["model"] == "ai-router" for e in events[:-1])
    assert "cloud-large" not in out and "demo-cloud" not in out


def test_the_grpc_api_answers_the_readme_examples(example, tmp_path):
    """The README's grpcio client (unary and streamed) and its curl of the JSON route."""
    import grpc  # noqa: PLC0415

    from grpc_stubs import compile_stubs  # noqa: PLC0415

    pb, pb_grpc = compile_stubs(tmp_path)
    target = GRPC_API["target"]
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RouterStub(channel)
        auth = [("authorization", "Bearer sk-demo")]
        req = pb.GenerationRequest(model="demo-chat", messages=[pb.Message(role="user", content="hi")])
        reply = stub.RouteRequest(req, metadata=auth, timeout=30)
        assert (reply.content, reply.model, reply.finish_reason) == ("You said: hi", "demo-chat", "stop")
        text = "".join(r.content for r in stub.StreamingRouteRequest(req, metadata=auth, timeout=30))
        assert text == "You said: hi"
    argv = ["curl", "-s", "http://%s/v1/route" % target, "-H", "Authorization: Bearer sk-demo",
            "-H", "content-type: application/json",
            "-d", '{"model":"demo-chat","messages":[{"role":"user","content":"hello"}]}']
    out = json.loads(subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout)
    assert (out["content"], out["model"]) == ("You said: hello", "demo-chat")
