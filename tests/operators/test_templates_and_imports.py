"""Template fields of every operator (rendered with Jinja, then run), and what importing the operators costs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from airflow_provider_mls.operators import mls as operators
from airflow_provider_mls.operators.mls import (
    CreateManualModelOperator,
    DeleteModelOperator,
    StartAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
    UpdateManualModelOperator,
    UpdateModelMetaOperator,
)

from ._support import uniq

if TYPE_CHECKING:
    from ._support import Mls

pytestmark = pytest.mark.timeout(60)

OPERATORS = [getattr(operators, name) for name in operators.__all__]
# Arguments that are deliberately not templated: sensor knobs of the waiting operators, and handler
# source, whose braces Jinja would eat (handler_path is templated instead).
NOT_TEMPLATED = {"timeout", "poke_interval", "deferrable", "soft_fail", "handler", "cancel_on_kill"}


def user_arguments(cls: type) -> set[str]:
    """The keyword arguments that the MLS classes of ``cls`` (not Airflow's) declare."""
    args: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("airflow_provider_mls") and "__init__" in vars(klass):
            params = inspect.signature(vars(klass)["__init__"]).parameters.values()
            args |= {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return args


def test_all_operators_are_exported() -> None:
    assert len(OPERATORS) == 10
    assert {cls.__name__ for cls in OPERATORS} == set(operators.__all__)


# Where each task lives now (its resource's module), and the first import paths, which keep working.
MODULES = {
    "airflow_provider_mls.operators.models": [
        "CreateManualModelOperator",
        "DeleteModelOperator",
        "UpdateManualModelOperator",
        "UpdateModelComponentsOperator",
        "UpdateModelMetaOperator",
    ],
    "airflow_provider_mls.operators.automl": [
        "CreateAutoMLModelOperator",
        "StartAutoMLServerOperator",
        "StopAutoMLServerOperator",
        "UpdateAutoMLServerHandlerOperator",
    ],
    "airflow_provider_mls.operators.buckets": ["MigrateBucketsOperator"],
    "airflow_provider_mls.sensors.automl": ["AutoMLTrainingDoneSensor"],
    "airflow_provider_mls.sensors.model_registry": ["OnlinePredictionReadySensor"],
    "airflow_provider_mls.sensors.prediction_table": ["BatchPredictionReadySensor"],
}
FIRST_PATHS = {
    "airflow_provider_mls.operators.mls": [
        "CreateAutoMLModelOperator",
        "CreateManualModelOperator",
        "DeleteModelOperator",
        "MigrateBucketsOperator",
        "StartAutoMLServerOperator",
        "StopAutoMLServerOperator",
        "UpdateAutoMLServerHandlerOperator",
        "UpdateManualModelOperator",
        "UpdateModelComponentsOperator",
        "UpdateModelMetaOperator",
    ],
    "airflow_provider_mls.sensors.mls": [
        "AutoMLTrainingDoneSensor",
        "BatchPredictionReadySensor",
        "OnlinePredictionReadySensor",
    ],
}


def test_every_task_lives_in_its_resource_module_and_keeps_its_first_import_path() -> None:
    import importlib

    home = {name: module for module, names in MODULES.items() for name in names}
    for module_name, names in MODULES.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == names, module_name
        assert all(getattr(module, name).__module__ == module_name for name in names)
    for module_name, names in FIRST_PATHS.items():
        module = importlib.import_module(module_name)
        assert module.__all__ == names, module_name  # unchanged
        for name in names:
            assert getattr(module, name) is getattr(importlib.import_module(home[name]), name)
    # Airflow's provider listing names each resource module.
    from airflow_provider_mls.get_provider_info import get_provider_info

    info = get_provider_info()
    listed = {m for section in ("operators", "sensors") for e in info[section] for m in e["python-modules"]}
    assert set(MODULES) <= listed, set(MODULES) - listed
    # Triggers a previous release deferred to keep their classpaths.
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger
    from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

    assert MLSCheckTrigger.__module__ == "airflow_provider_mls.triggers.mls"
    assert ModelPackageApprovalTrigger.__module__ == "airflow_provider_mls.triggers.sagemaker_registry"


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda cls: cls.__name__)
def test_template_fields_cover_every_user_argument(cls: type) -> None:
    fields = set(cls.template_fields)
    args = user_arguments(cls)
    assert "mls_conn_id" in fields
    assert args - NOT_TEMPLATED <= fields, sorted(args - NOT_TEMPLATED - fields)
    assert len(cls.template_fields) == len(fields)  # no duplicates
    # each template field is an attribute set verbatim in __init__ (Airflow renders it in place)
    assert fields <= args
    if cls is UpdateAutoMLServerHandlerOperator:
        assert "handler" not in fields and "handler_path" in fields


def test_arguments_are_stored_verbatim() -> None:
    """Jinja is still raw in __init__: nothing is validated or coerced there."""
    op = UpdateManualModelOperator(task_id="t", model_id="{{ params.mid }}", description="{{ params.d }}")
    assert (op.model_id, op.description) == ("{{ params.mid }}", "{{ params.d }}")
    op = StartAutoMLServerOperator(task_id="t", model_id="{{ x }}", wait_for_completion="{{ params.wait }}")
    assert (op.model_id, op.wait_for_completion) == ("{{ x }}", "{{ params.wait }}")


def test_rendered_update(mls: Mls) -> None:
    name = uniq("tmpl")
    model = mls.manual(name, description="old", model_meta={"a": 1})
    op = UpdateManualModelOperator(
        task_id="t",
        model_id="{{ params.mid }}",
        description="run of {{ ds }}",
        features="{{ params.features }}",
        model_meta={"trained_on": "{{ ds }}", "n": 3},
    )
    op.render_template_fields({"params": {"mid": model["id"], "features": "a,b"}, "ds": "2024-05-01"})
    assert op.model_id == str(model["id"])  # a rendered template is a string
    op.execute({})
    stored = mls.model(model["id"])
    assert stored["description"] == "run of 2024-05-01"
    assert stored["features"] == "a,b"
    assert stored["model_meta"] == {"trained_on": "2024-05-01", "n": 3}


def test_rendered_create_meta_and_delete(mls: Mls) -> None:
    sfx = uniq("sfx")
    context = {"params": {"sfx": sfx, "mode": "skip", "merge": True, "ignore": True}}
    create = CreateManualModelOperator(
        task_id="t",
        name="m-{{ params.sfx }}",
        version="v1",
        if_exists="{{ params.mode }}",
        creator="{{ params.sfx }}",
    )
    create.render_template_fields(context)
    model = create.execute({})
    assert (model["name"], mls.model(model["id"])["creator"]) == (f"m-{sfx}", sfx)
    assert create.execute({})["id"] == model["id"]  # rendered "skip"
    meta = UpdateModelMetaOperator(
        task_id="t",
        name="m-{{ params.sfx }}",
        version="v1",
        model_meta={"k": "{{ params.sfx }}"},
        partial_update="{{ params.merge }}",
        remove_keys=["{{ 'gone' }}"],
    )
    meta.render_template_fields(context)
    assert meta.partial_update == "True"
    assert meta.execute({})["model_meta_keys"] == ["k"]
    assert mls.model(model["id"])["model_meta"] == {"k": sfx}
    delete = DeleteModelOperator(
        task_id="t", model_id="{{ params.mid }}", ignore_missing="{{ params.ignore }}"
    )
    delete.render_template_fields({**context, "params": {**context["params"], "mid": model["id"]}})
    assert delete.execute({})["deleted"] is True
    assert delete.execute({})["deleted"] is False  # "True" rendered: a re-run is fine


def test_rendered_server_operator(mls: Mls) -> None:
    model = mls.automl(uniq("tmpl-srv"))
    op = StartAutoMLServerOperator(
        task_id="t",
        name="{{ params.name }}",
        version="{{ params.version }}",
        wait_for_completion="{{ params.wait }}",
    )
    op.render_template_fields({"params": {"name": model["name"], "version": "v1", "wait": False}})
    assert op.wait_for_completion == "False"
    assert op.execute({}) == {"model_id": model["id"], "status": "STARTING", "acted": True}


def test_handler_source_is_not_rendered(mls: Mls) -> None:
    model = mls.automl(uniq("tmpl-h"), trained=False)
    source = "def handler(x):\n    return {'tpl': '{{ not jinja }}', 'set': {1, 2}}\n"
    op = UpdateAutoMLServerHandlerOperator(task_id="t", model_id="{{ params.mid }}", handler=source)
    op.render_template_fields({"params": {"mid": model["id"]}})
    assert op.handler == source
    op.execute({})
    assert mls.handler(model["id"]) == source


# ---- import cost ------------------------------------------------------------------------------------

IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys
    # What airflow_provider_mls._compat needs from Airflow itself: the baseline this package cannot avoid.
    from airflow.providers.common.compat.sdk import (
        AirflowException, AirflowFailException, AirflowSensorTimeout, AirflowSkipException, BaseHook,
        BaseOperator, BaseSensorOperator, PokeReturnValue, conf, mask_secret,
    )
    from airflow.triggers.base import BaseTrigger, TriggerEvent
    baseline = set(sys.modules)
    import airflow_provider_mls.operators.mls as ops
    import airflow_provider_mls.sensors.mls
    # What a DAG file does at parse time: build the tasks.
    ops.CreateManualModelOperator(task_id="a", name="n", version="v")
    ops.UpdateManualModelOperator(task_id="b", model_id=1, description="d")
    ops.UpdateModelMetaOperator(task_id="c", model_id=1, model_meta={})
    ops.UpdateModelComponentsOperator(task_id="d", model_id=1, components=[])
    ops.DeleteModelOperator(task_id="e", model_id=1)
    ops.CreateAutoMLModelOperator(task_id="f", name="n", version="v", dataset_id=1)
    ops.UpdateAutoMLServerHandlerOperator(task_id="g", model_id=1, handler="x = 1")
    ops.MigrateBucketsOperator(task_id="h", from_model_id=1, to_model_id=2)
    ops.StartAutoMLServerOperator(task_id="i", model_id=1, deferrable=True)
    ops.StopAutoMLServerOperator(task_id="j", model_id=1)
    print(json.dumps({"baseline": sorted(baseline), "now": sorted(sys.modules)}))
    """
)
HEAVY = ("requests", "httpx", "boto3", "botocore", "fastapi", "starlette", "uvicorn")
OURS_NOT_AT_PARSE_TIME = (
    "airflow_provider_mls.hooks",
    "airflow_provider_mls.hooks.mls",
    "airflow_provider_mls.hooks.mls_async",
    "airflow_provider_mls.triggers.mls",
    "airflow_provider_mls.local",
)


def test_importing_and_building_operators_stays_light() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    baseline, now = set(modules["baseline"]), set(modules["now"])
    added = now - baseline
    assert "airflow_provider_mls.operators.mls" in added
    pulled = sorted(m for m in added if m.split(".")[0] in HEAVY)
    assert pulled == [], f"the operator/sensor modules import {pulled}"
    assert [m for m in OURS_NOT_AT_PARSE_TIME if m in now] == []
