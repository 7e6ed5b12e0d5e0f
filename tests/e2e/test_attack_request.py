"""Issue 14, the request side, attacked in real Envoy: a backend never reads another model than the
one the filter checked (multipart and JSON read as the backends' parsers read them), client-chosen
model names never grow state, and values from backends (429 hints, usage counts) are bounded.
Each test checks what the client got, what the recording backend received, and that a normal
request still works after it."""

import base64
import io
import json
import time
import urllib.error
import urllib.request

import pytest

from stack import Stack, free_port

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 4194304

[admin]
address = "127.0.0.1"
port = {admin}

[[admin_keys]]
name = "ops"
key = "sk-admin"

[backends.echo]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

# Its own backend, so its cool-downs touch nothing else; the cap is short to watch it end.
[backends.capped]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"
max_cooldown_ms = 1500

[backends.passthrough]
kind = "openai"
url = "http://127.0.0.1:{a}/v1"

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "echo", model = "acme-chat" }}

[[models]]
name = "secret"
apis = ["chat"]
target = {{ backend = "echo", model = "acme-secret" }}

[[models]]
name = "stt"
apis = ["audio.transcriptions"]
target = {{ backend = "echo", model = "acme-whisper" }}

[[models]]
name = "stt-secret"
apis = ["audio.transcriptions"]
target = {{ backend = "echo", model = "acme-whisper-secret" }}

[[models]]
name = "attack-*"
apis = ["chat"]
target = {{ backend = "passthrough" }}

[[models]]
name = "huge"
apis = ["chat"]
target = {{ backend = "echo", model = "attack-huge-usage" }}

{retry_models}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "restricted"
key = "sk-restricted"
models = ["chat", "stt"]

[[keys]]
name = "budgeted"
key = "sk-budgeted"
tokens_per_minute = 1000
"""

# Backend models whose 429s carry absurd hints (see examples/demo_backend.py): unreadable ones
# start no cool-down; readable but huge ones are capped at the backend's max_cooldown_ms.
UNREADABLE = ["attack-retry-inf", "attack-retry-1e300", "attack-retry-negative"]
HUGE = ["attack-retry-huge", "attack-retry-date", "attack-retry-reset"]
RETRY_MODELS = "\n".join(
    '[[models]]\nname = "r-%s"\napis = ["chat"]\ntarget = { backend = "capped", model = "%s" }\n' % (m, m)
    for m in UNREADABLE + HUGE
)

MESSAGES = [{"role": "user", "content": "hi"}]


class Attack:
    def __init__(self, stack, port, admin, a):
        self.stack = stack
        self.base = "http://127.0.0.1:%d" % port
        self.admin = "http://127.0.0.1:%d" % admin
        self.backend = "http://127.0.0.1:%d" % a

    def raw(self, method, path, body=None, headers=None, key="sk-test"):
        """(status, headers with lower-case names, body) of one request, errors included."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"content-type": "application/json"} if data is not None else {}
        hdrs["authorization"] = "Bearer " + key
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def chat(self, body, key="sk-test"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.raw("POST", "/v1/chat/completions", data, key=key)

    def received(self):
        with urllib.request.urlopen(self.backend + "/__requests", timeout=5) as r:
            return json.loads(r.read())

    def clear(self):
        req = urllib.request.Request(self.backend + "/__requests", method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()

    def admin_json(self, path):
        req = urllib.request.Request(self.base + path, headers={"authorization": "Bearer sk-admin"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stat(self, name):
        """An Envoy counter of the filter (`wasmcustom.NAME`), 0 when never bumped."""
        url = self.admin + "/stats?filter=^wasmcustom\\.%s$" % name.replace(".", "\\.")
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == "wasmcustom." + name:
                    return int(value)
        return 0

    def memory(self):
        with urllib.request.urlopen(self.admin + "/memory", timeout=5) as r:
            return int(json.loads(r.read())["allocated"])

    def assert_normal_request_works(self):
        status, _, body = self.chat({"model": "chat", "messages": MESSAGES}, key="sk-restricted")
        assert status == 200, body
        assert json.loads(body)["model"] == "chat"


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    work = tmp_path_factory.mktemp("attack-request")
    stack = Stack(work)
    port, admin, a = free_port(), free_port(), free_port()
    try:
        stack.start_backend("echo", a, "/v1", record=True)
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, a=a, retry_models=RETRY_MODELS))
        stack.start_envoy(config)
        yield Attack(stack, port, admin, a)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def assert_refused(status, body, code=None):
    """A 400 in OpenAI's envelope (with `code`, when given)."""
    assert status == 400, body
    err = json.loads(body)["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    if code is not None:
        assert err["code"] == code, err


def backend_models(attack):
    """The `model` of each JSON request the backend received."""
    return [json.loads(base64.b64decode(r["body_b64"]))["model"] for r in attack.received()]


# -- a backend reads the model the filter checked ----------------------------------------------

def starlette_reads(body, content_type):
    """The form fields python-multipart (Starlette, FastAPI, vLLM) reads, in order."""
    from python_multipart import parse_form

    fields = []
    headers = {"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()}
    parse_form(headers, io.BytesIO(body),
               lambda f: fields.append((f.field_name.decode(), (f.value or b"").decode())),
               lambda f: fields.append((f.field_name.decode(), "<file>")))
    return fields


def form(parts, boundary="B"):
    out = b""
    for p in parts:
        out += b"--" + boundary.encode() + b"\r\n" + p + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


MODEL = b'Content-Disposition: form-data; name="model"\r\n\r\n'
FILE = b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x01\xff'

# Each names `stt` (allowed to sk-restricted) where the filter looks, and `stt-secret` where some
# backend's parser would look.
MULTIPART_ATTACKS = {
    "two model parts (Starlette reads the last)": form([MODEL + b"stt", FILE, MODEL + b"stt-secret"]),
    "two Content-Disposition headers": form([
        b'Content-Disposition: form-data; name="model"\r\nContent-Disposition: form-data; name="x"\r\n\r\nstt',
        b'Content-Disposition: form-data; name="x"\r\nContent-Disposition: form-data; name="model"\r\n\r\nstt-secret',
        FILE]),
    "two name parameters": form([MODEL + b"stt", FILE,
                                 b'Content-Disposition: form-data; name="x"; name="model"\r\n\r\nstt-secret']),
    "upper-case NAME=": form([MODEL + b"stt", FILE, b'Content-Disposition: form-data; NAME="model"\r\n\r\nstt-secret']),
    "RFC 2231 name*=": form([MODEL + b"stt", FILE, b"Content-Disposition: form-data; name*=utf-8''model\r\n\r\nstt-secret"]),
    "continued name*0": form([MODEL + b"stt", FILE, b'Content-Disposition: form-data; name*0="mo"; name*1="del"\r\n\r\nstt-secret']),
    "folded header": form([MODEL + b"stt", FILE, b'Content-Disposition: form-data;\r\n name="model"\r\n\r\nstt-secret']),
    "padded delimiter": b"--B\r\n" + MODEL + b"stt\r\n--B \r\n" + MODEL + b"stt-secret\r\n--B\r\n" + FILE + b"\r\n--B--\r\n",
    "LF-only delimiters": b"--B\n" + b'Content-Disposition: form-data; name="model"\n\nstt-secret\n--B\n' + MODEL + b"stt\r\n--B--\r\n",
    "parts after the close delimiter": b"--B\r\n" + MODEL + b"stt\r\n--B--\r\n--B\r\n" + MODEL + b"stt-secret\r\n--B--\r\n",
    "preamble": b"junk\r\n--B\r\n" + MODEL + b"stt-secret\r\n--B\r\n" + MODEL + b"stt\r\n--B--\r\n",
    "no close delimiter": b"--B\r\n" + MODEL + b"stt\r\n--B\r\n" + FILE,
    "quoted-printable model": form([b'Content-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nstt', FILE]),
    "hidden ; name=": form([b'Content-Disposition: form-data; name="file"; filename="a; name=model; b"\r\n\r\nstt-secret', MODEL + b"stt"]),
}


@pytest.mark.parametrize("case", sorted(MULTIPART_ATTACKS))
def test_multipart_read_differently_is_refused(attack, case):
    body = MULTIPART_ATTACKS[case]
    attack.clear()
    status, _, out = attack.raw("POST", "/v1/audio/transcriptions", body, key="sk-restricted",
                                headers={"content-type": "multipart/form-data; boundary=B"})
    assert_refused(status, out)
    assert attack.received() == [], "a refused form reached the backend"
    # The ones a Starlette backend would have read as `stt-secret`: refused for that reason too.
    attack.assert_normal_request_works()


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=B; boundary=C",
    "multipart/form-data; boundary*=utf-8''B",
    'multipart/form-data; boundary="B\\"C"',
])
def test_content_types_read_differently_are_refused(attack, content_type):
    attack.clear()
    body = form([MODEL + b"stt", FILE])
    status, _, out = attack.raw("POST", "/v1/audio/transcriptions", body, key="sk-restricted",
                                headers={"content-type": content_type})
    assert_refused(status, out)
    assert attack.received() == []


def test_sdk_uploads_reach_the_backend_as_starlette_reads_them(attack):
    """The openai SDK's upload still works, and the backend's parser reads one model: ours."""
    from openai import OpenAI

    attack.clear()
    client = OpenAI(base_url=attack.base + "/v1", api_key="sk-restricted", max_retries=0, timeout=20)
    wav = b"RIFF" + bytes(range(256)) * 40
    result = client.audio.transcriptions.create(model="stt", file=("clip.wav", wav, "audio/wav"),
                                                language="en", prompt="a; name=model")
    assert result.text == "transcribed %d bytes" % len(wav)
    [seen] = attack.received()
    body = base64.b64decode(seen["body_b64"])
    fields = starlette_reads(body, seen["headers"]["content-type"])
    assert [v for k, v in fields if k == "model"] == ["acme-whisper"]
    assert ("file", "<file>") in fields and ("language", "en") in fields


JSON_ATTACKS = [
    b'{"model":"chat","messages":[],"model":"secret"}',
    b'{"model":"chat","messages":[],"MODEL":"secret"}',
    b'{"model":"chat","messages":[],"Model":"secret"}',
    b'{"Model":"secret","model":"chat","messages":[]}',
    b'{"model":"chat","messages":[],"mod\\u0065l":"secret"}',
    b'{"model":"chat","messages":[],"MOD\\u0045L":"secret"}',
    b'{"model":"chat","messages":[],"model\\u0000":"secret"}',
    b'{"model":"chat","messages":[],"mo\\u0001del":"secret"}',
    b'{"mod\\u0065l":"chat","messages":[]}',
]


@pytest.mark.parametrize("body", JSON_ATTACKS, ids=lambda b: b.decode())
def test_json_keys_another_parser_reads_as_model_are_refused(attack, body):
    attack.clear()
    status, _, out = attack.chat(body, key="sk-restricted")
    assert_refused(status, out, "ambiguous_model")
    assert json.loads(out)["error"]["param"] == "model"
    assert attack.received() == []
    attack.assert_normal_request_works()


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"model":"chat","messages":[]}',
    b'{"model":"chat","messages":[]} {"model":"secret"}',
    b'{"model":"chat","messages":[],}',
    b'{"model":"chat","messages":[],"t":NaN}',
    b'{"model":"chat","messages":["\xff"]}',
], ids=["bom", "two-documents", "trailing-comma", "nan", "invalid-utf8"])
def test_json_other_parsers_read_differently_is_refused(attack, body):
    attack.clear()
    status, _, out = attack.chat(body, key="sk-restricted")
    assert_refused(status, out)
    assert attack.received() == []


# -- client-chosen strings never grow state ----------------------------------------------------

@pytest.mark.parametrize("name", [
    "attack-" + "x" * 250,  # 257 bytes
    "attack-" + "x" * (1 << 20),
    "chat\u0000", "chat\n", "chat\r\nx-injected: 1", "chat\u007f", "chat\u0085", "\u0001",
], ids=["257-bytes", "1-MiB", "nul", "lf", "crlf", "del", "c1", "soh"])
def test_long_and_control_char_names_get_400(attack, name):
    attack.clear()
    status, _, out = attack.chat({"model": name, "messages": MESSAGES})
    assert_refused(status, out, "invalid_value")
    assert attack.received() == []
    body = form([b'Content-Disposition: form-data; name="model"\r\n\r\n' + name.encode(), FILE])
    status, _, out = attack.raw("POST", "/v1/audio/transcriptions", body,
                                headers={"content-type": "multipart/form-data; boundary=B"})
    assert_refused(status, out, "invalid_value")
    attack.assert_normal_request_works()


@pytest.mark.parametrize("path", ["/v1/models/chat%0A", "/v1/models/chat%00", "/v1/models/" + "x" * 300])
def test_model_ids_are_bounded_too(attack, path):
    status, _, out = attack.raw("GET", path)
    assert_refused(status, out, "invalid_value")


def test_the_longest_name_still_routes(attack):
    name = "attack-" + "y" * 249  # 256 bytes: a pass-through name the backend answers
    attack.clear()
    status, _, out = attack.chat({"model": name, "messages": MESSAGES})
    # `attack-y...` is no fault model: the demo backend answers it.
    assert status == 200, out
    assert backend_models(attack) == [name]


def test_pass_through_cool_downs_are_kept_per_pattern_not_per_name(attack):
    """Issue 14: 20 requests with 1 MiB names to a pass-through pattern, answered by 429, grew
    Envoy's memory by 20 MiB for good. Now such names are refused, and cool-downs are kept per
    configured target: two names of one pattern share one."""
    attack.clear()
    status, headers, _ = attack.chat({"model": "attack-limit-first", "messages": MESSAGES})
    assert status == 429 and headers.get("retry-after") == "30"
    status, headers, out = attack.chat({"model": "attack-limit-second", "messages": MESSAGES})
    assert status == 429, out
    assert json.loads(out)["error"]["code"] == "rate_limit_exceeded"
    assert backend_models(attack) == ["attack-limit-first"], \
        "the second name's request should have been cooled by the first's 429"
    before = attack.memory()
    for i in range(20):
        status, _, _ = attack.chat({"model": "attack-limit-%d-" % i + "z" * (1 << 20), "messages": MESSAGES})
        assert status == 400
    for i in range(200):
        status, _, _ = attack.chat({"model": "attack-limit-%03d-" % i + "z" * 230, "messages": MESSAGES})
        assert status == 429
    grown = attack.memory() - before
    assert grown < 4 << 20, "Envoy's heap grew by %d bytes" % grown
    attack.assert_normal_request_works()


# -- values from a backend are bounded ---------------------------------------------------------

@pytest.mark.parametrize("model", UNREADABLE)
def test_unreadable_retry_hints_start_no_cool_down(attack, model):
    """Issue 14: `Retry-After: inf` cooled a target down for 584 million years."""
    attack.clear()
    for _ in range(2):
        status, _, _ = attack.chat({"model": "r-" + model, "messages": MESSAGES})
        assert status == 429
    assert backend_models(attack) == [model, model], "the second request should reach the backend"
    attack.assert_normal_request_works()


@pytest.mark.parametrize("model", HUGE)
def test_huge_retry_hints_are_capped(attack, model):
    attack.clear()
    status, _, _ = attack.chat({"model": "r-" + model, "messages": MESSAGES})
    assert status == 429
    health = attack.admin_json("/router/health")["backends"]["capped"]
    assert health["status"] == "degraded", health
    waited = int(health["reason"].split(" for ")[1].split(" ms")[0])
    assert 0 < waited <= 1500, health
    # Cooling: the router answers for the backend, asking for at most the cap.
    status, headers, out = attack.chat({"model": "r-" + model, "messages": MESSAGES})
    assert status == 429 and json.loads(out)["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(headers["retry-after"]) <= 2
    assert backend_models(attack) == [model]
    # After the cap the backend is asked again.
    time.sleep(1.6)
    status, _, _ = attack.chat({"model": "r-" + model, "messages": MESSAGES})
    assert status == 429
    assert backend_models(attack) == [model, model]
    time.sleep(1.6)
    attack.assert_normal_request_works()


def test_huge_usage_is_capped_and_counted(attack):
    """Issue 14: `total_tokens: 18446744073709551615` saturated the stats and would have wrapped
    the token limiter."""
    cap = 100_000_000
    capped_before = attack.stat("airouter_usage_capped")
    status, _, out = attack.chat({"model": "huge", "messages": MESSAGES}, key="sk-budgeted")
    assert status == 200, out
    assert json.loads(out)["model"] == "huge"
    assert attack.stat("airouter_usage_capped") == capped_before + 1
    assert attack.stat("airouter_key_tokens.key.budgeted") == cap
    assert attack.stat("airouter_model_tokens.model.huge") == cap
    # Charged the cap, not wrapped around to a small number: the key's budget is spent.
    status, _, out = attack.chat({"model": "chat", "messages": MESSAGES}, key="sk-budgeted")
    assert status == 429, out
    # Streamed usage is bounded the same way.
    status, _, out = attack.chat({"model": "huge", "messages": MESSAGES, "stream": True,
                                  "stream_options": {"include_usage": True}})
    assert status == 200 and b"[DONE]" in out
    assert attack.stat("airouter_usage_capped") == capped_before + 2
    assert attack.stat("airouter_model_tokens.model.huge") == 2 * cap
    attack.assert_normal_request_works()
