"""Classifier routing (`[[routers]]`, issue 16) in real Envoy with the release filter, the openai
SDK as the client.

A scripted upstream (breaker/scripted_upstream.py) plays every remote service: the classifier
(a chat model whose answer each test scripts), a Responses API with search (likewise), and the
route models (echo models that record what they were sent). A test scripts one request by a
marker in its message (`case-<hex>`, made by `case(...)`): the fakes look the marker up in what
they receive and answer as scripted (a reply, a status, a delay). Which route served a request is
read from what the route models received, so each assertion is about what really crossed Envoy.

Two routers: `ai-router` (SIMPLE, the default, with a system prompt file in Asia/Kolkata time
merged into the client's; MODERATE; COMPLEX on a keyed "cloud" backend with a max_tokens floor;
ENRICH through the Responses API; FLAKY on a dead backend and BUSY on a backend answering 429,
both falling back to MODERATE; SPARE, a failover model whose first target is dead; PATTERN, a
name a pattern model serves; a META rule for Open WebUI's `### Task:` prompts) and
`ai-router-down`, whose classifier's backend refuses connections. About 15 s.
"""

import datetime
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from zoneinfo import ZoneInfo

import openai
import pytest

from breaker.scripted_upstream import ScriptedUpstream, json_response, sse
from raw_clients import h1_chunked, h2_request
from stack import Stack, free_port

CLF, CLF_DEAD, SEARCH = "clf-secret-0.6b", "clf-dead-secret", "search-secret-fast"
LOCAL, CLOUD, FLAKY, BUSY = "local-secret-8b", "cloud-secret-70b", "flaky-secret-3b", "busy-secret-1b"
SPARE, GONE, PATTERN = "spare-secret-1b", "gone-secret-1b", "pt-secret-big"
LIMITED = "limited-secret-2b"
CLOUD_KEY = "sk-cloud-backend-5ecret"
SEARCH_KEY = "sk-search-backend-5ecret"
# Names the client must never see: backend model names, the routes' configured models, the
# backends' names (`bk-...`, also in cluster names) and their keys.
SECRETS = [CLF, CLF_DEAD, SEARCH, LOCAL, CLOUD, FLAKY, BUSY, SPARE, GONE, PATTERN, LIMITED, "rt-", "pt-", "bk-", CLOUD_KEY,
           SEARCH_KEY]
BUDGET_TOKENS = 64  # the classifier sees 256 bytes of turn text
SIMPLE_ZONE = "Asia/Kolkata"
MODERATE_ZONE = "America/New_York"

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.bk-fake]
kind = "openai"
url = "http://127.0.0.1:{up}/v1"
timeout_ms = 8000

[backends.bk-cloud]
kind = "openai"
url = "http://127.0.0.1:{up}/cloud/v1"
api_key = "{cloud_key}"
timeout_ms = 8000

[backends.bk-search]
kind = "openai"
url = "http://127.0.0.1:{up}/search/v1"
api_key = "{search_key}"

[backends.bk-busy]
kind = "openai"
url = "http://127.0.0.1:{up}/busy/v1"

[backends.bk-limited]
kind = "openai"
url = "http://127.0.0.1:{up}/limited/v1"
rate_limit = {{ requests = 1, window_ms = 60000 }}

[backends.bk-dead-route]
kind = "openai"
url = "http://127.0.0.1:{dead_route}/v1"
connect_timeout_ms = 500

[backends.bk-dead-spare]
kind = "openai"
url = "http://127.0.0.1:{dead_spare}/v1"
connect_timeout_ms = 500

[backends.bk-dead-clf]
kind = "openai"
url = "http://127.0.0.1:{dead_clf}/v1"
connect_timeout_ms = 500

[[models]]
name = "rt-classifier"
apis = ["chat"]
target = {{ backend = "bk-fake", model = "{clf}" }}

[[models]]
name = "rt-dead-classifier"
apis = ["chat"]
target = {{ backend = "bk-dead-clf", model = "{clf_dead}" }}

[[models]]
name = "rt-search"
apis = ["responses"]
target = {{ backend = "bk-search", model = "{search}" }}

[[models]]
name = "rt-local-chat"
apis = ["chat", "completions"]
target = {{ backend = "bk-fake", model = "{local}" }}

[[models]]
name = "rt-cloud-chat"
apis = ["chat"]
target = {{ backend = "bk-cloud", model = "{cloud}" }}

[[models]]
name = "rt-flaky-chat"
apis = ["chat"]
target = {{ backend = "bk-dead-route", model = "{flaky}" }}

[[models]]
name = "rt-busy-chat"
apis = ["chat"]
target = {{ backend = "bk-busy", model = "{busy}" }}

# Envoy's failover: the first target refuses connections, the second serves.
[[models]]
name = "rt-spare-chat"
apis = ["chat"]
targets = [{{ backend = "bk-dead-spare", model = "{gone}" }}, {{ backend = "bk-fake", model = "{spare}" }}]

# A pattern: its backend is sent the name asked for.
[[models]]
name = "pt-*"
apis = ["chat"]
target = {{ backend = "bk-fake" }}

[[routers]]
name = "ai-router"
apis = ["chat", "completions"]
default_route = "SIMPLE"

[routers.classifier]
model = "rt-classifier"
prompt_file = "prompts/classify.md"
timeout_ms = 1000
context_budget_tokens = {budget}
max_tokens = 200
min_confidence = 0.5

[[routers.routes]]
label = "SIMPLE"
model = "rt-local-chat"
system_prompt_file = "prompts/simple.md"
system_prompt_mode = "merge"
time_zone = "{simple_zone}"

[[routers.routes]]
label = "MODERATE"
model = "rt-local-chat"
system_prompt = "You are the moderate route."
time_zone = "{moderate_zone}"
set = {{ temperature = 0.3 }}

[[routers.routes]]
label = "COMPLEX"
model = "rt-cloud-chat"
fallback = ["MODERATE"]
max_tokens_floor = 2048

[[routers.routes]]
label = "ENRICH"
model = "rt-local-chat"
enrich = {{ model = "rt-search", tools = ["web_search"], prompt = "Search for it.", template = "SEARCH CONTEXT: {{{{answer}}}}", timeout_ms = 1000 }}

[[routers.routes]]
label = "FLAKY"
model = "rt-flaky-chat"
fallback = ["MODERATE"]

[[routers.routes]]
label = "BUSY"
model = "rt-busy-chat"
fallback = ["MODERATE"]

[[routers.routes]]
label = "SPARE"
model = "rt-spare-chat"

[[routers.routes]]
label = "PATTERN"
model = "{pattern}"

[[routers.meta]]
route = "MODERATE"
single_user_message = true
contains_any = ["### Task:"]

[[routers]]
name = "ai-router-down"
default_route = "SIMPLE"

[routers.classifier]
model = "rt-dead-classifier"
prompt = "Answer one of {{{{labels}}}}."

[[routers.routes]]
label = "SIMPLE"
model = "rt-local-chat"
system_prompt = "You are the simple route."

[[routers.routes]]
label = "COMPLEX"
model = "rt-cloud-chat"

# A router whose one route is at its backend's request limit after one request.
[[models]]
name = "rt-limited-chat"
apis = ["chat"]
target = {{ backend = "bk-limited", model = "{limited}" }}

[[routers]]
name = "ai-router-limited"
default_route = "ONLY"

[routers.classifier]
model = "rt-classifier"
prompt = "Answer {{{{labels}}}}."

[[routers.routes]]
label = "ONLY"
model = "rt-limited-chat"

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "router-only"
key = "sk-router"
models = ["ai-router"]

[[keys]]
name = "no-router"
key = "sk-norouter"
models = ["rt-local-chat"]

[[keys]]
name = "budgeted"
key = "sk-budget"
tokens_per_minute = 1000000

[[admin_keys]]
name = "ops"
key = "sk-admin"
"""

CLASSIFY_PROMPT = "Route the request. Answer with one of {{labels}} and nothing else.\n"
SIMPLE_PROMPT = "You are the simple route.\nIt is {{datetime}}.\n"


# -- the fakes ------------------------------------------------------------------------------------

CASES = {}
CASE_RE = re.compile(rb"case-([0-9a-f]{12})")


def case(classifier="SIMPLE", enrich=None, route=None):
    """A marker scripting the fakes for the request whose message carries it. `classifier`: the
    classifier's answer text, or a dict with `status`, `body` (raw bytes) and/or `sleep`;
    `enrich`: the Responses API's (`answer`, `status`, `sleep`); `route`: the route model's
    (`status`)."""
    cid = uuid.uuid4().hex[:12]
    CASES[cid] = {"classifier": classifier, "enrich": enrich or {}, "route": route or {}}
    return "case-" + cid


def case_of(req):
    m = CASE_RE.search(req["body"])
    return CASES.get(m.group(1).decode(), {}) if m else {}


def fake_classifier(req):
    script = case_of(req).get("classifier", "SIMPLE")
    if isinstance(script, str):
        script = {"content": script}
    out = []
    if script.get("sleep"):
        out.append(script["sleep"])
    if "body" in script:
        out.append(json_response(script.get("status", 200), script["body"]))
    else:
        reply = {"id": "chatcmpl-c", "object": "chat.completion", "created": 0, "model": CLF,
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": script.get("content", "")},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}}
        out.append(json_response(script.get("status", 200), reply))
    return out


def fake_search(req):
    script = case_of(req).get("enrich", {})
    out = [script["sleep"]] if script.get("sleep") else []
    if script.get("status"):
        out.append(json_response(script["status"], {"error": {"message": "search %s failed" % SEARCH}}))
        return out
    answer = script.get("answer", "The sky over Kolkata is green today.")
    out.append(json_response(200, {
        "id": "resp_1", "object": "response", "status": "completed", "model": SEARCH,
        "output": [{"type": "web_search_call", "id": "ws_1", "status": "completed"},
                   {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}]}],
        "usage": {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}}))
    return out


def last_user(messages):
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def fake_chat_model(name):
    """A route model: echoes the last user message (streamed in several chunks when asked),
    naming itself in every JSON body, every chunk and in headers a backend would send."""

    def answer(req):
        body = json.loads(req["body"])
        script = case_of(req).get("route", {})
        named = [("openai-model", name), ("x-served-by", "bk-fake " + name)]
        if script.get("status"):
            err = {"error": {"message": "The model `%s` cannot do that." % name, "type": "invalid_request_error",
                             "param": None, "code": "bad_thing"}}
            return json_response(script["status"], err, named)
        if req["path"].endswith("/v1/completions"):
            choice = {"index": 0, "text": " echo: " + str(body.get("prompt")), "finish_reason": "stop", "logprobs": None}
            return json_response(200, {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": name,
                                       "choices": [choice],
                                       "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}, named)
        text = "echo: " + last_user(body.get("messages", []))
        if body.get("stream"):
            chunk = lambda delta, finish=None: {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": name,  # noqa: E731
                                                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            words = text.split(" ")
            events = [chunk({"role": "assistant", "content": ""})]
            events += [chunk({"content": (" " if i else "") + w}) for i, w in enumerate(words)]
            events.append(chunk({}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": name, "choices": [],
                               "usage": {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}})
            return sse(events + [b"[DONE]"], headers=named)
        return json_response(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": name,
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                "finish_reason": "stop"}],
                                   "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}, named)

    return answer


def fake_busy(req):
    err = {"error": {"message": "Rate limit reached for %s." % BUSY, "type": "requests", "param": None,
                     "code": "rate_limit_exceeded"}}
    return json_response(429, err, [("retry-after", "30")])


# -- the stack ------------------------------------------------------------------------------------

class Rtr:
    def __init__(self, stack, port, up):
        self.stack = stack
        self.port = port
        self.base = "http://127.0.0.1:%d" % port
        self.up = up

    def client(self, key="sk-test", timeout=20):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=timeout)

    def raw(self, path, body, key="sk-test", method="POST"):
        """(status, headers as (name, value) pairs, body bytes) of one request, errors included."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        headers = {"authorization": "Bearer " + key}
        if data is not None:
            headers["content-type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, list(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, list(e.headers.items()), e.read()

    def received(self, marker, model=None):
        """What the upstream received carrying `marker` (as parsed JSON with `_path`/`_headers`),
        optionally only what was sent to backend model `model`."""
        out = []
        for r in list(self.up.requests):
            if marker.encode() not in r["body"]:
                continue
            body = json.loads(r["body"])
            if model is None or body.get("model") == model:
                out.append(dict(body, _path=r["path"], _headers=dict(r["headers"])))
        return out

    def served(self, marker):
        """The route that served the request carrying `marker`: the one request a route model got."""
        got = [r for r in self.received(marker) if r.get("model") in (LOCAL, CLOUD, BUSY, FLAKY, SPARE, PATTERN, LIMITED)]
        assert len(got) == 1, "expected one request to a route model, got %r" % got
        return got[0]

    def classifier_saw(self, marker):
        asked = self.received(marker, CLF)
        assert len(asked) == 1, asked
        return asked[0]

    def alive(self):
        return all(p.poll() is None for n, p, _ in self.stack.procs if n == "envoy")


def route_of(sent):
    """Which route's transforms the request a route model got shows."""
    if sent["model"] == CLOUD:
        return "COMPLEX"
    if sent["model"] in (BUSY, SPARE, PATTERN):
        return {BUSY: "BUSY", SPARE: "SPARE", PATTERN: "PATTERN"}[sent["model"]]
    messages = sent.get("messages") or []
    system = " ".join(m["content"] for m in messages if m.get("role") == "system" and isinstance(m.get("content"), str))
    if "You are the simple route." in system:
        return "SIMPLE"
    if "You are the moderate route." in system:
        return "MODERATE"
    return "ENRICH"


@pytest.fixture(scope="module")
def rtr(tmp_path_factory):
    work = tmp_path_factory.mktemp("router")
    (work / "prompts").mkdir()
    (work / "prompts" / "classify.md").write_text(CLASSIFY_PROMPT)
    (work / "prompts" / "simple.md").write_text(SIMPLE_PROMPT)
    port, admin, up_port, dead_route, dead_clf, dead_spare = (free_port() for _ in range(6))
    up = ScriptedUpstream(up_port).start()
    up.script.update({CLF: fake_classifier, SEARCH: fake_search, BUSY: fake_busy,
                      LOCAL: fake_chat_model(LOCAL), CLOUD: fake_chat_model(CLOUD), SPARE: fake_chat_model(SPARE),
                      PATTERN: fake_chat_model(PATTERN), LIMITED: fake_chat_model(LIMITED)})
    stack = Stack(work)
    try:
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(
            port=port, admin=admin, up=up_port, dead_route=dead_route, dead_clf=dead_clf, dead_spare=dead_spare,
            gone=GONE, spare=SPARE, pattern=PATTERN, limited=LIMITED, clf=CLF, clf_dead=CLF_DEAD,
            search=SEARCH, local=LOCAL, cloud=CLOUD, flaky=FLAKY, busy=BUSY, cloud_key=CLOUD_KEY, search_key=SEARCH_KEY,
            budget=BUDGET_TOKENS, simple_zone=SIMPLE_ZONE, moderate_zone=MODERATE_ZONE))
        stack.start_envoy(config)
        yield Rtr(stack, port, up)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        up.stop()


def assert_no_leak(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, "leaked %s in %r" % (leaked, text[:1500])


def assert_openai_error(status, body):
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"message", "type", "param", "code"}, (status, doc)
    assert_no_leak(body)
    return doc["error"]


def ask(rtr, text, key="sk-test", **kw):
    return rtr.client(key).chat.completions.create(model="ai-router", messages=[{"role": "user", "content": text}], **kw)


def sse_events(body):
    """The `data:` payloads of an SSE body; asserts it is well formed and ends with one [DONE]."""
    text = body.decode()
    assert text.endswith("\n\n"), text[-200:]
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events), events
    payloads = [e[len("data: "):] for e in events]
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads
    return [json.loads(p) for p in payloads[:-1]]


# -- labels ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("label", ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH", "SPARE", "PATTERN"])
def test_each_label_picks_its_route_under_the_virtual_name(rtr, label):
    marker = case(classifier=label)
    r = rtr.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=[{"role": "user", "content": "hello " + marker}])
    answer = r.parse()
    assert answer.model == "ai-router" and answer.choices[0].message.content == "echo: hello " + marker
    sent = rtr.served(marker)
    assert route_of(sent) == label
    assert_no_leak(r.http_response.content)
    assert_no_leak(r.http_response.headers.items())
    asked = rtr.classifier_saw(marker)
    assert asked["model"] == CLF and asked["_path"] == "/v1/chat/completions"
    assert asked["temperature"] == 0 and asked["stream"] is False and asked["max_tokens"] == 200
    system, user = asked["messages"]
    assert system == {"role": "system", "content": CLASSIFY_PROMPT.rstrip("\n").replace(
        "{{labels}}", "SIMPLE, MODERATE, COMPLEX, ENRICH, FLAKY, BUSY, SPARE, PATTERN")}
    assert user["role"] == "user" and user["content"].endswith("hello " + marker)
    assert "authorization" not in asked["_headers"], "the client's key never rides a call-out"


@pytest.mark.parametrize("reply, label", [
    ("<think>It could be SIMPLE.</think>\nCOMPLEX", "COMPLEX"),
    ("<think>\nSIMPLE? no.\n</think>\n\n**Moderate**.", "MODERATE"),
    ("leftover reasoning, COMPLEX perhaps </think> MODERATE", "MODERATE"),
    ("<think>unclosed, COMPLEX", "SIMPLE"),
    ('```json\n{"label": "complex", "confidence": 0.9}\n```', "COMPLEX"),
    ('{"label": "COMPLEX", "confidence": 0.2}', "SIMPLE"),
    ('{"label": "COMPLEX"}', "COMPLEX"),
], ids=["think-then-label", "think-then-emphasis", "lone-close", "unclosed", "json-fence", "json-unsure",
        "json-no-confidence"])
def test_think_blocks_and_json_answers(rtr, reply, label):
    marker = case(classifier=reply)
    assert ask(rtr, "x " + marker).model == "ai-router"
    assert route_of(rtr.served(marker)) == label


@pytest.mark.parametrize("script", [
    "COMPLEX or MODERATE",
    "",
    "I would say this is a COMPLEX request.",
    "NONSENSE",
    "COMPLEX" + " " * 70000,
    {"body": b"COMPLEX"},
    {"body": {"label": "COMPLEX"}},
    {"body": {"choices": []}},
    {"status": 500, "body": {"error": {"message": "COMPLEX"}}},
    {"status": 404, "content": "COMPLEX"},
], ids=["two-labels", "empty", "sentence", "unknown", "over-64k", "not-json", "no-choices", "empty-choices",
        "status-500", "status-404"])
def test_garbage_from_the_classifier_takes_the_default_route(rtr, script):
    marker = case(classifier=script)
    assert ask(rtr, "x " + marker).model == "ai-router"
    assert route_of(rtr.served(marker)) == "SIMPLE"


def test_a_slow_classifier_times_out_into_the_default_route_promptly(rtr):
    marker = case(classifier={"sleep": 4, "content": "COMPLEX"})
    start = time.monotonic()
    answer = ask(rtr, "x " + marker)
    took = time.monotonic() - start
    assert answer.model == "ai-router" and route_of(rtr.served(marker)) == "SIMPLE"
    assert 0.9 < took < 2.5, "the classifier's timeout is 1 s; took %.2f s" % took


def test_a_classifier_that_is_down_takes_the_default_route_promptly(rtr):
    marker = case()
    start = time.monotonic()
    answer = rtr.client().chat.completions.create(model="ai-router-down",
                                                  messages=[{"role": "user", "content": "prove it " + marker}])
    assert time.monotonic() - start < 2.0
    assert answer.model == "ai-router-down" and answer.choices[0].message.content.endswith(marker)
    assert route_of(rtr.served(marker)) == "SIMPLE"


# -- routes that cannot serve ---------------------------------------------------------------------

def admin_health(rtr):
    status, _, body = rtr.raw("/router/health", None, key="sk-admin", method="GET")
    assert status == 200, body
    return json.loads(body)


def test_an_unhealthy_route_is_passed_over_for_its_fallback(rtr):
    first = case(classifier="FLAKY")
    with pytest.raises(openai.APIStatusError) as e:
        ask(rtr, "x " + first)
    assert e.value.status_code in (502, 503)
    assert_openai_error(e.value.status_code, e.value.response.content)
    health = json.dumps(admin_health(rtr))
    assert re.search(r'"bk-dead-route": \{[^}]*"unhealthy"', health), health
    again = case(classifier="FLAKY")
    answer = ask(rtr, "x " + again)
    assert answer.model == "ai-router" and route_of(rtr.served(again)) == "MODERATE"


def test_a_route_cooling_down_after_a_429_is_passed_over(rtr):
    first = case(classifier="BUSY")
    with pytest.raises(openai.RateLimitError) as e:
        ask(rtr, "x " + first)
    assert_openai_error(429, e.value.response.content)
    assert e.value.response.headers.get("retry-after") == "30"
    again = case(classifier="BUSY")
    answer = ask(rtr, "x " + again)
    assert answer.model == "ai-router" and route_of(rtr.served(again)) == "MODERATE"
    assert len([r for r in rtr.up.requests if json.loads(r["body"] or b"{}").get("model") == BUSY]) == 1


def test_a_request_refused_after_the_classifier_answered_is_a_429_in_openais_envelope(rtr):
    """No route can serve (the only one is at its backend's limit): the default route answers as
    any limited model does, a 429 with Retry-After, sent while the request was held for the
    classifier."""
    client = rtr.client()
    first = case(classifier="ONLY")
    answer = client.chat.completions.create(model="ai-router-limited", messages=[{"role": "user", "content": first}])
    assert answer.model == "ai-router-limited" and rtr.served(first)["model"] == LIMITED
    second = case(classifier="ONLY")
    status, headers, body = rtr.raw("/v1/chat/completions", {"model": "ai-router-limited",
                                                              "messages": [{"role": "user", "content": second}]})
    assert status == 429, body
    assert assert_openai_error(status, body)["code"] == "rate_limit_exceeded"
    assert int(dict((k.lower(), v) for k, v in headers)["retry-after"]) > 0
    assert_no_leak(headers)
    assert len(rtr.received(second, CLF)) == 1, "the classifier was asked first"
    assert [r for r in rtr.received(second) if r["model"] == LIMITED] == []
    assert rtr.alive()


# -- META -----------------------------------------------------------------------------------------

def test_an_open_webui_task_prompt_skips_the_classifier(rtr):
    marker = case(classifier="COMPLEX")
    title = "### Task:\nGenerate a concise, 3-5 word title for the chat history.\n### Chat History:\n" + marker
    assert ask(rtr, title).model == "ai-router"
    assert rtr.received(marker, CLF) == [], "no classifier call"
    assert route_of(rtr.served(marker)) == "MODERATE"
    # The rule wants a single user message: a conversation is classified.
    other = case(classifier="COMPLEX")
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "### Task: " + other}]
    rtr.client().chat.completions.create(model="ai-router", messages=messages)
    assert route_of(rtr.served(other)) == "COMPLEX"


# -- ENRICH ---------------------------------------------------------------------------------------

def test_enrichment_is_injected_before_the_last_user_turn(rtr):
    marker = case(classifier="ENRICH", enrich={"answer": "Rust 9.0 shipped yesterday."})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "earlier question"},
                {"role": "assistant", "content": "earlier answer"}, {"role": "user", "content": "news? " + marker}]
    answer = rtr.client().chat.completions.create(model="ai-router", messages=messages)
    assert answer.model == "ai-router" and answer.choices[0].message.content == "echo: news? " + marker
    search = rtr.received(marker, SEARCH)
    assert len(search) == 1
    call = search[0]
    assert call["_path"] == "/search/v1/responses"
    assert call["_headers"]["authorization"] == "Bearer " + SEARCH_KEY
    assert call["tools"] == [{"type": "web_search"}] and call["instructions"] == "Search for it."
    assert call["store"] is False and call["stream"] is False
    assert call["input"][-1] == {"role": "user", "content": "news? " + marker}
    sent = rtr.served(marker)
    assert sent["messages"][:3] == messages[:3]
    assert sent["messages"][3] == {"role": "system", "content": "SEARCH CONTEXT: Rust 9.0 shipped yesterday."}
    assert sent["messages"][4] == messages[3] and len(sent["messages"]) == 5


@pytest.mark.parametrize("script", [{"status": 500}, {"status": 200, "answer": ""}, {"sleep": 3}],
                         ids=["status-500", "no-text", "timeout"])
def test_a_failed_enrichment_serves_the_route_unenriched(rtr, script):
    marker = case(classifier="ENRICH", enrich=script)
    start = time.monotonic()
    answer = ask(rtr, "news? " + marker)
    assert time.monotonic() - start < 2.5, "the enrichment's timeout is 1 s"
    assert answer.model == "ai-router"
    sent = rtr.served(marker)
    assert sent["messages"] == [{"role": "user", "content": "news? " + marker}]
    assert len(rtr.received(marker, SEARCH)) == 1


# -- what the classifier sees ---------------------------------------------------------------------

def history_and_latest(asked):
    text = asked["messages"][1]["content"]
    history, _, latest = text.partition("\n\nLatest user message:\n")
    return history.removeprefix("Conversation so far, oldest first:\n"), latest


def padded(prefix, size, fill):
    assert len(prefix) <= size
    return prefix + fill * (size - len(prefix))


def test_the_context_budget_exactly_at_it_and_one_byte_over(rtr):
    budget = BUDGET_TOKENS * 4
    for older, fits in ((100, True), (101, False)):
        marker = case()
        latest = padded(marker + " ", 56, "z")
        a, b = "a" * older, "b" * (budget - 56 - 100)
        messages = [{"role": "system", "content": "s" * 500}, {"role": "user", "content": a},
                    {"role": "assistant", "content": b}, {"role": "user", "content": latest}]
        rtr.client().chat.completions.create(model="ai-router", messages=messages)
        history, seen_latest = history_and_latest(rtr.classifier_saw(marker))
        assert seen_latest == latest
        if fits:
            assert history == "user: %s\n\nassistant: %s" % (a, b)
        else:
            assert history == "assistant: %s" % b, "the older turn, one byte over, is cut"
        assert "sss" not in history, "system messages are not shown"


def test_a_single_turn_larger_than_the_budget_keeps_its_start_and_end(rtr):
    marker = case()
    latest = marker + " START " + "m" * 2000 + " why does it END?"
    messages = [{"role": "user", "content": "older"}, {"role": "assistant", "content": "reply"},
                {"role": "user", "content": latest}]
    rtr.client().chat.completions.create(model="ai-router", messages=messages)
    history, seen = history_and_latest(rtr.classifier_saw(marker))
    assert history == "(none)"
    head, _, tail = seen.partition("\n…\n")
    assert head.startswith(marker + " START ") and tail.endswith(" why does it END?"), seen
    assert len(seen.encode()) <= BUDGET_TOKENS * 4
    assert rtr.served(marker)["messages"][-1]["content"] == latest, "the route gets the whole turn"


def test_details_blocks_and_images_are_not_shown_to_the_classifier(rtr):
    marker = case()
    messages = [{"role": "assistant", "content": "<details>tool output QQQ</details>visible"},
                {"role": "user", "content": [{"type": "text", "text": "look " + marker},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    rtr.client().chat.completions.create(model="ai-router", messages=messages)
    history, latest = history_and_latest(rtr.classifier_saw(marker))
    assert history == "assistant: visible" and latest == "look " + marker


# -- transforms -----------------------------------------------------------------------------------

def test_the_max_tokens_floor_reaches_the_backend(rtr):
    for extra, want in (({"max_tokens": 10}, {"max_tokens": 2048}),
                        ({"max_completion_tokens": 7}, {"max_completion_tokens": 2048}),
                        ({"max_tokens": 4096}, {"max_tokens": 4096}), ({}, {})):
        marker = case(classifier="COMPLEX")
        ask(rtr, "x " + marker, **extra)
        sent = rtr.served(marker)
        assert {k: sent[k] for k in ("max_tokens", "max_completion_tokens") if k in sent} == want
        assert sent["_path"] == "/cloud/v1/chat/completions"
        assert sent["_headers"]["authorization"] == "Bearer " + CLOUD_KEY


def zone_clock(zone):
    now = datetime.datetime.now(ZoneInfo(zone))
    offset = now.utcoffset()
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return now, "UTC%s%02d:%02d" % (sign, abs(minutes) // 60, abs(minutes) % 60), now.tzname()


def test_the_system_prompt_carries_the_date_and_time_of_a_non_utc_zone(rtr):
    before, offset, abbreviation = zone_clock(SIMPLE_ZONE)
    marker = case(classifier="SIMPLE")
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "date? " + marker}]
    rtr.client().chat.completions.create(model="ai-router", messages=messages)
    after, _, _ = zone_clock(SIMPLE_ZONE)
    sent = rtr.served(marker)
    assert len(sent["messages"]) == 2, "merged into the client's system message"
    system = sent["messages"][0]["content"]
    m = re.fullmatch(r"You are the simple route\.\nIt is (\w+), (\d{4}-\d\d-\d\d) (\d\d:\d\d) (\S+) \((\S+), (UTC[+-]\d\d:\d\d)\)\.\n\nBe terse\.",
                     system)
    assert m, system
    weekday, date, hhmm, abbr, zone, utc = m.groups()
    assert (abbr, zone, utc) == (abbreviation, SIMPLE_ZONE, offset) == ("IST", "Asia/Kolkata", "UTC+05:30")
    assert date in {before.date().isoformat(), after.date().isoformat()}
    assert weekday == datetime.date.fromisoformat(date).strftime("%A")
    shown = datetime.datetime.fromisoformat("%sT%s" % (date, hhmm)).replace(tzinfo=ZoneInfo(zone))
    assert abs((shown - before).total_seconds()) < 180
    # A route without a placeholder gets the date and time appended, here in New York.
    marker = case(classifier="MODERATE")
    ask(rtr, "x " + marker)
    _, ny_offset, ny_abbr = zone_clock(MODERATE_ZONE)
    sent = rtr.served(marker)
    first = sent["messages"][0]
    assert first["role"] == "system" and first["content"].startswith("You are the moderate route.\n")
    assert "Current date and time: " in first["content"]
    assert "%s (%s, %s)" % (ny_abbr, MODERATE_ZONE, ny_offset) in first["content"], first
    assert sent["temperature"] == 0.3


# -- streaming, names, framing --------------------------------------------------------------------

@pytest.mark.parametrize("label", ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH", "SPARE", "PATTERN", "META", "FALLBACK"])
def test_streaming_through_every_route(rtr, label):
    if label == "META":
        marker = case()
        text = "### Task: title this " + marker
    elif label == "FALLBACK":
        marker = case(classifier="BUSY")  # cooling down since its 429 above, or now: both serve
        text = "x " + marker
    else:
        marker = case(classifier=label)
        text = "tell me " + marker
    body = {"model": "ai-router", "stream": True, "messages": [{"role": "user", "content": text}]}
    status, headers, raw = rtr.raw("/v1/chat/completions", body)
    if label == "FALLBACK" and status == 429:
        status, headers, raw = rtr.raw("/v1/chat/completions", body)
    assert status == 200, raw
    assert dict((k.lower(), v) for k, v in headers)["content-type"].startswith("text/event-stream")
    events = sse_events(raw)
    assert len(events) >= 4 and all(e["model"] == "ai-router" for e in events)
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]) == "echo: " + text
    assert_no_leak(raw)
    assert_no_leak(headers)
    # The openai SDK reads the same stream.
    chunks = list(rtr.client().chat.completions.create(
        model="ai-router", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": text}]))
    assert all(c.model == "ai-router" for c in chunks) and chunks[-1].usage.total_tokens > 0


def test_a_budgeted_keys_stream_is_counted_without_showing_the_usage_it_did_not_ask_for(rtr):
    """A key with a token budget: the router asks the route's model for stream usage (to charge
    the key) and removes that chunk before the client sees it, through the router as anywhere."""
    marker = case(classifier="COMPLEX")
    body = {"model": "ai-router", "stream": True, "messages": [{"role": "user", "content": marker}]}
    status, _, raw = rtr.raw("/v1/chat/completions", body, key="sk-budget")
    assert status == 200, raw
    events = sse_events(raw)
    assert events and not any("usage" in e for e in events), events
    assert all(e["model"] == "ai-router" for e in events)
    assert rtr.served(marker)["stream_options"] == {"include_usage": True}


def test_a_route_models_error_is_an_openai_error_under_the_virtual_name(rtr):
    marker = case(classifier="COMPLEX", route={"status": 400})
    status, headers, body = rtr.raw("/v1/chat/completions", {"model": "ai-router",
                                                              "messages": [{"role": "user", "content": marker}]})
    assert status == 400
    err = assert_openai_error(status, body)
    assert "ai-router" in err["message"], err
    assert_no_leak(headers)
    with pytest.raises(openai.BadRequestError) as e:
        ask(rtr, marker)
    assert e.value.code == "bad_thing"


def test_requests_the_router_refuses_are_openai_errors(rtr):
    status, _, body = rtr.raw("/v1/chat/completions", {"model": "ai-router", "messages": "hi"})
    assert status == 400 and assert_openai_error(status, body)["type"] == "invalid_request_error"
    status, _, body = rtr.raw("/v1/chat/completions", {"model": "ai-router", "messages": [{"role": "user", "content": "x"}]},
                              key="sk-wrong")
    assert status == 401 and assert_openai_error(status, body)["code"] == "invalid_api_key"
    status, _, body = rtr.raw("/v1/chat/completions", b'{"model": "ai-router", "messages": [')
    assert status == 400 and assert_openai_error(status, body)


def test_legacy_completions_are_routed_too(rtr):
    marker = case(classifier="MODERATE")
    r = rtr.client().completions.create(model="ai-router", prompt="explain " + marker)
    assert r.model == "ai-router" and r.choices[0].text == " echo: explain " + marker
    sent = rtr.served(marker)
    assert sent["_path"] == "/v1/completions" and sent["prompt"] == "explain " + marker
    assert sent["temperature"] == 0.3, "the route's parameters apply to completions"
    assert rtr.classifier_saw(marker)["messages"][1]["content"].endswith("explain " + marker)


@pytest.mark.parametrize("framing", ["h2-frames", "h2-trailers", "h2-empty-data", "h1-chunked", "h1-chunked-trailers"])
def test_http2_and_chunked_requests_to_the_router(rtr, framing):
    marker = case(classifier="COMPLEX")
    body = json.dumps({"model": "ai-router", "max_tokens": 5, "messages": [{"role": "user", "content": marker}]}).encode()
    frames = [body[:11], body[11:30], body[30:]]
    if framing.startswith("h2"):
        extra = {"h2-trailers": dict(trailers=[("x-trailer", "1")]), "h2-empty-data": dict(end_with_empty_data=True)}
        status, headers, out = h2_request(rtr.port, "/v1/chat/completions", frames, "sk-test", **extra.get(framing, {}))
        assert_no_leak(headers)
    else:
        trailers = ("x-trailer: 1",) if framing.endswith("trailers") else ()
        status, out = h1_chunked(rtr.port, "/v1/chat/completions", frames, "sk-test", trailer_lines=trailers)
    assert status == 200, out
    doc = json.loads(out)
    assert doc["model"] == "ai-router" and doc["choices"][0]["message"]["content"] == "echo: " + marker
    assert_no_leak(out)
    sent = rtr.served(marker)
    assert sent["model"] == CLOUD and sent["max_tokens"] == 2048


def test_the_key_allow_list_names_the_router(rtr):
    marker = case(classifier="COMPLEX")
    answer = ask(rtr, "x " + marker, key="sk-router")
    assert answer.model == "ai-router" and route_of(rtr.served(marker)) == "COMPLEX"
    client = rtr.client("sk-router")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="rt-cloud-chat", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ai-router-down", messages=[{"role": "user", "content": "x"}])
    refused = case(classifier="COMPLEX")
    with pytest.raises(openai.NotFoundError) as e:
        ask(rtr, "x " + refused, key="sk-norouter")
    assert e.value.code == "model_not_found"
    assert_openai_error(404, e.value.response.content)
    assert rtr.received(refused) == [], "neither the classifier nor a route was asked"


def test_the_models_list_shows_the_router_to_keys_allowed_it(rtr):
    assert [m.id for m in rtr.client("sk-router").models.list().data] == ["ai-router"]
    ids = [m.id for m in rtr.client().models.list().data]
    assert "ai-router" in ids and "ai-router-down" in ids
    assert rtr.client("sk-router").models.retrieve("ai-router").id == "ai-router"
    assert "ai-router" not in [m.id for m in rtr.client("sk-norouter").models.list().data]


def test_a_client_that_leaves_while_a_call_out_is_out(rtr):
    """The client hangs up while the classifier (then, on another request, the enrichment) is
    being asked: the call-out's answer has no request to resume, Envoy carries on serving."""
    waits = [case(classifier={"sleep": 0.8, "content": "SIMPLE"}),
             case(classifier="ENRICH", enrich={"sleep": 0.8})]
    for marker in waits:
        body = json.dumps({"model": "ai-router", "messages": [{"role": "user", "content": marker}]}).encode()
        head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
        s = socket.create_connection(("127.0.0.1", rtr.port), timeout=5)
        s.sendall(head + body)
        time.sleep(0.3)
        s.close()
    time.sleep(1.2)
    assert rtr.alive()
    for marker in waits:
        assert [r for r in rtr.received(marker) if r["model"] == LOCAL] == [], "no route asked for a gone client"
    marker = case(classifier="COMPLEX")
    assert ask(rtr, "x " + marker).model == "ai-router"
    log = rtr.stack.envoy_log.read_text(errors="replace")
    assert "panicked" not in log and "[critical]" not in log, log[-3000:]


def test_concurrent_requests_each_get_their_own_route(rtr):
    labels = ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH"] * 4
    markers = [case(classifier=lb) for lb in labels]
    results = {}

    def one(marker, stream):
        client = rtr.client()
        if stream:
            chunks = list(client.chat.completions.create(model="ai-router", stream=True,
                                                         messages=[{"role": "user", "content": marker}]))
            results[marker] = ("".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                               {c.model for c in chunks})
        else:
            r = client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": marker}])
            results[marker] = (r.choices[0].message.content, {r.model})

    threads = [threading.Thread(target=one, args=(m, i % 2 == 0)) for i, m in enumerate(markers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for label, marker in zip(labels, markers):
        assert results[marker] == ("echo: " + marker, {"ai-router"}), (label, results.get(marker))
        assert route_of(rtr.served(marker)) == label
