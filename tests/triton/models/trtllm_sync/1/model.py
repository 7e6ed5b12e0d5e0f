"""trtllm_ensemble in "sync" mode: not decoupled."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location("trtllm_model", os.path.join(os.path.dirname(__file__), "..", "..", "trtllm_ensemble", "1", "model.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_mod.MODE = "sync"
TritonPythonModel = _mod.TritonPythonModel
