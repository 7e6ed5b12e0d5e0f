"""vLLM-backend contract (see config.pbtxt); text from tests/triton/fake_llm.py."""

import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
import fake_llm as llm  # noqa: E402

FAIL_AFTER = None  # tokens before a mid-stream error (set by fail_midstream)
FAIL_FIRST = False  # error before any token (set by fail_first)


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            self.serve(request)
        return None

    def serve(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        if FAIL_FIRST:
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError("engine failed before generating")), flags=final)
            return
        prompt = llm.scalar(llm.read_input(pb_utils, request, "text_input"), "")
        stream = bool(llm.scalar(llm.read_input(pb_utils, request, "stream"), False))
        params = llm.sampling(llm.read_input(pb_utils, request, "sampling_parameters"))
        exclude = bool(llm.scalar(llm.read_input(pb_utils, request, "exclude_input_in_output"), False))
        want = {k: bool(llm.scalar(llm.read_input(pb_utils, request, "return_" + k), False))
                for k in ("finish_reason", "num_input_tokens", "num_output_tokens")}
        if stream and not exclude:
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                "exclude_input_in_output must be true when streaming")), flags=final)
            return
        stop = params.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        tokens, reason = llm.generate(prompt, int(params.get("max_tokens", 16)), stop)
        n_in = len(prompt.split())

        def response(text, finish, n_out):
            outs = [llm.bytes_tensor(pb_utils, "text_output", [text], [1])]
            if want["finish_reason"]:
                outs.append(llm.bytes_tensor(pb_utils, "finish_reason", [finish], [1]))
            if want["num_input_tokens"]:
                outs.append(pb_utils.Tensor("num_input_tokens", np.array([n_in], dtype=np.uint32)))
            if want["num_output_tokens"]:
                outs.append(pb_utils.Tensor("num_output_tokens", np.array([n_out], dtype=np.uint32)))
            return pb_utils.InferenceResponse(output_tensors=outs)

        if not stream:
            text = b"".join(tokens)
            if not exclude:
                text = prompt.encode() + text
            sender.send(response(text, reason, len(tokens)), flags=final)
            return
        slow = "slow" in llm.last_line(prompt)
        for i, tok in enumerate(tokens):
            if slow:
                time.sleep(0.1)
                if sender.is_cancelled():
                    llm.record_cancel(prompt)
                    sender.send(flags=final)
                    return
            if FAIL_AFTER is not None and i == FAIL_AFTER:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError("engine died mid-stream")), flags=final)
                return
            last = i == len(tokens) - 1
            sender.send(response(tok, reason if last else "None", 1), flags=final if last else 0)
        if not tokens:
            sender.send(response(b"", reason, 0), flags=final)
