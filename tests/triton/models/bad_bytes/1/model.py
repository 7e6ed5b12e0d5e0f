"""Answers with a malformed BYTES payload: a length of 0x7fffffff followed by three bytes."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            raw = np.frombuffer(b"\xff\xff\xff\x7fabc", dtype=np.uint8)
            out = pb_utils.Tensor("text_output", raw.copy())
            request.get_response_sender().send(
                pb_utils.InferenceResponse(output_tensors=[out]), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
