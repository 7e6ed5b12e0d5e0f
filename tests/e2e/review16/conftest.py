"""Fixtures of the issue-16 review probes (classifier routing, enrichment, session logs).

One real Envoy with the release filter on tests/e2e/test_router.py's configuration (its routers,
routes, keys and scripted fakes: the classifier, the Responses API and the route models are one
ScriptedUpstream, scripted per request by a `case-<hex>` marker), plus `[session_log]` with
`capture = "{capture}"` and the real sidecar (`airouter serve`) writing the records. The fakes are
reused as they are; probes that need other answers script the upstream further."""

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2] / "examples"))
from stack import Stack, free_port  # noqa: E402
import test_router as tr  # noqa: E402
from breaker.scripted_upstream import ScriptedUpstream  # noqa: E402

SESSION = """
[sidecar]
address = "127.0.0.1"
port = {sidecar}
grpc_port = {grpc}

[session_log]
capture = "{capture}"
max_record_bytes = 65536
dir = "{dir}"
"""


RAW = {}  # marker -> the classifier's (or the Responses API's) raw answer: bytes, or pieces as the upstream sends them


def raw_case(classifier=None, search=None, route_label="SIMPLE"):
    """A marker whose classifier (and/or Responses API) answer is sent as given, byte for byte:
    bytes, or a list of pieces (bytes, a number of seconds to sleep, None to close)."""
    marker = tr.case(classifier=route_label)
    RAW[marker[len("case-"):]] = {"classifier": classifier, "search": search}
    return marker


def _raw_or(fake, which):
    def answer(req):
        m = tr.CASE_RE.search(req["body"])
        script = RAW.get(m.group(1).decode(), {}) if m else {}
        if script.get(which) is not None:
            return script[which]
        return fake(req)
    return answer


class Rev(tr.Rtr):
    def __init__(self, stack, port, up, admin, sessions, sidecar):
        super().__init__(stack, port, up)
        self.admin = "http://127.0.0.1:%d" % admin
        self.sessions = sessions
        self.sidecar = sidecar

    def records(self):
        out = []
        for p in sorted(self.sessions.glob("*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                pass
        return out

    def record_of(self, marker, timeout=15.0):
        """The one session record whose text holds `marker`."""
        deadline = time.monotonic() + timeout
        found = []
        while time.monotonic() < deadline:
            found = [r for r in self.records() if marker in json.dumps(r)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError("no session record holds %s" % marker)

    def stats(self, prefix="wasmcustom."):
        with urllib.request.urlopen(self.admin + "/stats", timeout=10) as r:
            return [line for line in r.read().decode().splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="session")
def rev(tmp_path_factory):
    work = tmp_path_factory.mktemp("review16")
    (work / "prompts").mkdir()
    (work / "prompts" / "classify.md").write_text(tr.CLASSIFY_PROMPT)
    (work / "prompts" / "simple.md").write_text(tr.SIMPLE_PROMPT)
    port, admin, up_port, dead_route, dead_clf, dead_spare, sidecar, grpc = (free_port() for _ in range(8))
    port2, admin2 = free_port(), free_port()
    up = ScriptedUpstream(up_port).start()
    up.script.update({tr.CLF: _raw_or(tr.fake_classifier, "classifier"),
                      tr.SEARCH: _raw_or(tr.fake_search, "search"), tr.BUSY: tr.fake_busy,
                      tr.LOCAL: tr.fake_chat_model(tr.LOCAL), tr.CLOUD: tr.fake_chat_model(tr.CLOUD),
                      tr.SPARE: tr.fake_chat_model(tr.SPARE), tr.PATTERN: tr.fake_chat_model(tr.PATTERN),
                      tr.LIMITED: tr.fake_chat_model(tr.LIMITED)})
    stack = Stack(work)
    sessions = work / "sessions"

    def config_for(capture, port, admin):
        path = work / ("airouter-%s.toml" % capture)
        path.write_text(tr.CONFIG.format(
            port=port, admin=admin, up=up_port, dead_route=dead_route, dead_clf=dead_clf, dead_spare=dead_spare,
            gone=tr.GONE, spare=tr.SPARE, pattern=tr.PATTERN, limited=tr.LIMITED, clf=tr.CLF, clf_dead=tr.CLF_DEAD,
            search=tr.SEARCH, local=tr.LOCAL, cloud=tr.CLOUD, flaky=tr.FLAKY, busy=tr.BUSY, cloud_key=tr.CLOUD_KEY,
            search_key=tr.SEARCH_KEY, budget=tr.BUDGET_TOKENS, simple_zone=tr.SIMPLE_ZONE,
            moderate_zone=tr.MODERATE_ZONE) + SESSION.format(sidecar=sidecar, grpc=grpc, dir=sessions, capture=capture))
        return path

    try:
        config = config_for("full", port, admin)
        stack.start_sidecar(config)
        stack.start_envoy(config)
        stack.start_envoy(config_for("none", port2, admin2), name="envoy-none")
        rev = Rev(stack, port, up, admin, sessions, sidecar)
        rev.none = Rev(stack, port2, up, admin2, sessions, sidecar)
        yield rev
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
