"""Review of issue 16, as a new user: the example router configuration with `airouter check` and
`airouter envoy` (README: "`airouter envoy` names every variable Envoy needs on stderr, and
Envoy refuses to start while one is missing")."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "examples"))
from stack import AIROUTER, ROOT, WASM  # noqa: E402

ROUTER_TOML = ROOT / "examples" / "router.toml"


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "XAI_API_KEY"}
    return subprocess.run([str(AIROUTER), *args], capture_output=True, text=True, env=env, check=False)


def test_check_does_not_call_a_required_backend_key_optional():
    """examples/router.toml's `cloud` backend has `api_key_env = "XAI_API_KEY"` and no
    `api_key_optional`: Envoy will refuse to start without it. `airouter check` says so, then
    adds a note that the backend is `api_key_optional` and its targets would be skipped (so
    the COMPLEX route would fall back), which is not what this file does."""
    out = run("check", str(ROUTER_TOML))
    assert out.returncode == 0, out.stderr
    assert "XAI_API_KEY" in out.stderr
    assert "api_key_optional" not in out.stderr, out.stderr


def test_envoy_names_the_variables_envoy_needs_on_stderr():
    out = run("envoy", str(ROUTER_TOML), "--wasm", str(WASM))
    assert out.returncode == 0, out.stderr
    assert "XAI_API_KEY" in out.stdout  # Envoy's bootstrap needs it ...
    assert "XAI_API_KEY" in out.stderr, "stderr: %r" % out.stderr  # ... and the user is not told
