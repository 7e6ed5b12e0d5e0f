"""Deterministic stand-in 'LLM' for the Triton test models: the text it generates depends only on
the prompt, so tests know exactly what the router must deliver.

The prompt's last line of user text (chat-template markup and role-only lines removed) picks the
reply:
  contains "dots"       -> ".", ".", "."            (a delta de-duplication would corrupt it)
  contains "these"      -> "the", " these"
  contains "utf8"       -> a 4-byte emoji split across two tokens, then " ok"
  contains "with-eos"   -> "done", "</s>"           (EOS marker to be removed at the end)
  contains "slow"       -> " tick" 40 times, 0.1 s apart (models check for cancellation)
  otherwise             -> "You", " said", ":" and the words of the last line
"""

import json
import re

import numpy as np

EMOJI = "\U0001f600".encode()


ROLE_ONLY = {"assistant", "assistant:", "user", "system", "model", "[/inst]"}
MARKUP = re.compile(r"<\|[^|]*\|>|<start_of_turn>|<end_of_turn>|<bos>|<s>|</s>|\[/?INST\]")


def last_line(prompt):
    text = MARKUP.sub("\n", prompt)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and line.lower() not in ROLE_ONLY]
    line = lines[-1] if lines else ""
    # A plain "role: text" transcript.
    return re.sub(r"^(user|system|assistant):\s*", "", line)


def tokens_for(prompt):
    line = last_line(prompt)
    if "dots" in line:
        return [b".", b".", b"."]
    if "these" in line:
        return [b"the", b" these"]
    if "utf8" in line:
        return [EMOJI[:2], EMOJI[2:], b" ok"]
    if "with-eos" in line:
        return [b"done", b"</s>"]
    if "slow" in line:
        return [b" tick"] * 40
    words = line.split()
    return [b"You", b" said", b":"] + [(" " + w).encode() for w in words]


def generate(prompt, max_tokens, stop=()):
    """(tokens, finish_reason) within the token budget, cut before any stop string."""
    out = []
    for tok in tokens_for(prompt):
        if len(out) >= max_tokens:
            return out, "length"
        if tok.decode(errors="ignore").strip() in stop:
            return out, "stop"
        out.append(tok)
    return out, "stop"


def read_input(pb_utils, request, name, default=None):
    t = pb_utils.get_input_tensor_by_name(request, name)
    if t is None:
        return default
    return t.as_numpy()


def scalar(arr, default=None):
    if arr is None:
        return default
    v = np.asarray(arr).reshape(-1)[0]
    return v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v


def bytes_tensor(pb_utils, name, values, shape):
    return pb_utils.Tensor(name, np.array(values, dtype=np.object_).reshape(shape))


def sampling(raw):
    if raw is None:
        return {}
    text = scalar(raw)
    return json.loads(text) if text else {}


def record_cancel(prompt):
    """Leaves a marker where the prompt says (`marker=/path`), so a test can see the cancellation."""
    m = re.search(r"marker=([^\s<]+)", prompt)
    if m:
        with open(m.group(1), "w") as f:
            f.write("cancelled")
