"""Jinja templating of every public task: each template field renders, and rendered values reach the hook.

The tasks are found by walking the operator and sensor packages (as the signature test does), so a
task added or moved to another module is covered without a change here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, BaseOperator

import airflow_provider_mls.operators
import airflow_provider_mls.sensors
from airflow_provider_mls.operators.mls import (
    DeleteModelOperator,
    StartAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
    UpdateManualModelOperator,
    UpdateModelMetaOperator,
)
from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator
from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor

from .fakes import FakeMLSHook, FakeTables, context, manual_model


def public_tasks() -> list[type]:
    found: dict[str, type] = {}
    for package in (airflow_provider_mls.operators, airflow_provider_mls.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name in getattr(module, "__all__", []):
                obj = getattr(module, name)
                if isinstance(obj, type) and issubclass(obj, BaseOperator):
                    found[obj.__name__] = obj
    return [found[key] for key in sorted(found)]


TASKS = public_tasks()


def required(cls: type) -> dict[str, Any]:
    """A value for every argument of the task's own ``__init__`` that has no default."""
    params = inspect.signature(vars(cls)["__init__"]).parameters.items()
    return {
        name: f"given-{name}"
        for name, p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    }


def test_every_public_task_is_found() -> None:
    assert len(TASKS) >= 20
    assert {"CreateManualModelOperator", "ModelPackageApprovedSensor", "LoadPredictionTableOperator"} <= {
        cls.__name__ for cls in TASKS
    }


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.__name__)
def test_every_template_field_renders(cls: type) -> None:
    values = {field: f"{{{{ params.prefix }}}}-{field}-{{{{ ds }}}}" for field in cls.template_fields}
    op = cls(task_id="render", **{**required(cls), **values})
    assert {field: getattr(op, field) for field in values} == values  # stored verbatim until rendered
    op.render_template_fields({"params": {"prefix": "p"}, "ds": "2026-12-06"})
    assert {field: getattr(op, field) for field in values} == {
        field: f"p-{field}-2026-12-06" for field in values
    }


@pytest.mark.parametrize("cls", TASKS, ids=lambda cls: cls.__name__)
def test_nested_values_render_inside_dicts_and_lists(cls: type) -> None:
    fields = [f for f in cls.template_fields if f not in ("mls_conn_id", "aws_conn_id")]
    nested = {"k": ["{{ params.a }}", {"deep": "{{ params.b }}"}]}
    op = cls(task_id="render", **{**required(cls), fields[0]: nested})
    op.render_template_fields({"params": {"a": "A", "b": "B"}})
    assert getattr(op, fields[0]) == {"k": ["A", {"deep": "B"}]}
    assert nested == {"k": ["{{ params.a }}", {"deep": "{{ params.b }}"}]}  # the DAG's own value kept


def test_a_rendered_id_and_flags_reach_the_hook_as_values() -> None:
    hook = FakeMLSHook(manual_model(12, "churn", "v1", model_meta={"a": 1}, table="t"))
    op = UpdateModelMetaOperator(
        task_id="meta",
        model_id="{{ ti.xcom_pull('deploy')['id'] }}",
        model_meta={"trained_on": "{{ ds }}", "n": 3},
        partial_update="{{ params.merge }}",
        remove_keys=["{{ params.gone }}"],
    )

    class TI:
        def xcom_pull(self, task_id: str) -> Any:
            return {"deploy": {"id": 12, "name": "churn"}}[task_id]

    op.render_template_fields({"ti": TI(), "ds": "2026-12-06", "params": {"merge": True, "gone": "a"}})
    assert (op.model_id, op.partial_update) == ("12", "True")  # rendered text
    op.hook = hook
    op.execute(context(op))
    assert hook.calls == [
        (
            "update_manual_model_meta",
            (12, {"trained_on": "2026-12-06", "n": 3}),
            {"partial_update": True, "remove_keys": ["a"]},
        )
    ]


def test_native_rendering_hands_objects_to_the_hook() -> None:
    with DAG(
        "native",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        render_template_as_native_obj=True,
    ) as dag:
        op = LoadPredictionTableOperator(task_id="load", table="{{ params.table }}", rows="{{ params.rows }}")
    rows = [{"user_id": "a", "score": 1}]
    op.render_template_fields({"params": {"table": "scores", "rows": rows}}, dag.get_template_env())
    assert op.rows == rows
    tables = FakeTables()
    op.tables = tables
    assert op.execute(context(op)) == {"table": "scores", "rows": 1}
    assert tables.calls[0][1] == ("scores", rows)


def test_rendered_text_of_a_list_is_parsed_by_the_task() -> None:
    op = LoadPredictionTableOperator(task_id="load", table="scores", rows="{{ params.rows | tojson }}")
    op.render_template_fields({"params": {"rows": [{"user_id": "a"}]}})
    tables = FakeTables()
    op.tables = tables
    assert op.execute(context(op))["rows"] == 1


def test_rendered_flags_of_the_wait_operators() -> None:
    hook = FakeMLSHook(manual_model(7, "auto", "v1", model_type="automl"))
    op = StartAutoMLServerOperator(
        task_id="start", name="{{ params.name }}", version="v1", wait_for_completion="{{ params.wait }}"
    )
    op.render_template_fields({"params": {"name": "auto", "wait": False}})
    assert op.wait_for_completion == "False"
    op.hook = hook
    assert op.execute(context(op)) == {"model_id": 7, "status": "STARTING", "acted": True}
    delete = DeleteModelOperator(
        task_id="d", model_id="{{ params.id }}", ignore_missing="{{ params.ignore }}"
    )
    delete.render_template_fields({"params": {"id": 404, "ignore": True}})
    delete.hook = FakeMLSHook()
    assert delete.execute(context(delete)) == {"id": 404, "deleted": False, "table_dropped": False}


def test_handler_source_is_never_rendered() -> None:
    source = "def handler(x):\n    return {'tpl': '{{ not jinja }}', 'set': {1, 2}}\n"
    op = UpdateAutoMLServerHandlerOperator(task_id="h", model_id="{{ params.id }}", handler=source)
    op.render_template_fields({"params": {"id": 7}})
    assert op.handler == source and op.model_id == "7"


def test_a_sensor_renders_before_its_first_check() -> None:
    hook = FakeMLSHook()
    hook.answers = {
        "/api/v1/dynamodb/tables/scores_20261206/is_active": {"is_active": True},
        "/api/v1/dynamodb/tables/scores_20261206/is_loading": {"is_loading": False},
    }
    op = BatchPredictionReadySensor(task_id="wait", table="scores_{{ ds_nodash }}")
    op.render_template_fields({"ds_nodash": "20261206"})
    op.hook = hook
    assert op.poke(context(op)).xcom_value == {"table": "scores_20261206", "model_id": None}


def test_update_with_rendered_empty_string_clears_the_field() -> None:
    hook = FakeMLSHook(manual_model(12, "churn", "v1", table="t"))
    op = UpdateManualModelOperator(task_id="u", model_id=12, table="{{ params.table }}")
    op.render_template_fields({"params": {"table": ""}})
    op.hook = hook
    op.execute(context(op))
    assert hook.calls == [("update_manual_model", (12,), {"table": ""})]
