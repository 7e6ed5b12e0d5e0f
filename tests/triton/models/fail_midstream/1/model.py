"""vllm_chat that fails after two streamed tokens."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location("vllm_chat_model", os.path.join(os.path.dirname(__file__), "..", "..", "vllm_chat", "1", "model.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_mod.FAIL_AFTER = 2
TritonPythonModel = _mod.TritonPythonModel
