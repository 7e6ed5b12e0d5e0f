"""Request framings on /v1/messages and /v1/chat/completions (Anthropic and OpenAI backends):
HTTP/1.1 chunked (+trailers), h2 with split DATA frames, trailers, empty final DATA frame.
The restricted key (models = ["gpt"]) must never reach c-normal; each body must be translated."""
import json

from raw_clients import h1_chunked, h2_request

MSG_OK = {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
MSG_BAD = {"model": "c-normal", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def split(b, n=3):
    return [b[i:i + n] for i in range(0, len(b), n)]


def test_framings(env):
    port = env.ports["port"]
    for path in ("/v1/messages", "/v1/chat/completions"):
        for label, body, key in [("allowed", MSG_OK, "sk-restricted"), ("forbidden", MSG_BAD, "sk-restricted"), ("ant", MSG_BAD, "sk-test")]:
            raw = json.dumps(body).encode()
            res = {}
            n0 = len(env.fake.requests)
            res["h1-chunked"] = h1_chunked(port, path, split(raw), key)[0]
            res["h1-chunked-trailers"] = h1_chunked(port, path, split(raw), key, trailer_lines=("x-t: 1", "model: c-normal"))[0]
            res["h2"] = h2_request(port, path, split(raw, 7), key)[0]
            res["h2-trailers"] = h2_request(port, path, split(raw, 7), key, trailers=[("x-t", "1")])[0]
            res["h2-emptydata"] = h2_request(port, path, split(raw, 7), key, end_with_empty_data=True)[0]
            res["h2-nobody-trailers"] = h2_request(port, path, [], key, trailers=[("x-t", "1")])[0]
            ups = [json.loads(r["body"]).get("model") if r["body"] else None for r in env.fake.requests[n0:] if r["method"] == "POST"]
            bodies = [r["body"][:80] for r in env.fake.requests[n0:] if r["method"] == "POST"]
            print("\n### %s %s -> %s ant-upstream models=%s %s" % (path, label, res, ups, bodies[:1]))
            if label == "forbidden":
                assert all(v == 404 for k, v in res.items() if k != "h2-nobody-trailers"), res
                assert not ups
