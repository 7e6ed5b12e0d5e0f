"""Breaker: client-chosen strings never grow state (issue 14, class 5); secrets in the admin
port's dumps (class 6). Envoy's memory is read from /proc and its /memory endpoint."""

import json
import os
import random
import string

from .conftest import BACKEND_KEY, BUDGET_KEYS
from .scripted_upstream import json_response


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def allocated(brk):
    return int(json.loads(brk.admin_get("/memory"))["allocated"])


def rand(n):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def test_client_strings_do_not_grow_envoys_memory(brk):
    brk.reset()
    # Pass-through names answered by 429 with a retry hint (cool-down state), unknown keys, odd
    # headers: 3 rounds, memory read after a warm-up round.
    def limited(req):
        return json_response(429, {"error": {"message": "slow down", "type": "requests", "param": None, "code": None}},
                             [("retry-after", "30")])
    seen = []
    for round_ in range(4):
        for _ in range(40):
            name = "pass-" + rand(300)
            brk.up.script[name] = limited
            brk.raw("POST", "/v1/chat/completions", {"model": name, "messages": []})
            brk.raw("POST", "/v1/chat/completions", {"model": "chat", "messages": []}, key="sk-" + rand(4000))
            brk.raw("GET", "/v1/models/" + rand(300))
            brk.raw("POST", "/v1/chat/completions?" + rand(2000) + "=1", {"model": "chat", "messages": []})
        brk.up.script.clear()
        seen.append((rss_kib(brk.envoy_pid()), allocated(brk)))
    grow_rss = seen[-1][0] - seen[0][0]
    grow_alloc = seen[-1][1] - seen[0][1]
    assert grow_alloc < 4 * 1024 * 1024, seen
    assert grow_rss < 8 * 1024, seen


def test_config_dump_and_stats_hold_no_secret(brk):
    dump = brk.admin_get("/config_dump?include_eds").decode()
    for secret in [BACKEND_KEY, "sk-test", "sk-restricted"] + BUDGET_KEYS:
        assert secret not in dump, secret
    stats = brk.admin_get("/stats").decode()
    for secret in [BACKEND_KEY, "sk-test", "sk-restricted"]:
        assert secret not in stats, secret
    log = open(brk.stack.envoy_log, errors="replace").read()
    for secret in [BACKEND_KEY, "sk-test", "sk-restricted"]:
        assert secret not in log, secret
