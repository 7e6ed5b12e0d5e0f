"""TensorRT-LLM ensemble contract (see config.pbtxt); text from tests/triton/fake_llm.py.

MODE "ensemble": decoupled, delta text. "sync": not decoupled, one response. "bls": decoupled,
cumulative text, then a separate response with no outputs carrying the final flag.
"""

import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
import fake_llm as llm  # noqa: E402

MODE = "ensemble"


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            r = self.serve(request)
            if MODE == "sync":
                responses.append(r)
        return responses if MODE == "sync" else None

    def serve(self, request):
        get = lambda name, default=None: llm.scalar(llm.read_input(pb_utils, request, name), default)  # noqa: E731
        prompt = get("text_input", "")
        max_tokens = get("max_tokens")
        stream = bool(get("stream", False))
        exclude = bool(get("exclude_input_in_output", False))
        raw_stop = llm.read_input(pb_utils, request, "stop_words")
        stop = [s.decode() for s in np.asarray(raw_stop).reshape(-1)] if raw_stop is not None else []
        text_in = llm.read_input(pb_utils, request, "text_input")
        if np.asarray(text_in).ndim != 2:
            return self.fail(request, "text_input must have a batch dimension: [1, 1]")
        tokens, _ = llm.generate(prompt, int(max_tokens), stop)

        def out(text):
            return pb_utils.InferenceResponse(output_tensors=[
                llm.bytes_tensor(pb_utils, "text_output", [text], [1, 1]),
                pb_utils.Tensor("cum_log_probs", np.zeros((1, 1), dtype=np.float32)),
            ])

        if MODE == "sync" or not stream:
            text = b"".join(tokens)
            if not exclude:
                text = prompt.encode() + text
            if MODE == "sync":
                return out(text)
            request.get_response_sender().send(out(text), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return None
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        so_far = b""
        for i, tok in enumerate(tokens):
            so_far += tok
            if MODE == "bls":
                sender.send(out(so_far))
            else:
                sender.send(out(tok), flags=final if i == len(tokens) - 1 else 0)
        if MODE == "bls" or not tokens:
            sender.send(flags=final)
        return None

    def fail(self, request, message):
        err = pb_utils.InferenceResponse(error=pb_utils.TritonError(message))
        if MODE == "sync":
            return err
        request.get_response_sender().send(err, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
