"""The real model on Triton (`demo-triton-chat`, tests/triton/models/llama_chat) against a long
stop string. The sidecar forwards stop strings of any length (at most four), and the model
looks for a held-back stop prefix by slicing every prefix of every stop string after every
token: quadratic in the stop string's length, while the one model instance serves everyone."""

import time

from .conftest import GREEDY, TRITON

COLOUR = [{"role": "user", "content": "Name a colour."}]


def test_a_long_stop_string_does_not_stall_the_model(real):
    """Repro: a chat request to the Triton-backed model with `max_tokens: 4` and one stop string
    of 300,000 characters (a 300 kB body; the demo allows 32 MiB). Expected: about as fast as the
    same request with a short stop string (~0.1 s), or a 400 for a stop string too long. Actual:
    about 5 s for 4 tokens here (0.9 s per token at 250 kB; four stop strings of 8 MB would take
    hours per token), during which every other client of the model waits; a client hanging up
    does not help, as cancellation is checked between tokens."""
    short = {"model": TRITON, "messages": COLOUR, "max_tokens": 4, "stop": ["@@"], **GREEDY}
    started = time.monotonic()
    status, _, body = real.post("/chat/completions", short)
    baseline = time.monotonic() - started
    assert status == 200, body
    started = time.monotonic()
    status, _, body = real.post("/chat/completions", dict(short, stop=["x" * 300_000]))
    took = time.monotonic() - started
    if status == 400:
        return
    assert status == 200, body[:300]
    assert took < baseline + 1.5, "4 tokens took %.1fs with a long stop string (%.2fs without)" % (took, baseline)
