"""The reference client (the pinned `sktmls` SDK) as a worker of the differential conformance test.

Runs in the SDK's own virtualenv (`make venv-sktmls`), so it imports nothing of ours.
usage: python sktmls_worker.py URL USERNAME PASSWORD RECORD_FILE

Reads one JSON command a line on stdin and answers one JSON line on stdout:
``{"call": "models.update_manual_model", "args": {...}, "intent": false}`` ->
``{"start": n, "end": m, "error": null | "TypeError: ...", "result": ...}`` where requests
``start`` to ``m`` of the local server's record file (lines) are what the call sent.

In ``args``, ``{"$manual": dict}``, ``{"$automl": dict}``, ``{"$component": dict}`` and
``{"$dataset": dict}`` become the SDK's objects built from that dict (what a user holds after a
read); anything else is passed as it is. ``call`` is ``<client>.<method>`` with the clients
``models``, ``components``, ``datasets``, ``experiments``, or one of the routines below.
``intent: true`` runs the call with the SDK's evident intent where 2026.10.7 is broken (see
``INTENT``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
import types
from contextlib import ExitStack
from unittest import mock

import sktmls_light
from sktmls import MLSENV, MLSRuntimeENV
from sktmls.components import Component, ComponentClient
from sktmls.datasets import Dataset, DatasetClient
from sktmls.experiments import ExperimentClient
from sktmls.models.ml_model import AutoMLModel, ManualModel, MLModelClient

# sktmls/models/automl/__init__ pulls in BigQuery: load the helper's own file only.
_spec = importlib.util.spec_from_file_location(
    "sktmls.models.automl.automl_helper", os.path.join(sktmls_light.models_dir, "automl", "automl_helper.py")
)
automl_helper = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(automl_helper)

URL, USER, PASSWORD, RECORD = sys.argv[1:5]
ENVS = ("dev", "stg", "prd", "dev_land", "stg_land", "prd_land", "local")


def _point(c):
    c.config.MLS_AB_API_URL = dict.fromkeys(ENVS, URL)  # the SDK's own table, pointed at the local server
    return c


def client(cls):
    return _point(cls(env=MLSENV.STG, runtime_env=MLSRuntimeENV.LOCAL, username=USER, password=PASSWORD))


CLIENTS = {
    "models": client(MLModelClient),
    "components": client(ComponentClient),
    "datasets": client(DatasetClient),
    "experiments": client(ExperimentClient),
}
OBJECTS = {"$manual": ManualModel, "$automl": AutoMLModel, "$component": Component, "$dataset": Dataset}


def build(value):
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in OBJECTS:
        kind, data = next(iter(value.items()))
        return OBJECTS[kind](**data)
    if isinstance(value, list):
        return [build(v) for v in value]
    if isinstance(value, dict):
        return {k: build(v) for k, v in value.items()}
    return value


def summary(value):
    """A JSON-safe view of what the SDK returned."""
    if isinstance(value, list):
        return [summary(v) for v in value]
    if hasattr(value, "get") and callable(value.get) and not isinstance(value, dict):
        try:
            return json.loads(json.dumps(value.get(), default=str))
        except TypeError:
            return repr(value)
    if isinstance(value, bool | int | str | float) or value is None:
        return value
    return type(value).__name__


def automl_error(id):
    """``AutoMLModel.get_error`` of a fresh read: what a user does to learn why a training failed."""
    return CLIENTS["models"].get_automl_model(id=id).get_error()


def upgrade_deployment(prev_model, next_model):
    """``AutoMLHelper.upgrade_deployment``, its minute-long sleeps skipped (the requests are the same)."""
    helper = automl_helper.AutoMLHelper(MLSENV.STG, MLSRuntimeENV.LOCAL, USER, PASSWORD)
    _point(helper._AutoMLHelper__model_client)
    _point(helper._AutoMLHelper__experiment_client)
    no_sleep = types.SimpleNamespace(sleep=lambda seconds: None)
    with mock.patch.object(automl_helper, "time", no_sleep):
        return helper.upgrade_deployment(prev_model=prev_model, next_model=next_model)


ROUTINES = {"automl_error": automl_error, "upgrade_deployment": upgrade_deployment}


def _component_get(self, key=None):
    return self.__dict__ if key is None else self.__dict__.get(key)


# Where 2026.10.7 is broken, what it evidently means: `update_manual_model` builds the PUT's
# `components` with `component.get("name")`, but `Component.get()` takes no argument (TypeError
# for any model that has components, before a request is sent); it means the component's name.
INTENT = {
    "Component.get": lambda stack: stack.enter_context(mock.patch.object(Component, "get", _component_get))
}


def lines() -> int:
    try:
        with open(RECORD, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def run(command):
    name = command["call"]
    fn = ROUTINES.get(name)
    if fn is None:
        client_name, method = name.split(".", 1)
        fn = getattr(CLIENTS[client_name], method)
    args = build(command.get("args") or {})
    with ExitStack() as stack:
        if command.get("intent"):
            for patch in INTENT.values():
                patch(stack)
        start = lines()
        try:
            result, error = summary(fn(**args)), None
        except Exception as exc:  # reported to the test, which decides
            result, error = None, f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        end = lines()
    return {"start": start, "end": end, "error": error, "result": result}


def main() -> None:
    print(json.dumps({"ready": True, "sktmls": getattr(sktmls_light.sktmls, "__version__", "?")}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(run(json.loads(line)), default=str), flush=True)


if __name__ == "__main__":
    main()
