#!/usr/bin/env python3
"""`make run`: the demo backends and Envoy with the AI Router filter on examples/airouter.toml.

Serves http://127.0.0.1:8080/v1 (key sk-demo), Envoy admin on http://127.0.0.1:9901; Ctrl-C
stops everything.
"""

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, Stack  # noqa: E402

CONFIG = ROOT / "examples" / "airouter.toml"
HOSTED_KEY = "sk-demo-hosted-backend"
ANTHROPIC_KEY = "sk-ant-demo-backend"
# The name llama.cpp's server answers to: the target model of `demo-llm` in the config.
LLM_ALIAS = "SmolLM2-135M-Instruct"
# From the Triton test repository: the real model behind the vLLM backend's contract, and the
# embeddings model.
TRITON_MODELS = ["llama_chat", "embed"]

# Envoy's environment: the hosted backends' keys, which the config names by `api_key_env`.
ENVOY_ENV = {"DEMO_HOSTED_KEY": HOSTED_KEY, "DEMO_ANTHROPIC_KEY": ANTHROPIC_KEY}


def backends(stack):
    """The demo backends `make run` starts before the sidecar and Envoy, by name, in order; the
    compose demo (examples/compose/) runs each in a container of its own through
    examples/compose/demo_service.py."""
    return [
        ("demo-backend", lambda: stack.start_backend("demo-backend", 8101, "/v1")),
        ("demo-hosted-backend",
         lambda: stack.start_backend("demo-hosted-backend", 8102, "/openai/v1", api_key=HOSTED_KEY)),
        ("demo-anthropic-backend",
         lambda: stack.start_anthropic("demo-anthropic-backend", 8107, api_key=ANTHROPIC_KEY)),
        ("llama-cpp", lambda: stack.start_llama_cpp(8105, LLM_ALIAS)),
        ("triton", lambda: stack.start_triton(ROOT / "tests" / "triton" / "models", 8104, models=TRITON_MODELS)),
    ]


USAGE = """
AI Router is up: Envoy with the AI Router filter on {config}

  OpenAI endpoint   http://127.0.0.1:8080/v1     client key: sk-demo
  Envoy admin       http://127.0.0.1:9901        (/stats, /clusters)
  gRPC API          127.0.0.1:50051              airouter.v1.Router (reflection on), same key;
                    POST /v1/route, /v1/route:stream there as JSON
  Models            demo-chat, demo-embed, demo-tts, demo-whisper, hosted-* (any name),
                    demo-llm (a real model, SmolLM2-135M, on llama.cpp's OpenAI server),
                    demo-triton-chat (the same model on real Triton, via the sidecar),
                    demo-triton-embed (embeddings on Triton),
                    demo-claude (an Anthropic-compatible demo server, through the filter's
                    translation; Anthropic SDK clients call any model at /v1/messages),
                    demo-failover (first target unreachable; see Envoy's retry stats),
                    ai-router (classifier routing: the demo classifier labels each request
                    SIMPLE, MODERATE, COMPLEX or ENRICH; the label picks the route)

Try:
  curl -s http://127.0.0.1:8080/v1/models -H 'Authorization: Bearer sk-demo'
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'Authorization: Bearer sk-demo' \\
       -H 'content-type: application/json' \\
       -d '{{"model":"demo-chat","messages":[{{"role":"user","content":"hello"}}]}}'

  .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8080/v1', api_key='sk-demo'); \\
print(c.chat.completions.create(model='demo-llm', messages=[{{'role':'user','content':'hi'}}]).choices[0].message.content)"

  Classifier routing ("design" reads COMPLEX, "latest" ENRICH, "explain" MODERATE, else SIMPLE):
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'Authorization: Bearer sk-demo' \\
       -H 'content-type: application/json' \\
       -d '{{"model":"ai-router","max_tokens":64,"messages":[{{"role":"user","content":"What is the latest on Rust?"}}]}}'

  The gRPC API's JSON route (gRPC clients: see the README's "gRPC client API"):
  curl -s http://127.0.0.1:50051/v1/route -H 'Authorization: Bearer sk-demo' \\
       -H 'content-type: application/json' \\
       -d '{{"model":"demo-chat","messages":[{{"role":"user","content":"hello"}}]}}'

Logs in {logs}; one session record (JSON) per request in {logs}/sessions.
Ctrl-C stops everything.
"""


def main():
    stack = Stack(ROOT / ".run")
    stopping = []

    def stop(*_):
        stopping.append(True)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for _, start in backends(stack):
            start()
        stack.start_sidecar(CONFIG)
        envoy = stack.start_envoy(CONFIG, ENVOY_ENV)
        print(USAGE.format(config=CONFIG, logs=stack.workdir), flush=True)
        while not stopping and envoy.poll() is None:
            time.sleep(0.2)
        if envoy.poll() is not None and not stopping:
            print("Envoy exited:\n" + stack.logs(), file=sys.stderr)
            return 1
        return 0
    except Exception as e:  # noqa: BLE001 - report any start-up failure with the logs
        print("could not start the demo: %s\n%s" % (e, stack.logs()), file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
