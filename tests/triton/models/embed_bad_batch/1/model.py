"""embed with DROP_ONE: answers one row short."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location("embed_model", os.path.join(os.path.dirname(__file__), "..", "..", "embed", "1", "model.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_mod.DROP_ONE = True
TritonPythonModel = _mod.TritonPythonModel
