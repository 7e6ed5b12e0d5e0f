"""Review of issue 16: a route's `max_tokens_floor` (docs/config.md, `[[routers.routes]]`:
"`max_tokens` and `max_completion_tokens` (every key a parser reads as one) lower than this are
raised to it"). The COMPLEX route of tests/e2e/test_router.py's config has a floor of 2048."""

import json

import pytest

import test_router as tr
from test_router import case

FLOOR = 2048


@pytest.mark.parametrize("value", [1000.0, 5.5, -1, "5", "1000"], ids=["float-1000.0", "float-5.5", "negative", "string-5", "string-1000"])
def test_a_max_tokens_below_the_floor_in_another_spelling_is_raised_or_refused(rev, value):
    """vLLM's and llama.cpp's servers read `1000.0` as 1000 and (pydantic, lax) `"5"` as 5;
    llama.cpp reads -1 as "no limit". Each is lower than the floor, so the route's model must
    not get it as sent: raised to the floor, or the request refused with a 400."""
    m = case(classifier="COMPLEX")
    status, _, body = rev.raw("/v1/chat/completions", {"model": "ai-router", "max_tokens": value,
                                                       "messages": [{"role": "user", "content": "q " + m}]})
    if status == 400:
        tr.assert_openai_error(status, body)
        return
    assert status == 200, body
    sent = rev.served(m)
    assert sent["model"] == tr.CLOUD
    got = sent.get("max_tokens")
    assert isinstance(got, int) and got >= FLOOR, "the COMPLEX route's model was sent max_tokens=%r (floor %d)" % (got, FLOOR)
