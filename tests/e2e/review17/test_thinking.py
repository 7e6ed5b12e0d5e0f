"""Thinking blocks streamed from an Anthropic backend (split in 5-byte writes) through /v1/chat/completions."""
from .conftest import leaks


def test_thinking_stream(env):
    body = {"model": "c-thinking", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    for i in range(3):
        st, h, b = env.raw("POST", "/v1/chat/completions", body)
        print(i, st, h, repr(b[:3000]))
    assert st == 200 and b.rstrip().endswith(b"data: [DONE]"), b


def test_thinking_stream_usage(env):
    body = {"model": "c-thinking", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    st, h, b = env.raw("POST", "/v1/chat/completions", body)
    print(st, h, repr(b[:3000]))
    assert st == 200 and b.rstrip().endswith(b"data: [DONE]"), b
