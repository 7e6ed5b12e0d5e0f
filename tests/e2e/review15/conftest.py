"""Fixtures of the issue-15 review probes: one real Envoy with the release filter in front of
the breaker suite's scripted raw upstream (two backends on it, one failover model across them,
one on a dead port), with plain, restricted, budgeted and admin keys. They probe every path of
the request flow as split in issue 15 (local endpoints, admission, routing to one target and to
a failover chain, responses, settlement) with every request framing."""

import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2] / "examples"))
from stack import Stack, free_port  # noqa: E402
from breaker.conftest import Brk, assert_openai_error  # noqa: E402,F401
from breaker.scripted_upstream import ScriptedUpstream  # noqa: E402

ONE = "zeta-one-secret"
FIRST = "zeta-fo-first"
SECOND = "zeta-fo-second"
GHOST = "zeta-ghost"
BACKEND_KEY = "sk-review-backend-5ecret"
BACKEND_NAMES = [ONE, FIRST, SECOND, GHOST, "zeta-emb-secret", "zeta-cmpl-secret"]
BUDGET_KEYS = ["sk-budget-%d" % i for i in range(26)]

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}
max_body_bytes = 262144

[admin]
address = "127.0.0.1"
port = {admin}

[[admin_keys]]
name = "ops"
key = "sk-admin"

[backends.one]
kind = "openai"
url = "http://127.0.0.1:{s}/v1"
timeout_ms = 5000

[backends.two]
kind = "openai"
url = "http://127.0.0.1:{s}/two/v1"
api_key = "{backend_key}"
timeout_ms = 5000

[backends.dead]
kind = "openai"
url = "http://127.0.0.1:{dead}/v1"
connect_timeout_ms = 300

[[models]]
name = "chat"
apis = ["chat", "completions"]
target = {{ backend = "one", model = "{one}" }}

[[models]]
name = "emb"
apis = ["embeddings"]
target = {{ backend = "one", model = "zeta-emb-secret" }}

[[models]]
name = "fo"
apis = ["chat", "completions", "embeddings"]
targets = [{{ backend = "one", model = "{first}" }}, {{ backend = "two", model = "{second}" }}]

[[models]]
name = "fo-dead"
apis = ["chat"]
targets = [{{ backend = "dead", model = "{ghost}" }}, {{ backend = "two", model = "{second}" }}]

[[keys]]
name = "tester"
key = "sk-test"

[[keys]]
name = "restricted"
key = "sk-restricted"
models = ["chat"]
{budget_keys}
"""


class Review(Brk):
    """The breaker suite's client of one stack, plus the filter's counters."""

    def stat(self, name):
        """An Envoy counter of the filter (`wasmcustom.NAME`), 0 when never bumped."""
        url = self.admin + "/stats?filter=^wasmcustom\\.%s$" % name.replace(".", "\\.")
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == "wasmcustom." + name:
                    return int(value)
        return 0


@pytest.fixture(scope="session")
def rev(tmp_path_factory):
    work = tmp_path_factory.mktemp("review15")
    stack = Stack(work)
    port, admin, s, dead = free_port(), free_port(), free_port(), free_port()
    up = ScriptedUpstream(s).start()
    budget = "".join('\n[[keys]]\nname = "budget%d"\nkey = "%s"\ntokens_per_minute = 100\n' % (i, k)
                     for i, k in enumerate(BUDGET_KEYS))
    try:
        config = work / "airouter.toml"
        config.write_text(CONFIG.format(port=port, admin=admin, s=s, dead=dead, backend_key=BACKEND_KEY,
                                        one=ONE, first=FIRST, second=SECOND, ghost=GHOST, budget_keys=budget))
        stack.start_envoy(config)
        yield Review(stack, port, admin, up)
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        up.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "rev" in item.funcargs:
        report.sections.append(("stack logs", item.funcargs["rev"].stack.logs()))


def leaked(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return [n for n in BACKEND_NAMES + ["zeta", BACKEND_KEY] if n.lower() in text.lower()]


def header(headers, name):
    """Every value of header `name` in a list of pairs (any case)."""
    return [v for k, v in headers if k.lower() == name.lower()]
