"""The targets `make bench` judges (issue 19's for both builds of the filter, issue 5's that it
kept), from run.py's results: {variant: {"cpu": [per round], "rps": [...], "p99": [...], "ttfc":
[...], "last": [...], "rss": MB}}. A comparison between two variants is made within a round (their
runs are seconds apart) and judged in every round: met or not met when all rounds agree, not judged
when they do not (the machine's speed moved more than the margin); the median of the rounds' ratios
or differences is shown.
"""

import statistics

DISAGREE = "disagree"
CHUNKS_AFTER_FIRST = 49  # the canned stream has 50 chunks


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    return "-" if v is None else ("%.*f" % (digits, v))


def span(values):
    values = [v for v in values if v is not None]
    return "%.1f to %.1f" % (min(values), max(values)) if values else "-"


def per_round(results, name, key, op, base="envoy"):
    """`op(variant's value, base's value)` in each round: the two were measured seconds apart, so
    drift in the machine's speed between rounds cancels out."""
    mine, other = results.get(name, {}).get(key, []), results.get(base, {}).get(key, [])
    return [op(a, b) for a, b in zip(mine, other) if a and b]


def paired(results, name, key, op, base="envoy"):
    """Median over rounds of the within-round comparison (`per_round`)."""
    return med(per_round(results, name, key, op, base))


def agreed(verdicts):
    """The verdict every round gave; DISAGREE when one round met a target that another missed."""
    if not verdicts:
        return None
    return verdicts[0] if all(v == verdicts[0] for v in verdicts) else DISAGREE


def per_chunk_us(results, name):
    """µs added per streamed chunk after the first, against plain Envoy (medians)."""
    def first_to_last(r):
        last, first = med(r.get("last", [])), med(r.get("ttfc", []))
        return None if last is None or first is None else last - first

    mine, plain = first_to_last(results.get(name, {})), first_to_last(results.get("envoy", {}))
    if mine is None or plain is None:
        return None
    return (mine - plain) / CHUNKS_AFTER_FIRST * 1000


class Targets:
    """Rows of one targets table, and the targets whose rounds disagreed."""

    VERDICTS = {True: "met", False: "**not met**", None: "not measured", DISAGREE: "not judged: rounds disagree"}

    def __init__(self):
        self.rows, self.undecided = [], []

    def add(self, text, ok, detail):
        self.rows.append("| %s | %s | %s |" % (text, self.VERDICTS[ok], detail))

    def rounds(self, text, verdicts, detail, short):
        """A target judged in every round."""
        if not verdicts:
            self.add(text, None, detail)
            return
        self.add(text, agreed(verdicts), detail)
        if agreed(verdicts) == DISAGREE:
            self.undecided.append("%s (%s)" % (short, ", ".join("met" if v else "not met" for v in verdicts)))


def issue19(results, rate):
    """Issue 19's targets: the native build against plain Envoy, the wasm build against the wasm
    floor, both against LiteLLM and per streamed chunk."""
    t = Targets()
    n, env, floor, wasm = (results.get(k, {}) for k in ("airouter-native", "envoy", "wasm-floor", "airouter"))
    name = "airouter-native"
    if n.get("cpu"):
        t.rounds("Native: CPU per request ≤ 1.10× plain Envoy and ≤ +12 µs",
                 per_round(results, name, "cpu", lambda x, y: x / y <= 1.10 and x - y <= 12),
                 "%s×, %s µs (medians %s vs %s µs)" % (
                     fmt(paired(results, name, "cpu", lambda x, y: x / y)),
                     fmt(paired(results, name, "cpu", lambda x, y: x - y), 1), fmt(med(n["cpu"]), 1),
                     fmt(med(env.get("cpu", [])), 1)), "native CPU")
        rps_x = paired(results, name, "rps", lambda x, y: x / y)
        t.rounds("Native: saturation ≥ 90% of plain Envoy", per_round(results, name, "rps", lambda x, y: x / y >= 0.9),
                 "%s%% (medians %s vs %s req/s)" % (fmt(100 * rps_x if rps_x else None, 0), fmt(med(n["rps"]), 0),
                                                    fmt(med(env.get("rps", [])), 0)), "native saturation")
        t.rounds("Native: p99 at %d/s within 0.2 ms of plain Envoy" % rate,
                 per_round(results, name, "p99", lambda x, y: x - y <= 0.2),
                 "%s ms (medians %s vs %s ms)" % (fmt(paired(results, name, "p99", lambda x, y: x - y)),
                                                  fmt(med(n["p99"])), fmt(med(env.get("p99", [])))), "native p99")
        if n.get("rss") and env.get("rss"):
            t.add("Native: memory ≤ plain Envoy + 5 MB", n["rss"] <= env["rss"] + 5,
                  "%+.1f MB (%.1f vs %.1f MB peak RSS)" % (n["rss"] - env["rss"], n["rss"], env["rss"]))
    else:
        t.add("Native build", None, "the native build did not run")
    if wasm.get("cpu") and floor.get("cpu"):
        own = per_round(results, "airouter", "cpu", lambda x, y: x - y, base="wasm-floor")
        t.rounds("Wasm: the router's own work over the wasm floor ≤ +30 µs",
                 [d <= 30 for d in own], "%+.1f µs (rounds %s; today's target halves issue 5's +58)" % (
                     med(own), span(own)), "wasm own work")
    if wasm.get("rss") and floor.get("rss"):
        t.add("Wasm: memory ≤ the wasm floor + 8 MB", wasm["rss"] <= floor["rss"] + 8,
              "%+.1f MB (%.1f vs %.1f MB peak RSS)" % (wasm["rss"] - floor["rss"], wasm["rss"], floor["rss"]))
    lite = results.get("litellm", {})
    l_rps, l_rss = med(lite.get("rps", [])), lite.get("rss")
    for label, key in (("wasm", "airouter"), ("native", "airouter-native")):
        r = results.get(key, {})
        rps, rss = med(r.get("rps", [])), r.get("rss")
        if rps and rss and l_rps and l_rss:
            t.add("Both (%s): ≥ 100× LiteLLM's throughput at ≤ 1/3 of its memory" % label,
                  rps >= 100 * l_rps and rss <= l_rss / 3,
                  "%.0f× (%.0f vs %.0f req/s), %.2f of its memory (%.0f vs %.0f MB)" % (
                      rps / l_rps, rps, l_rps, rss / l_rss, rss, l_rss))
        else:
            t.add("Both (%s): ≥ 100× LiteLLM's throughput at ≤ 1/3 of its memory" % label, None,
                  "LiteLLM or the %s build did not run" % label)
        chunk = per_chunk_us(results, key)
        t.add("Both (%s): < 5 µs added per streamed chunk" % label, None if chunk is None else chunk < 5,
              "%s µs (spread of the %d chunks after the first, vs plain Envoy)" % (fmt(chunk, 1), CHUNKS_AFTER_FIRST))
    return t


def issue5(results, rate, ttft):
    """Issue 5's targets for the wasm build, but its memory target (replaced by issue 19's)."""
    t = Targets()
    a, env, lite = results.get("airouter", {}), results.get("envoy", {}), results.get("litellm", {})
    if a.get("cpu"):
        t.rounds("CPU per request ≤ 1.25× plain Envoy and ≤ +40 µs",
                 per_round(results, "airouter", "cpu", lambda x, y: x / y <= 1.25 and x - y <= 40),
                 "%s×, %s µs (medians %s vs %s µs)" % (
                     fmt(paired(results, "airouter", "cpu", lambda x, y: x / y)),
                     fmt(paired(results, "airouter", "cpu", lambda x, y: x - y), 1), fmt(med(a["cpu"]), 1),
                     fmt(med(env.get("cpu", [])), 1)), "CPU")
        rps_x = paired(results, "airouter", "rps", lambda x, y: x / y)
        t.rounds("Saturation ≥ 80% of plain Envoy", per_round(results, "airouter", "rps", lambda x, y: x / y >= 0.8),
                 "%s%% (medians %s vs %s req/s)" % (fmt(100 * rps_x if rps_x else None, 0), fmt(med(a["rps"]), 0),
                                                    fmt(med(env.get("rps", [])), 0)), "saturation")
        t.rounds("p99 at %d/s within 0.5 ms of plain Envoy" % rate,
                 per_round(results, "airouter", "p99", lambda x, y: x - y <= 0.5),
                 "%s ms (medians %s vs %s ms)" % (fmt(paired(results, "airouter", "p99", lambda x, y: x - y)),
                                                  fmt(med(a["p99"])), fmt(med(env.get("p99", [])))), "p99")
    chunk = per_chunk_us(results, "airouter")
    if chunk is not None:
        t.add("Added delay per streamed chunk < 10 µs", chunk < 10, "%.1f µs" % chunk)
    a_rps, l_rps = med(a.get("rps", [])), med(lite.get("rps", []))
    if a_rps and l_rps:
        t.add("≥ 50× LiteLLM's throughput", a_rps >= 50 * l_rps, "%.0f vs %.0f req/s (%.0f×)" % (a_rps, l_rps, a_rps / l_rps))
    side, direct = ttft
    if side and direct:
        t.add("Sidecar time to first token within 1 ms of direct gRPC", side - direct <= 1.0,
              "%.2f vs %.2f ms (medians of 50, Triton on CPU, Python clients on both sides)" % (side, direct))
    return t


def peers_line(results):
    """The two builds against the other gateways (medians): throughput and memory ratios."""
    parts = []
    for peer in ("litellm", "portkey"):
        p = results.get(peer, {})
        p_rps, p_rss = med(p.get("rps", [])), p.get("rss")
        if not p_rps:
            continue
        for label, key in (("wasm", "airouter"), ("native", "airouter-native")):
            r = results.get(key, {})
            rps, rss = med(r.get("rps", [])), r.get("rss")
            if rps and rss and p_rss:
                parts.append("%s %.0f× %s's throughput at %.2f of its memory" % (label, rps / p_rps, peer, rss / p_rss))
    return ("Against the other gateways (medians, peak RSS): " + "; ".join(parts) + ".") if parts else None


def cpu_account(results):
    """Where the CPU goes per request, from the rounds (median, range)."""
    cpu = {name: results.get(name, {}).get("cpu", []) for name in ("envoy", "wasm-floor", "airouter",
                                                                   "airouter-limits", "airouter-native")}

    def diff(a, b):  # per round, so a round one variant missed never pairs with another's
        return [y - x for x, y in zip(cpu[a], cpu[b]) if x and y]

    floor_r, router_r = diff("envoy", "wasm-floor"), diff("wasm-floor", "airouter")
    limits_r, native_r = diff("airouter", "airouter-limits"), diff("envoy", "airouter-native")
    parts = []
    if floor_r and router_r:
        parts.append("%+.1f µs (%s) over plain Envoy for any wasm filter that waits for both bodies "
                     "(`wasm-floor`: VM calls for each stream event, buffering); %+.1f µs (%s) for the "
                     "router's own work on top of that (header and body reads and edits, authentication, "
                     "resolution, renaming, counters)" % (med(floor_r), span(floor_r), med(router_r), span(router_r)))
    if limits_r:
        parts.append("per-Envoy key limits %+.1f µs (%s) over the filter without them" % (med(limits_r), span(limits_r)))
    if native_r:
        parts.append("the whole router as a dynamic module %+.1f µs (%s) over plain Envoy (body buffering, "
                     "the ABI's callbacks and the router's own work)" % (med(native_r), span(native_r)))
    if not parts:
        return None
    return "Where the CPU goes, per request (median of the rounds, their range in parentheses): " + "; ".join(parts) + "."
