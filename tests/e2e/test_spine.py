"""The spine end to end: openai SDK -> real Envoy + AI Router filter -> demo providers."""

import base64
import json
import struct

import openai
import pytest

from conftest import PROVIDER_B_KEY, assert_no_backend_names

MESSAGES = [{"role": "user", "content": "héllo wörld 😀 世界"}]


def test_health_needs_no_key(env):
    status, _, body = env.raw("GET", "/health", key=None)
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_models_list_shows_client_names_only(env):
    models = env.client().models.list()
    ids = [m.id for m in models.data]
    assert ids == ["chat", "embed", "tts", "stt", "assistant", "painter", "guard", "limited", "broken", "picky", "sleepy", "cut", "unreachable"]
    assert_no_backend_names(models.model_dump_json())
    assert env.client().models.retrieve("chat").id == "chat"
    assert env.client().models.retrieve("bravo-anything").id == "bravo-anything"
    with pytest.raises(openai.NotFoundError):
        env.client().models.retrieve("acme-llama-3-8b-instruct")


def test_models_list_honours_the_allow_list(env):
    ids = [m.id for m in env.client("sk-restricted").models.list().data]
    assert ids == ["chat"]


def test_chat_is_routed_rewritten_and_renamed(env):
    env.clear_upstream()
    raw = env.client().chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, extra_body={"vendor_knob": {"keep": [1, 2]}})
    resp = raw.parse()
    assert resp.model == "chat"
    assert resp.choices[0].message.content == "You said: héllo wörld 😀 世界"
    assert_no_backend_names(raw.http_response.content)
    # The renamed body goes out with its exact length, not chunked.
    assert raw.http_response.headers["content-length"] == str(len(raw.http_response.content))
    assert "transfer-encoding" not in raw.http_response.headers
    [seen] = env.upstream_requests(env.provider_a)
    sent = json.loads(base64.b64decode(seen["body_b64"]))
    assert sent["model"] == "acme-llama-3-8b-instruct"
    assert sent["vendor_knob"] == {"keep": [1, 2]}, "unknown fields must pass through untouched"
    assert seen["path"] == "/v1/chat/completions"
    assert "authorization" not in seen["headers"], "the client's key must not reach a keyless backend"
    assert "x-airouter-backend" not in seen["headers"], "the routing header is internal"
    assert seen["headers"]["content-length"] == str(len(base64.b64decode(seen["body_b64"])))


def test_chat_stream_is_renamed_in_every_chunk(env):
    stream = env.client().chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks and all(c.model == "chat" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: héllo wörld 😀 世界"
    assert chunks[-1].usage is not None
    for c in chunks:
        assert_no_backend_names(c.model_dump_json())


def test_raw_stream_bytes_carry_no_backend_name_and_end_with_done(env):
    status, headers, body = env.raw("POST", "/v1/chat/completions",
                                    {"model": "chat", "messages": MESSAGES, "stream": True})
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert_no_backend_names(body)
    assert body.rstrip().endswith(b"data: [DONE]")


def test_pattern_model_goes_to_the_second_provider_with_its_key_and_prefix(env):
    env.clear_upstream()
    resp = env.client().chat.completions.create(model="bravo-large", messages=MESSAGES)
    assert resp.model == "bravo-large"
    [seen] = env.upstream_requests(env.provider_b)
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer " + PROVIDER_B_KEY
    assert seen["headers"]["host"] == env.provider_b.removeprefix("http://")
    assert json.loads(base64.b64decode(seen["body_b64"]))["model"] == "bravo-chat-70b"


def test_legacy_completions(env):
    resp = env.client().completions.create(model="chat", prompt=["one", "two"])
    assert resp.model == "chat"
    assert [c.text for c in resp.choices] == [" echo: one", " echo: two"]
    stream = list(env.client().completions.create(model="chat", prompt="x", stream=True))
    assert stream and all(c.model == "chat" for c in stream)


def test_embeddings_float_and_base64(env):
    resp = env.client().embeddings.create(model="embed", input=["a", "b"], encoding_format="float")
    assert resp.model == "embed" and len(resp.data) == 2 and len(resp.data[0].embedding) == 8
    status, _, body = env.raw("POST", "/v1/embeddings", {"model": "embed", "input": "a", "encoding_format": "base64"})
    assert status == 200
    data = json.loads(body)
    floats = struct.unpack("<8f", base64.b64decode(data["data"][0]["embedding"]))
    assert [round(f, 5) for f in floats] == [round(f, 5) for f in resp.data[0].embedding]
    assert_no_backend_names(body)


def test_speech_bytes_pass_untouched(env):
    from demo_backend import SPEECH_BYTES  # the exact bytes the provider sends
    audio = env.client().audio.speech.create(model="tts", voice="alloy", input="hi")
    assert audio.content == SPEECH_BYTES


def test_multipart_transcription_rewrites_the_model_part(env):
    env.clear_upstream()
    wav = b"RIFF" + bytes(range(256)) * 40
    result = env.client().audio.transcriptions.create(model="stt", file=("clip.wav", wav, "audio/wav"))
    assert result.text == "transcribed %d bytes" % len(wav)
    [seen] = env.upstream_requests(env.provider_b)
    body = base64.b64decode(seen["body_b64"])
    assert b'name="model"\r\n\r\nacme-whisper-large\r\n' in body
    assert wav in body
    assert seen["headers"]["content-length"] == str(len(body))
    translated = env.client().audio.translations.create(model="stt", file=("clip.wav", wav, "audio/wav"))
    assert translated.text.startswith("transcribed")


def test_responses_api_is_renamed(env):
    status, _, body = env.raw("POST", "/v1/responses", {"model": "assistant", "input": "hi"})
    assert status == 200 and json.loads(body)["model"] == "assistant"
    assert_no_backend_names(body)


def test_missing_and_wrong_keys_get_401(env):
    with pytest.raises(openai.AuthenticationError) as e:
        env.client("sk-wrong").chat.completions.create(model="chat", messages=MESSAGES)
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    status, _, body = env.raw("GET", "/v1/models", key=None)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    status, _, _ = env.raw("GET", "/v1/models", key=None, headers={"api-key": "sk-test"})
    assert status == 200


def test_allow_list_answers_404_like_openai(env):
    with pytest.raises(openai.NotFoundError) as e:
        env.client("sk-restricted").chat.completions.create(model="bravo-x", messages=MESSAGES)
    assert e.value.code == "model_not_found"


def test_unknown_model_is_404_model_not_found(env):
    with pytest.raises(openai.NotFoundError) as e:
        env.client().chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert e.value.code == "model_not_found"
    assert e.value.body["message"] == "The model `no-such-model` does not exist."


def test_upstream_429_is_passed_through_without_names(env):
    status, headers, body = env.raw("POST", "/v1/chat/completions", {"model": "limited", "messages": MESSAGES})
    assert status == 429 and headers.get("retry-after") == "1"
    assert json.loads(body)["error"]["message"] == "Rate limit reached for limited."
    assert_no_backend_names(body)
    with pytest.raises(openai.RateLimitError):
        env.client().chat.completions.create(model="limited", messages=MESSAGES)


def test_upstream_500_text_is_wrapped(env):
    status, headers, body = env.raw("POST", "/v1/chat/completions", {"model": "broken", "messages": MESSAGES})
    assert status == 500 and headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    # A backend's 5xx text is replaced by a generic message for the status.
    assert err["message"] == "The backend had an internal error while processing the request."
    assert err["type"] == "server_error"
    assert headers["content-length"] == str(len(body))
    assert_no_backend_names(body)


def test_upstream_400_in_another_shape_is_wrapped(env):
    with pytest.raises(openai.BadRequestError) as e:
        env.client().chat.completions.create(model="picky", messages=MESSAGES)
    assert e.value.body["message"] == "model picky rejects this"


def test_body_over_the_limit_is_413(env):
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 300_000}]}
    status, _, body = env.raw("POST", "/v1/chat/completions", big)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_malformed_json_is_400(env):
    status, _, body = env.raw("POST", "/v1/chat/completions", b'{"model": "chat", "messages": [}')
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = env.raw("POST", "/v1/chat/completions", {"messages": []})
    assert status == 400 and json.loads(body)["error"]["param"] == "model"


def test_unknown_path_is_404_unknown_url(env):
    status, _, body = env.raw("POST", "/v1/fine_tuning/jobs", {"model": "chat"})
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_url"


def test_unreachable_backend_is_502(env):
    with pytest.raises(openai.APIStatusError) as e:
        env.client().chat.completions.create(model="unreachable", messages=MESSAGES)
    assert e.value.status_code == 502
    assert e.value.body["type"] == "server_error"
    assert e.value.response.headers["content-length"] == str(len(e.value.response.content))


def test_slow_backend_is_504(env):
    status, _, body = env.raw("POST", "/v1/chat/completions", {"model": "sleepy", "messages": MESSAGES})
    assert status == 504
    assert json.loads(body)["error"]["code"] == "upstream_timeout"


def test_shipped_example_renders_to_a_config_envoy_accepts(env, tmp_path):
    from stack import ROOT
    stack = env.stack
    bootstrap = stack.render(ROOT / "examples" / "airouter.toml", "example-envoy.json")
    import os
    keys = {"DEMO_HOSTED_KEY": "sk-x", "DEMO_ANTHROPIC_KEY": "sk-y"}
    code, output = stack.validate(bootstrap, dict(os.environ, **keys))
    assert code == 0, output[-3000:]
    # Without the backend keys in Envoy's environment, the filter refuses to start, saying why.
    clean = {k: v for k, v in os.environ.items() if k not in keys}
    code, output = stack.validate(bootstrap, clean)
    assert code != 0 and "DEMO_HOSTED_KEY" in output and "DEMO_ANTHROPIC_KEY" in output


def test_a_stream_cut_short_ends_with_an_error_event_and_done(env):
    status, _, body = env.raw("POST", "/v1/chat/completions", {"model": "cut", "messages": MESSAGES, "stream": True})
    assert status == 200
    events = [e for e in body.decode().split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][len("data: "):])["error"]["code"] == "stream_truncated"
    assert_no_backend_names(body)
    got = []
    with pytest.raises(openai.APIError):
        for chunk in env.client().chat.completions.create(model="cut", messages=MESSAGES, stream=True):
            got.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in got) == "partial answer"


def test_images_and_moderations_are_routed(env):
    env.clear_upstream()
    image = env.client().images.generate(model="painter", prompt="a cat")
    assert base64.b64decode(image.data[0].b64_json) == b"PNG"
    mod = env.client().moderations.create(model="guard", input="hello")
    assert mod.model == "guard" and mod.results[0].flagged is False
    sent = [json.loads(base64.b64decode(r["body_b64"]))["model"] for r in env.upstream_requests(env.provider_a)]
    assert sent == ["acme-diffusion", "acme-guard"]
    assert_no_backend_names(mod.model_dump_json())


def test_a_key_over_its_requests_per_minute_gets_429_with_retry_after(env):
    client = env.client("sk-metered")
    for _ in range(2):
        client.chat.completions.create(model="chat", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert e.value.code == "rate_limit_exceeded"
    assert int(e.value.response.headers["retry-after"]) > 0
    assert env.client().chat.completions.create(model="chat", messages=MESSAGES).model == "chat", "other keys are unaffected"


def test_a_key_over_its_tokens_per_minute_gets_429_and_streams_are_counted_too(env):
    client = env.client("sk-budgeted")
    hi = [{"role": "user", "content": "hi"}]
    r = client.chat.completions.create(model="chat", messages=hi)
    assert r.usage.total_tokens == 8
    env.clear_upstream()
    chunks = list(client.chat.completions.create(model="chat", messages=hi, stream=True))
    assert all(c.usage is None for c in chunks), "the usage chunk the router asked for is not passed on"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hi"
    [seen] = env.upstream_requests(env.provider_a)
    assert json.loads(base64.b64decode(seen["body_b64"]))["stream_options"] == {"include_usage": True}
    client.chat.completions.create(model="chat", messages=hi)  # 16 used: still under 20
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="chat", messages=hi)  # 24 used
    assert "tokens" in e.value.message and int(e.value.response.headers["retry-after"]) > 0
