"""Models discovered from the backends (`[discovery]`), in real Envoy with two workers: the
filter's timer asks the backend behind the pass-through pattern `hosted-*` for its models, and the
openai SDK's `models.list()` shows those the pattern serves, under the key's allow-list, with the
backend's `created` and `owned_by`. One worker fetches per interval, with the backend's key. A
backend that fails (503) or cannot be reached is marked in `/router/health`, and its models
vanish after the grace period and come back when it recovers. No answer names the backend's URL,
key or configured model names.

The backend is `examples/demo_backend.py`: `--models` sets its list, `PUT /__models` changes it or
makes it fail."""

import json
import os
import signal
import time
import urllib.error
import urllib.request

import openai
import pytest

from stack import Stack, free_port

HOSTED_KEY = "sk-hosted-discovery-secret"
SECRET_MODEL = "acme-secret-chat-7b"
ADMIN_KEY = "sk-ops"

# A backend name the configuration hides behind a client-visible name (`private`).
HIDDEN_MODEL = "hosted-internal-9"

# The backend's list: two names the pattern serves (one with an owner, one without), one it does
# not serve, one a more specific pattern takes, the hidden one, and an entry the filter must drop.
MODELS = ["hosted-mini:1700000001:acme", "hosted-large:1700000002", "other-model:1700000003:acme",
          "hosted-fixed-1", HIDDEN_MODEL + ":1700000004:acme", "hosted-\u0007bell"]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.hosted]
kind = "openai"
url = "http://127.0.0.1:{hosted}/openai/v1"
api_key_env = "AIROUTER_TEST_HOSTED_KEY"

[[models]]
name = "chat"
apis = ["chat"]
target = {{ backend = "hosted", model = "{secret}" }}

[[models]]
name = "hosted-*"
apis = ["chat"]
target = {{ backend = "hosted" }}

[[models]]
name = "private"
apis = ["chat"]
target = {{ backend = "hosted", model = "{hidden}" }}

[[models]]
name = "hosted-fixed*"
apis = ["chat"]
target = {{ backend = "hosted", model = "{secret}" }}

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "narrow"
key = "sk-narrow"
models = ["chat", "hosted-mini"]

[[admin_keys]]
name = "ops"
key = "{admin_key}"

[discovery]
interval_ms = 1000
timeout_ms = 500
grace_ms = 3000
"""

# The interval's jitter and the timer's period (500 ms) put two fetches 0.9 to 1.6 s apart.
GRACE_S = 3.0


class Disc:
    def __init__(self, stack, port, hosted_port):
        self.stack = stack
        self.base = "http://127.0.0.1:%d" % port
        self.hosted_port = hosted_port
        self.hosted = "http://127.0.0.1:%d" % hosted_port

    def client(self, key="sk-test"):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=10)

    def ids(self, key="sk-test"):
        return [m.id for m in self.client(key).models.list().data]

    def get_raw(self, path, key):
        req = urllib.request.Request(self.base + path, headers={"authorization": "Bearer " + key})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def health(self):
        status, body = self.get_raw("/router/health", ADMIN_KEY)
        assert status == 200, body
        return json.loads(body)

    def set_models(self, answer):
        body = json.dumps(answer).encode()
        req = urllib.request.Request(self.hosted + "/__models", data=body, method="PUT",
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    def backend_requests(self):
        with urllib.request.urlopen(self.hosted + "/__requests", timeout=5) as r:
            return json.loads(r.read())

    def clear_backend(self):
        req = urllib.request.Request(self.hosted + "/__requests", method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()

    def start_backend(self):
        self.stack.start_backend("hosted", self.hosted_port, "/openai/v1", api_key=HOSTED_KEY, record=True,
                                 models=MODELS)

    def stop_backend(self):
        for name, proc, _ in self.stack.procs:
            if name == "hosted" and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)


def wait_for(what, check, timeout=12.0):
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    work = tmp_path_factory.mktemp("discovery")
    stack = Stack(work)
    port, admin, hosted = free_port(), free_port(), free_port()
    d = Disc(stack, port, hosted)
    try:
        d.start_backend()
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, hosted=hosted, secret=SECRET_MODEL,
                                        hidden=HIDDEN_MODEL, admin_key=ADMIN_KEY))
        stack.start_envoy(config, {"AIROUTER_TEST_HOSTED_KEY": HOSTED_KEY})
        wait_for("the first fetch", lambda: "hosted-mini" in d.ids())
        yield d
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.fixture(autouse=True)
def backend_listing(disc):
    """Each test starts and ends with the backend up and its models listed."""
    yield
    if not any(name == "hosted" and proc.poll() is None for name, proc, _ in disc.stack.procs):
        disc.start_backend()
    disc.set_models({"data": [entry(m) for m in MODELS]})
    wait_for("the models back", lambda: disc.ids() == ["chat", "private", "hosted-large", "hosted-mini"])


def entry(spec):
    """A model list entry from `id[:created[:owned_by]]`, as `--models` takes it."""
    model_id, created, owned_by = (spec.split(":") + ["", ""])[:3]
    out = {"id": model_id}
    if created:
        out["created"] = int(created)
    if owned_by:
        out["owned_by"] = owned_by
    return out


def test_the_sdk_lists_the_models_the_pattern_serves(disc):
    models = disc.client().models.list().data
    # Configured names first, then the discovered ones sorted: `other-model` is not the
    # pattern's, `hosted-fixed-1` belongs to a more specific pattern, the hidden name stays
    # hidden, the bell is not a name.
    assert [m.id for m in models] == ["chat", "private", "hosted-large", "hosted-mini"]
    by_id = {m.id: m for m in models}
    assert (by_id["hosted-mini"].created, by_id["hosted-mini"].owned_by) == (1700000001, "acme")
    assert (by_id["hosted-large"].created, by_id["hosted-large"].owned_by) == (1700000002, "airouter")
    one = disc.client().models.retrieve("hosted-mini")
    assert (one.id, one.created, one.owned_by) == ("hosted-mini", 1700000001, "acme")
    # The name the list offers is one the router serves.
    chat = disc.client().chat.completions.create(model="hosted-mini", messages=[{"role": "user", "content": "hi"}])
    assert chat.model == "hosted-mini"


def test_the_allow_list_applies(disc):
    assert disc.ids("sk-narrow") == ["chat", "hosted-mini"]
    with pytest.raises(openai.NotFoundError):
        disc.client("sk-narrow").models.retrieve("hosted-large")


def test_one_worker_fetches_with_the_backends_key(disc):
    disc.clear_backend()
    time.sleep(5.0)
    fetches = [r for r in disc.backend_requests() if r["path"] == "/openai/v1/models"]
    # Two workers, one fetch per interval between them (0.9 to 1.6 s apart): 3 to 6 in 5 s.
    assert 2 <= len(fetches) <= 6, [r["path"] for r in fetches]
    for r in fetches:
        assert r["method"] == "GET"
        assert r["headers"]["authorization"] == "Bearer " + HOSTED_KEY
        assert not any(h.startswith("x-airouter-") for h in r["headers"])


def test_no_answer_names_the_backend(disc):
    texts = [disc.get_raw("/v1/models", "sk-test")[1], disc.get_raw("/v1/models/hosted-mini", "sk-test")[1],
             disc.get_raw("/router/health", ADMIN_KEY)[1]]
    for text in texts:
        for secret in (HOSTED_KEY, SECRET_MODEL, HIDDEN_MODEL, "127.0.0.1", str(disc.hosted_port), "/openai"):
            assert secret.encode() not in text, (secret, text)


def test_a_failing_backend_is_marked_and_its_models_go_after_the_grace_period(disc):
    disc.set_models({"status": 503})
    failed_at = time.monotonic()
    health = wait_for("the failure in /router/health",
                      lambda: (lambda h: h if h["discovery"]["hosted"]["state"] == "failing" else None)(disc.health()))
    assert health["discovery"]["hosted"]["last_error"] == "http_503"
    assert health["backends"]["hosted"]["status"] == "degraded"
    assert "model discovery failed (http_503)" in health["backends"]["hosted"]["reason"]
    # Still listed within the grace period after the last success.
    if time.monotonic() - failed_at < GRACE_S - 1.0:
        assert "hosted-mini" in disc.ids()
    wait_for("the models gone", lambda: disc.ids() == ["chat", "private"])
    assert time.monotonic() - failed_at >= GRACE_S - 1.7, "gone before the grace period"
    assert disc.health()["discovery"]["hosted"]["models"] == 0
    # The pattern still serves any name; only the list lost them.
    chat = disc.client().chat.completions.create(model="hosted-mini", messages=[{"role": "user", "content": "x"}])
    assert chat.model == "hosted-mini"


def test_an_unreachable_backend_is_unhealthy_and_comes_back(disc):
    disc.stop_backend()
    health = wait_for("unreachable in /router/health",
                      lambda: (lambda h: h if h["discovery"]["hosted"]["last_error"] == "unreachable"
                               and h["discovery"]["hosted"]["state"] == "failing" else None)(disc.health()))
    assert health["backends"]["hosted"]["status"] == "unhealthy"
    wait_for("the models gone", lambda: disc.ids() == ["chat", "private"])
    disc.start_backend()
    wait_for("the models back", lambda: disc.ids() == ["chat", "private", "hosted-large", "hosted-mini"])
    health = disc.health()
    assert health["discovery"]["hosted"]["state"] == "ok"
    assert health["backends"]["hosted"]["status"] == "healthy"


def test_a_changed_list_is_picked_up(disc):
    disc.set_models({"data": [{"id": "hosted-new", "created": 1800000000, "owned_by": "acme"},
                              {"id": "hosted-mini"}]})
    wait_for("the new list", lambda: disc.ids() == ["chat", "private", "hosted-mini", "hosted-new"])
    mini = disc.client().models.retrieve("hosted-mini")
    assert (mini.created, mini.owned_by) == (0, "airouter"), "the backend no longer says them"
