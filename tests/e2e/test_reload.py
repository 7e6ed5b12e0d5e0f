"""Keys and models reload without a restart: `airouter reload` rewrites the listener and cluster
files Envoy watches; a stream in flight finishes on the configuration it started with."""

import json
import threading
import time
import urllib.error
import urllib.request

from stack import Stack, free_port

CONFIG = """
[listener]
address = "127.0.0.1"
port = {port}

[admin]
address = "127.0.0.1"
port = {admin}

[backends.provider]
kind = "openai"
url = "http://127.0.0.1:{backend}/v1"

[[models]]
name = "ticker"
apis = ["chat"]
target = {{ backend = "provider", model = "ticking-stream" }}
{extra_model}
[[keys]]
name = "current"
key = "{key}"
"""


def call(port, key, model="ticker", stream=False):
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body,
                                 headers={"content-type": "application/json", "authorization": "Bearer " + key,
                                          "connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r
    except urllib.error.HTTPError as e:
        return e.code, None


def test_keys_and_models_reload_while_a_stream_is_in_flight(tmp_path):
    ports = {k: free_port() for k in ("port", "admin", "backend")}
    config = tmp_path / "airouter.toml"
    config.write_text(CONFIG.format(key="sk-old", extra_model="", **ports))
    stack = Stack(tmp_path)
    try:
        stack.start_backend("provider", ports["backend"], "/v1")
        stack.start_envoy(config, xds_dir=tmp_path / "xds")
        status, _ = call(ports["port"], "sk-new")
        assert status == 401

        # A stream in flight on the old configuration.
        events, started = [], threading.Event()

        def stream():
            body = json.dumps({"model": "ticker", "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
            req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % ports["port"], data=body,
                                         headers={"content-type": "application/json", "authorization": "Bearer sk-old"})
            with urllib.request.urlopen(req, timeout=30) as r:
                for line in r:
                    if line.startswith(b"data: "):
                        events.append(line[6:].strip())
                        started.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert started.wait(10)

        extra = '\n[[models]]\nname = "added"\napis = ["chat"]\ntarget = { backend = "provider", model = "plain" }\n'
        config.write_text(CONFIG.format(key="sk-new", extra_model=extra, **ports))
        stack.reload(config)
        deadline = time.monotonic() + 15
        while call(ports["port"], "sk-new")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert call(ports["port"], "sk-new")[0] == 200, "the new key works without a restart"
        assert call(ports["port"], "sk-old")[0] == 401, "the removed key no longer does"
        assert call(ports["port"], "sk-new", model="added")[0] == 200, "the added model is served"

        reader.join(20)
        assert events and events[-1] == b"[DONE]", "the stream in flight finished"
        assert len([e for e in events if e != b"[DONE]"]) == 20
        assert all(json.loads(e)["model"] == "ticker" for e in events[:-1])
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()
