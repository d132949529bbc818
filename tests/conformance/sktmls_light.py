"""The pinned `sktmls` SDK's HTTP clients without its ML stack, for the scripts run in its virtualenv.

Imported by `sktmls_flow.py` and `sktmls_worker.py` (run as scripts, so their folder is on the path);
imports nothing of ours. The SDK's package imports pull in torch, numpy, lightgbm, ... at import
time; none of it is used by the HTTP clients driven here, so those modules are stand-ins.
"""

from __future__ import annotations

import os
import sys
import types
from unittest import mock

for heavy in (
    "torch",
    "numpy",
    "pandas",
    "lightgbm",
    "xgboost",
    "catboost",
    "autogluon",
    "autogluon.tabular",
):
    sys.modules.setdefault(heavy, mock.MagicMock(name=heavy))

import sktmls  # noqa: E402

models_dir = os.path.join(os.path.dirname(sktmls.__file__), "models")
_models_pkg = types.ModuleType("sktmls.models")
_models_pkg.__path__ = [models_dir]
sys.modules["sktmls.models"] = _models_pkg  # skip sktmls/models/__init__ (numpy models)

from sktmls.models import ml_model  # noqa: E402

for _name in ("AutoMLModel", "ManualModel", "MLModelClient", "MLModelStatus", "MLModel"):
    setattr(_models_pkg, _name, getattr(ml_model, _name))
