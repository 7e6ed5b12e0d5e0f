"""The conformance battery against a real model on Triton: SmolLM2-135M-Instruct run by llama.cpp in
a Python model that speaks the vLLM backend's contract (tests/triton/models/llama_chat), behind the
sidecar, real Envoy and the release filter, driven by the openai SDK.

The sidecar builds each prompt from the chat template and special tokens in the GGUF file's own
metadata (`chat_template_gguf`). Real text varies, so the tests assert shapes, names, finish
reasons, usage arithmetic and properties that greedy decoding makes exact (the same request gives
the same tokens, streamed or not; a stop string cuts the same text where it occurs), never prose.
"""

import importlib.util
import json
import random
import sys
import time
import types
import urllib.error
import urllib.request
from unittest import mock

import httpx
import jinja2.sandbox
import llama_cpp
import openai
import pytest

from stack import ROOT, Stack, free_port, llm_model_path

MODEL = "tiny-triton"
TRITON_MODEL = "llama_chat"
MAX_TOKENS = 24

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
timeout_ms = 60000

[[models]]
name = "{model}"
apis = ["chat", "completions"]
target = {{ backend = "triton", model = "{triton_model}" }}
triton = {{ family = "vllm", chat_template_gguf = "{gguf}", stream_text = "delta", max_tokens = {max_tokens} }}

[[keys]]
name = "tester"
key = "sk-test"
"""

GREEDY = {"temperature": 0, "seed": 7}
COLOUR = [{"role": "user", "content": "Name a colour."}]
STORY = [{"role": "user", "content": "Tell me a story about a dragon who learns to read."}]


class Triton:
    def __init__(self, stack, port):
        self.stack = stack
        self.base = "http://127.0.0.1:%d/v1" % port

    def client(self):
        return openai.OpenAI(base_url=self.base, api_key="sk-test", max_retries=0, timeout=120)

    def post(self, path, body):
        """(status, headers, body text) of one request, errors included."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": "Bearer sk-test"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def triton_log(self):
        return (self.stack.workdir / "triton.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def real_triton(tmp_path_factory):
    work = tmp_path_factory.mktemp("triton-llama")
    stack = Stack(work)
    ports = dict(port=free_port(), admin=free_port(), sidecar=free_port(), grpc=free_port())
    config = work / "airouter.toml"
    config.write_text(CONFIG.format(model=MODEL, triton_model=TRITON_MODEL, gguf=llm_model_path(),
                                    max_tokens=MAX_TOKENS, **ports))
    try:
        stack.start_triton(ROOT / "tests" / "triton" / "models", ports["grpc"], models=[TRITON_MODEL])
        stack.start_sidecar(config)
        stack.start_envoy(config)
        yield Triton(stack, ports["port"])
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def tokenizer():
    """The model's own tokenizer and its chat template, rendered as Hugging Face does (Jinja2,
    `trim_blocks` and `lstrip_blocks`): what the prompt must count."""
    llm = llama_cpp.Llama(model_path=str(llm_model_path()), vocab_only=True, verbose=False)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(llm.metadata["tokenizer.chat_template"])

    def prompt_tokens(messages):
        text = template.render(messages=messages, add_generation_prompt=True)
        return len(llm.tokenize(text.encode(), add_bos=False, special=True))

    return prompt_tokens


def assert_no_leak(text):
    """Nothing that names what serves the model reaches a client: the Triton model, the file,
    its directory."""
    for needle in (TRITON_MODEL, llm_model_path().name, str(llm_model_path().parent)):
        assert needle.lower() not in text.lower(), "%r reached the client: %s" % (needle, text[:2000])


def sse_data(text):
    return [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]


def chunks_of(text):
    data = sse_data(text)
    assert data and data[-1] == "[DONE]" and data.count("[DONE]") == 1, text[-500:]
    return [json.loads(d) for d in data[:-1]]


def streamed_text(chunk):
    return "".join((c.get("delta") or {}).get("content") or c.get("text") or "" for c in chunk["choices"])


def clean(text):
    """Real text, not markup: no template tokens, no end-of-turn marker."""
    return text.strip() and "<|im_" not in text and "<|endoftext|>" not in text


def test_chat_answers_real_text_counted_by_the_real_tokenizer(real_triton, tokenizer):
    status, headers, body = real_triton.post("/chat/completions", {"model": MODEL, "messages": COLOUR,
                                                              "max_tokens": 12, **GREEDY})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == MODEL and answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    [choice] = answer["choices"]
    assert choice["message"]["role"] == "assistant" and clean(choice["message"]["content"])
    assert choice["finish_reason"] in ("stop", "length")
    usage = answer["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # The prompt is the GGUF's own template (with its default system turn), counted by the
    # model's tokenizer: not the sidecar's estimate, not another template.
    assert usage["prompt_tokens"] == tokenizer(COLOUR) > 20
    assert_no_leak(body)
    assert_no_leak(json.dumps(headers))


def test_the_sdk_reads_chat_and_the_models_list(real_triton):
    client = real_triton.client()
    r = client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=8, **GREEDY)
    assert r.model == MODEL and clean(r.choices[0].message.content)
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_max_tokens_ends_with_length(real_triton):
    client = real_triton.client()
    r = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=5, **GREEDY)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5
    c = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4, **GREEDY)
    assert c.model == MODEL and c.choices[0].finish_reason == "length" and c.usage.completion_tokens == 4
    # The model's default when the client gives none: the config's max_tokens.
    r = client.chat.completions.create(model=MODEL, messages=STORY, **GREEDY)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == MAX_TOKENS


def test_streamed_and_whole_answers_are_the_same_tokens(real_triton):
    """Greedy decoding: the stream's deltas add up to the non-streamed answer exactly (nothing
    lost, doubled or left over between pieces), one piece per token or so."""
    client = real_triton.client()
    whole = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=16, **GREEDY)
    status, headers, body = real_triton.post("/chat/completions", {"model": MODEL, "messages": STORY, "max_tokens": 16,
                                                              "stream": True, **GREEDY})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    chunks = chunks_of(body)
    assert all(ch["model"] == MODEL and ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert len({ch["id"] for ch in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    pieces = [streamed_text(ch) for ch in chunks]
    assert "".join(pieces) == whole.choices[0].message.content
    assert sum(1 for p in pieces if p) >= 8, pieces
    assert chunks[-1]["choices"][0]["finish_reason"] == whole.choices[0].finish_reason == "length"
    assert not any("usage" in ch for ch in chunks), "no usage was asked for"
    assert_no_leak(body)


def test_a_stream_reports_the_models_usage_when_asked(real_triton, tokenizer):
    client = real_triton.client()
    whole = client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=10, **GREEDY)
    chunks = list(client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=10, stream=True,
                                                 stream_options={"include_usage": True}, **GREEDY))
    *content, last = chunks
    assert last.choices == [] and all(c.usage is None for c in content)
    assert last.usage.completion_tokens == whole.usage.completion_tokens > 0
    assert last.usage.prompt_tokens == tokenizer(COLOUR)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_stop_strings_cut_where_they_occur(real_triton):
    """A word from the middle of the greedy answer, as a stop string: the answer ends just
    before it, streamed or not, and says why."""
    client = real_triton.client()
    full = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=20, **GREEDY).choices[0].message.content
    words = full.split()
    assert len(words) >= 6, full
    stop = " " + words[len(words) // 2]
    expected = full[:full.index(stop)]
    r = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=20, stop=[stop, "@@never@@"], **GREEDY)
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == (expected, "stop")
    assert r.usage.completion_tokens < 20
    streamed = list(client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=20, stop=stop,
                                                   stream=True, **GREEDY))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "stop"
    prompt = "1, 2, 3, 4,"
    whole = client.completions.create(model=MODEL, prompt=prompt, max_tokens=8, **GREEDY).choices[0].text
    assert "," in whole, whole
    c = client.completions.create(model=MODEL, prompt=prompt, max_tokens=8, stop=[","], **GREEDY)
    assert c.choices[0].finish_reason == "stop" and c.choices[0].text == whole.split(",")[0]
    assert c.choices[0].text.strip()


def test_a_stop_string_over_1_kib_is_refused_before_the_model(real_triton):
    """The sidecar bounds stop strings (docs/config.md: at most 1,024 bytes each): a longer one is
    a 400 naming `stop`; one at the bound is served."""
    for path, body in (("/chat/completions", {"messages": COLOUR}), ("/completions", {"prompt": "One, two,"})):
        status, headers, text = real_triton.post(path, dict(body, model=MODEL, max_tokens=2, stop=["@@", "x" * 1025]))
        assert status == 400 and headers["content-type"] == "application/json", text
        err = json.loads(text)["error"]
        assert (err["type"], err["param"]) == ("invalid_request_error", "stop") and "1024 bytes" in err["message"], err
    r = real_triton.client().chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=2, stop=["x" * 1024],
                                                     **GREEDY)
    assert r.choices[0].finish_reason == "length"


def test_legacy_completions_answer_stream_and_take_several_prompts(real_triton):
    client = real_triton.client()
    c = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, **GREEDY)
    assert c.model == MODEL and c.object == "text_completion" and c.choices[0].text.strip()
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    status, _, body = real_triton.post("/completions", {"model": MODEL, "prompt": "The capital of France is",
                                                   "max_tokens": 6, "stream": True, **GREEDY})
    assert status == 200
    chunks = chunks_of(body)
    assert all(ch["model"] == MODEL and ch["object"] == "text_completion" for ch in chunks)
    assert "".join(streamed_text(ch) for ch in chunks) == c.choices[0].text
    assert_no_leak(body)
    two = client.completions.create(model=MODEL, prompt=["The capital of France is", "One, two,"], max_tokens=6,
                                    **GREEDY)
    assert [ch.index for ch in two.choices] == [0, 1]
    assert two.choices[0].text == c.choices[0].text and two.choices[1].text.strip()
    echoed = client.completions.create(model=MODEL, prompt="One, two,", max_tokens=3, echo=True, **GREEDY)
    assert echoed.choices[0].text.startswith("One, two,") and len(echoed.choices[0].text) > len("One, two,")


def test_n_choices_are_served(real_triton):
    """The sidecar serves `n` as n Triton requests (each its own seed): n choices, each counted."""
    client = real_triton.client()
    r = client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=6, n=2, **GREEDY)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(clean(c.message.content) for c in r.choices)
    # Greedy: the same answer twice.
    assert r.choices[0].message.content == r.choices[1].message.content
    one = client.chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=6, **GREEDY)
    assert r.usage.completion_tokens == 2 * one.usage.completion_tokens
    assert r.usage.prompt_tokens == one.usage.prompt_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_a_context_overflow_is_a_400_in_openais_envelope(real_triton, stream):
    """Longer than the model's 2048-token context: Triton refuses it before any token, so even a
    streaming client gets the HTTP error, not a 200."""
    long = [{"role": "user", "content": "word " * 3000}]
    status, headers, body = real_triton.post("/chat/completions", {"model": MODEL, "messages": long, "max_tokens": 4,
                                                              "stream": stream})
    assert status == 400 and headers["content-type"] == "application/json", body
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == "context_length_exceeded" and err["type"] == "invalid_request_error"
    assert "maximum model length of 2048" in err["message"]
    assert_no_leak(body)
    with pytest.raises(openai.BadRequestError) as e:
        real_triton.client().chat.completions.create(model=MODEL, messages=long, max_tokens=4, stream=stream)
    assert e.value.code == "context_length_exceeded"


def test_a_client_leaving_mid_stream_stops_generation(real_triton):
    """The client hangs up after three chunks of a long answer: the model sees the request
    cancelled and stops (its log says after how many tokens), and answers the next one at once."""
    before = real_triton.triton_log().count("request cancelled after")
    body = {"model": MODEL, "messages": STORY, "max_tokens": 400, "stream": True, **GREEDY}
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", real_triton.base + "/chat/completions", json=body,
                         headers={"authorization": "Bearer sk-test"}) as r:
            assert r.status_code == 200
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data:")
                if seen == 3:
                    break
    deadline = time.monotonic() + 20
    while (log := real_triton.triton_log()).count("request cancelled after") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled = [line for line in log.splitlines() if "request cancelled after" in line][before:]
    assert cancelled, "the model never saw the request cancelled"
    tokens = int(cancelled[0].split("request cancelled after ")[1].split()[0])
    assert 3 <= tokens < 100, cancelled[0]
    started = time.monotonic()
    r = real_triton.client().chat.completions.create(model=MODEL, messages=COLOUR, max_tokens=6, **GREEDY)
    assert r.model == MODEL and clean(r.choices[0].message.content)
    assert time.monotonic() - started < 15


# The model's text handling on its own (no Triton: its utilities module is stubbed for the import).

@pytest.fixture(scope="module")
def model_text():
    """`Text` of tests/triton/models/llama_chat/1/model.py."""
    utils = types.ModuleType("triton_python_backend_utils")
    utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
    path = ROOT / "tests" / "triton" / "models" / "llama_chat" / "1" / "model.py"
    spec = importlib.util.spec_from_file_location("llama_chat_model", path)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(sys.modules, {"triton_python_backend_utils": utils}):
        spec.loader.exec_module(module)
    return module.Text


def cut_at_first_stop(text, stops, keep):
    """What a stop string leaves of `text`, by definition: the text up to where a stop string
    first ends (the longest, of those ending there), with or without it."""
    for end in range(1, len(text) + 1):
        ended = [s for s in stops if text[:end].endswith(s)]
        if ended:
            return (text[:end] if keep else text[:end - max(map(len, ended))]), True
    return text, False


def run_text(Text, pieces, stops, keep=False, early=0):
    """Feeds `pieces` as successive tokens; the deltas, and whether a stop string ended it."""
    text, out, fed = Text(stops, keep), [], b""
    for i, piece in enumerate(pieces):
        fed += piece.encode()
        out.append(text.push(fed, check_stop=i >= early))
        if text.stopped:
            break
    out.append(text.finish())
    return out, text.stopped


def test_the_models_stop_strings_cut_where_they_first_end(model_text):
    assert run_text(model_text, ["Hello", " wor", "ld!"], ["wor"]) == (["Hello", " ", ""], True)
    assert run_text(model_text, ["Hello", " wor", "ld!"], ["wor"], keep=True) == (["Hello", " wor", ""], True)
    # A possible start of a stop string is held back until it is known not to be one.
    assert run_text(model_text, ["a", "a", "c"], ["aab"]) == (["", "", "aac", ""], False)
    assert run_text(model_text, ["aa", "ab", "z"], ["aab"]) == (["", "a", ""], True)
    # Two ending at once: the longer is cut; one ending first wins over a longer one ending later.
    assert run_text(model_text, ["xabcd"], ["bcd", "abcd"]) == (["x", ""], True)
    assert run_text(model_text, ["xabcd"], ["bc", "abcd"]) == (["xa", ""], True)
    # Before min_tokens a stop string ends nothing; one that ends after it does.
    assert run_text(model_text, ["ab", "ab", "ab"], ["ab"], early=2) == (["ab", "ab", "", ""], True)
    assert run_text(model_text, ["x", "a", "b"], ["ab"], early=2) == (["x", "", "", ""], True)


def test_the_models_stop_strings_match_their_definition_on_random_text(model_text):
    rng = random.Random(20)
    for _ in range(3000):
        text = "".join(rng.choice("ab") for _ in range(rng.randint(0, 14)))
        stops = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 3))]
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(1, 4))))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        keep = rng.random() < 0.3
        out, stopped = run_text(model_text, pieces, stops, keep)
        assert ("".join(out), stopped) == cut_at_first_stop(text, stops, keep), (pieces, stops, keep, out)


def test_a_long_stop_string_costs_its_length_once_not_per_token(model_text):
    """Four stop strings of 300,000 characters, 64 tokens that keep matching their start: the
    quadratic check took seconds per token here; this takes well under a second in all."""
    stops = ["x" * 299_999 + "y", "xy" * 150_000, "x" * 300_000 + "z", "yx" * 150_000]
    started = time.monotonic()
    out, stopped = run_text(model_text, ["xxx"] * 64, stops)
    assert time.monotonic() - started < 2.0
    assert (out, stopped) == ([""] * 64 + ["x" * 192], False)
