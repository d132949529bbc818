"""The AutoML, handler, bucket and server operators' own logic, hook replaced.

The server operators' resume after a deferral (``execute_complete``) is not tested here: what they
carry across a deferral is being reworked, and is covered by the server-backed tests.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_mls.checks import SUMMARY_FIELDS
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSServerError, MLSValidationError
from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    MigrateBucketsOperator,
    StartAutoMLServerOperator,
    StopAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
)
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

from .fakes import FakeMLSHook, FakeStore, automl_model, context, manual_model

AUTO = automl_model(7, "churn-auto", "v1")
OTHER = automl_model(8, "churn-auto", "v2")
MANUAL = manual_model(12, "churn", "v1")
SOURCE = "def handler(x):\n    return {'score': 1}\n"


def run(op: Any, hook: FakeMLSHook, ctx: dict[str, Any] | None = None) -> Any:
    op.hook = hook
    return op.execute(ctx if ctx is not None else context(op))


def failure(op: Any, hook: FakeMLSHook) -> BaseException:
    with pytest.raises(AirflowFailException) as err:
        run(op, hook)
    assert err.value.__cause__ is not None
    return err.value.__cause__


def field_of(op: Any, hook: FakeMLSHook) -> str:
    cause = failure(op, hook)
    assert isinstance(cause, MLSValidationError), cause
    return cause.field


# ---- CreateAutoMLModelOperator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "sent"),
    [
        ({"dataset_id": "5"}, {"dataset_id": 5, "dataset_name": None}),
        ({"dataset_name": "ds"}, {"dataset_id": None, "dataset_name": "ds"}),
    ],
)
def test_create_automl_sends_the_dataset_and_returns_a_summary(dataset: dict, sent: dict) -> None:
    hook = FakeMLSHook()
    op = CreateAutoMLModelOperator(task_id="t", name="auto", version="v1", description="d", **dataset)
    ctx = context(op)
    result = run(op, hook, ctx)
    ((_, kwargs),) = hook.called("create_automl_model")
    assert {
        k: kwargs[k] for k in ("name", "version", "description", "dataset_id", "dataset_name", "if_exists")
    } == {
        "name": "auto",
        "version": "v1",
        "description": "d",
        "if_exists": "fail",
        **sent,
    }
    assert set(result) <= set(SUMMARY_FIELDS) and result["status"] == "TRAINING" and "dataset_id" in result
    assert ctx["ti"].xcoms["mls_link_mls_model"] == f"https://mls.example/models/{result['id']}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"if_exists": "update"}, "if_exists"),  # a training cannot be updated in place
        ({"dataset_id": "five"}, "dataset_id"),
        ({"dataset_id": -1}, "dataset_id"),
        ({"dataset_id": True}, "dataset_id"),
    ],
)
def test_create_automl_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    hook = FakeMLSHook()
    op = CreateAutoMLModelOperator(task_id="t", name="auto", version="v1", **kwargs)
    assert field_of(op, hook) == field
    assert hook.calls == []


def test_create_automl_skip_returns_the_existing_training() -> None:
    hook = FakeMLSHook(AUTO)
    result = run(
        CreateAutoMLModelOperator(task_id="t", name="churn-auto", version="v1", if_exists="skip"), hook
    )
    assert result["id"] == 7 and len(hook.models) == 1


def test_create_automl_retry_reconnects_to_the_training_it_started() -> None:
    store, hook = FakeStore(), FakeMLSHook()
    first = CreateAutoMLModelOperator(task_id="t", name="auto", version="v1", dataset_id=5)
    created = run(first, hook, context(first, store=store))
    retry = CreateAutoMLModelOperator(task_id="t", name="auto", version="v1", dataset_id=5)
    assert run(retry, hook, context(retry, try_number=2, store=store))["id"] == created["id"]
    assert hook.called("create_automl_model")[1][1]["known_id"] == created["id"]


# ---- UpdateAutoMLServerHandlerOperator --------------------------------------------------------------


def test_handler_from_source_replaces_it_without_a_lookup() -> None:
    hook = FakeMLSHook(AUTO)
    result = run(UpdateAutoMLServerHandlerOperator(task_id="t", model_id="7", handler=SOURCE), hook)
    assert hook.calls == [("update_automl_model_server_handler", (7, SOURCE), {})]
    assert result == {"model_id": 7, "source": "handler", "chars": len(SOURCE), "replaced": True}


def test_handler_from_a_file_on_the_worker(tmp_path: Any) -> None:
    path = tmp_path / "handler.py"
    path.write_text(SOURCE, encoding="utf-8")
    hook = FakeMLSHook(AUTO)
    op = UpdateAutoMLServerHandlerOperator(
        task_id="t", name="churn-auto", version="v1", handler_path=str(path)
    )
    result = run(op, hook)
    assert hook.names == ["get_automl_model", "update_automl_model_server_handler"]
    assert hook.handlers[7] == SOURCE
    assert result == {"model_id": 7, "source": str(path), "chars": len(SOURCE), "replaced": True}


def test_handler_copied_from_another_model() -> None:
    hook = FakeMLSHook(AUTO, OTHER)
    hook.handlers[7] = SOURCE
    result = run(
        UpdateAutoMLServerHandlerOperator(task_id="t", model_id=8, handler_from_model_id={"id": 7}), hook
    )
    assert hook.calls == [
        ("get_automl_model_server_handler", (7,), {}),
        ("update_automl_model_server_handler", (8, SOURCE), {}),
    ]
    assert result["source"] == "model 7"


@pytest.mark.parametrize("current", [SOURCE, None])
def test_handler_only_if_missing_keeps_the_models_own(current: str | None) -> None:
    hook = FakeMLSHook(AUTO)
    hook.handlers[7] = current
    op = UpdateAutoMLServerHandlerOperator(task_id="t", model_id=7, handler="x = 1\n", only_if_missing="true")
    result = run(op, hook)
    if current:
        assert result == {"model_id": 7, "source": "kept", "chars": len(SOURCE), "replaced": False}
        assert "update_automl_model_server_handler" not in hook.names
    else:
        assert result == {"model_id": 7, "source": "handler", "chars": 6, "replaced": True}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "handler"),
        ({"handler": SOURCE, "handler_path": "/h.py"}, "handler"),
        ({"handler_path": "/no/such/handler.py"}, "handler_path"),
        ({"handler_from_model_id": "seven"}, "handler_from_model_id"),
        ({"handler": SOURCE, "only_if_missing": "perhaps"}, "only_if_missing"),
    ],
)
def test_handler_bad_sources_name_the_field(kwargs: dict, field: str) -> None:
    hook = FakeMLSHook(AUTO)
    assert field_of(UpdateAutoMLServerHandlerOperator(task_id="t", model_id=7, **kwargs), hook) == field
    assert "update_automl_model_server_handler" not in hook.names


def test_handler_copy_from_a_model_without_one_names_the_field() -> None:
    hook = FakeMLSHook(AUTO, OTHER)
    op = UpdateAutoMLServerHandlerOperator(task_id="t", model_id=8, handler_from_model_id=7)
    assert field_of(op, hook) == "handler_from_model_id"
    assert "update_automl_model_server_handler" not in hook.names


def test_handler_of_a_manual_model_by_name_is_not_found() -> None:
    op = UpdateAutoMLServerHandlerOperator(task_id="t", name="churn", version="v1", handler=SOURCE)
    assert isinstance(failure(op, FakeMLSHook(MANUAL)), MLSNotFoundError)


# ---- MigrateBucketsOperator -------------------------------------------------------------------------


def bucket(id: int, model: int) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"b{id}",
        "description": "",
        "bucket_range": [0, 50],
        "prediction": {"id": id, "request": {"type": "online"}, "ml_model": model},
    }


def test_migrate_by_ids_with_a_prediction_type_reads_nothing() -> None:
    hook = FakeMLSHook(MANUAL, manual_model(13, "churn", "v2"))
    hook.buckets = [bucket(1, 12), bucket(2, 12), bucket(3, 99)]
    op = MigrateBucketsOperator(task_id="t", from_model_id="12", to_model_id=13, prediction_type="online")
    result = run(op, hook)
    assert hook.calls == [
        ("migrate_buckets", (12, {"id": 13}), {"prediction_type": "online", "static_value": None})
    ]
    assert result == {
        "from_model_id": 12,
        "to_model_id": 13,
        "prediction_type": "online",
        "buckets": [{"id": 1, "name": "b1", "ml_model": 13}, {"id": 2, "name": "b2", "ml_model": 13}],
    }


def test_migrate_to_an_automl_model_by_name_reads_its_type() -> None:
    hook = FakeMLSHook(MANUAL, AUTO)
    hook.buckets = [bucket(1, 12)]
    op = MigrateBucketsOperator(
        task_id="t", from_name="churn", from_version="v1", to_name="churn-auto", to_version="v1"
    )
    result = run(op, hook)
    assert hook.names == ["get_manual_model", "get_automl_model", "get_manual_model", "migrate_buckets"]
    (args, kwargs) = hook.called("migrate_buckets")[0]
    assert args[0] == 12 and args[1]["id"] == 7 and kwargs["prediction_type"] is None
    assert result["prediction_type"] == "automl" and result["to_model_id"] == 7


def test_migrate_to_static_and_to_empty_need_no_target() -> None:
    hook = FakeMLSHook(MANUAL)
    hook.buckets = [bucket(1, 12)]
    static = run(
        MigrateBucketsOperator(
            task_id="t", from_model_id=12, prediction_type="static", static_value={"s": 1}
        ),
        hook,
    )
    assert hook.calls[-1] == (
        "migrate_buckets",
        (12, None),
        {"prediction_type": "static", "static_value": {"s": 1}},
    )
    assert static["to_model_id"] is None and static["prediction_type"] == "static"
    empty = run(MigrateBucketsOperator(task_id="t", from_model_id=12, prediction_type="empty"), hook)
    assert empty["prediction_type"] == "empty" and empty["buckets"] == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "from_model_id"),
        ({"from_model_id": 12, "from_name": "churn", "from_version": "v1"}, "from_model_id"),
        ({"from_name": "churn"}, "from_version"),
        ({"from_model_id": 12, "to_model_id": "x", "prediction_type": "online"}, "to_model_id"),
        ({"from_model_id": 12, "to_name": "churn"}, "to_version"),
        ({"from_model_id": 12, "to_model_id": 13, "prediction_type": "canary"}, "prediction_type"),
        ({"from_model_id": 12, "prediction_type": "static"}, "static_value"),
    ],
)
def test_migrate_bad_input_names_the_field_and_sends_nothing(kwargs: dict, field: str) -> None:
    hook = FakeMLSHook(MANUAL)
    assert field_of(MigrateBucketsOperator(task_id="t", **kwargs), hook) == field
    assert hook.calls == []


# ---- StartAutoMLServerOperator / StopAutoMLServerOperator -------------------------------------------


def status_checks(hook: FakeMLSHook) -> list[int]:
    """Where in ``hook.calls`` the wait read the server's status (the readiness check's GET)."""
    return [
        i
        for i, (name, args, _) in enumerate(hook.calls)
        if name == "run" and args == ("GET", "/api/v1/models/7/automl_model_server")
    ]


def start(**kwargs: Any) -> StartAutoMLServerOperator:
    return StartAutoMLServerOperator(task_id="start", **{"model_id": 7, "poke_interval": 0, **kwargs})


def stop(**kwargs: Any) -> StopAutoMLServerOperator:
    return StopAutoMLServerOperator(task_id="stop", **{"model_id": 7, "poke_interval": 0, **kwargs})


def test_start_running_sends_no_start() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = "RUNNING"
    assert run(start(), hook) == {"model_id": 7, "status": "RUNNING", "acted": False}
    assert "start_automl_model_server" not in hook.names


@pytest.mark.parametrize("no_wait", [False, "False", "false"])
def test_start_without_waiting_returns_after_the_start(no_wait: Any) -> None:
    hook = FakeMLSHook(AUTO)
    result = run(start(wait_for_completion=no_wait), hook)
    assert result == {"model_id": 7, "status": "STARTING", "acted": True}
    assert hook.names == [
        "get_automl_model_server_status",
        "start_automl_model_server",
        "get_automl_model_server_status",
    ]


@pytest.mark.parametrize("before", ["STOPPED", "FAILED", "UNKNOWN", "SOMETHING_NEW"])
def test_start_waits_in_the_worker_until_running(before: str) -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = [before, "STARTING", "STARTING", "RUNNING"]
    assert run(start(), hook) == {"model_id": 7, "status": "RUNNING", "acted": True}
    assert hook.names.count("start_automl_model_server") == 1
    assert len(status_checks(hook)) == 3  # the status read before the start, then 3 checks


def test_start_while_stopping_waits_for_stopped_then_starts() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = ["STOPPING", "STOPPING", "STOPPED", "STARTING", "RUNNING"]
    assert run(start(), hook) == {"model_id": 7, "status": "RUNNING", "acted": True}
    start_at = hook.names.index("start_automl_model_server")
    checks = status_checks(hook)
    assert len([i for i in checks if i < start_at]) == 2  # waited for STOPPED before the start
    assert len(checks) == 4


@pytest.mark.parametrize("soft_fail", [False, True])
def test_start_that_fails_after_this_tries_start_fails_at_once(soft_fail: bool) -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = ["STOPPED", "STARTING", "FAILED"]
    op = start(soft_fail=soft_fail)
    with pytest.raises(
        AirflowSkipException if soft_fail else AirflowFailException, match="FAILED after the start"
    ):
        run(op, hook)
    assert hook.names.count("start_automl_model_server") == 1


@pytest.mark.parametrize("soft_fail", [False, True])
def test_start_stuck_starting_times_out(soft_fail: bool) -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = "STARTING"
    with pytest.raises(
        AirflowSkipException if soft_fail else AirflowSensorTimeout, match="timed out after 0"
    ):
        run(start(timeout=0, soft_fail=soft_fail), hook)


def test_start_of_a_manual_or_unknown_model_fails_at_once() -> None:
    assert isinstance(
        failure(start(model_id=None, name="churn", version="v1"), FakeMLSHook(MANUAL)), MLSNotFoundError
    )
    hook = FakeMLSHook()
    with pytest.raises(AirflowFailException):
        run(start(model_id=404), hook)
    assert "start_automl_model_server" not in hook.names


@pytest.mark.parametrize("cls", [start, stop])
def test_bad_wait_for_completion_and_reference_name_the_field(cls: Any) -> None:
    hook = FakeMLSHook(AUTO)
    assert field_of(cls(wait_for_completion="maybe"), hook) == "wait_for_completion"
    assert field_of(cls(model_id="seven"), hook) == "model_id"
    assert field_of(cls(model_id=None, name="churn-auto"), hook) == "version"
    assert hook.calls == []


def test_a_transient_error_is_not_soft_failed() -> None:
    hook = FakeMLSHook(AUTO)
    hook.fail("get_automl_model_server_status", MLSServerError("bad gateway", code=502))
    with pytest.raises(MLSServerError):
        run(start(soft_fail=True), hook)


def test_start_deferrable_acts_then_defers_to_the_check_trigger() -> None:
    hook = FakeMLSHook(AUTO)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        run(start(deferrable=True, poke_interval=30, timeout=600), hook)
    assert hook.names == ["get_automl_model_server_status", "start_automl_model_server"]
    assert deferred.value.method_name == "execute_complete"
    assert 600 <= deferred.value.timeout.total_seconds() <= 700
    trigger = deferred.value.trigger
    assert isinstance(trigger, MLSCheckTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    assert kwargs["check"] == {"kind": "server_status", "model_id": 7, "wait_while": ["STOPPED", "STARTING"]}
    assert (kwargs["mls_conn_id"], kwargs["poke_interval"]) == ("mls_default", 30.0)
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    assert kwargs["stop_server_on_kill"] == 7  # cancel_on_kill: a kill of the deferred task stops it


def test_start_deferrable_without_cancel_on_kill_stops_nothing_on_kill() -> None:
    hook = FakeMLSHook(AUTO)
    with pytest.raises(TaskDeferred) as deferred:
        run(start(deferrable=True, cancel_on_kill=False), hook)
    assert "stop_server_on_kill" not in deferred.value.trigger.serialize()[1]


@pytest.mark.parametrize("status", ["RUNNING", "FAILED"])
def test_start_deferrable_settled_on_the_worker_does_not_defer(status: str) -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = status
    if status == "RUNNING":
        assert run(start(deferrable=True), hook)["acted"] is False
    else:  # FAILED before this try: started again, and wait_for_completion=False returns
        assert run(start(deferrable=True, wait_for_completion=False), hook)["acted"] is True


def test_killed_in_the_worker_stops_the_server_it_started() -> None:
    hook = FakeMLSHook(AUTO)
    op = start(wait_for_completion=False)
    run(op, hook)
    op.on_kill()
    assert hook.names[-1] == "stop_automl_model_server"
    kept = start(wait_for_completion=False, cancel_on_kill=False)
    hook2 = FakeMLSHook(AUTO)
    run(kept, hook2)
    kept.on_kill()
    assert "stop_automl_model_server" not in hook2.names


def test_killed_without_having_started_stops_nothing() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = "RUNNING"
    op = start()
    run(op, hook)
    op.on_kill()
    assert "stop_automl_model_server" not in hook.names


def test_a_retry_reports_the_start_its_earlier_try_sent() -> None:
    store, hook = FakeStore(), FakeMLSHook(AUTO)
    first = start(wait_for_completion=False)
    run(first, hook, context(first, store=store))
    hook.server[7] = "RUNNING"
    retry = start()
    assert run(retry, hook, context(retry, try_number=2, store=store)) == {
        "model_id": 7,
        "status": "RUNNING",
        "acted": True,
    }
    assert hook.names.count("start_automl_model_server") == 1


def test_stop_without_waiting_is_the_default() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = "RUNNING"
    assert run(stop(), hook) == {"model_id": 7, "status": "STOPPING", "acted": True}
    assert hook.names.count("stop_automl_model_server") == 1


def test_stop_already_stopped_sends_no_stop() -> None:
    hook = FakeMLSHook(AUTO)
    assert run(stop(wait_for_completion=True), hook) == {"model_id": 7, "status": "STOPPED", "acted": False}
    assert "stop_automl_model_server" not in hook.names


def test_stop_and_wait_in_the_worker() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = ["RUNNING", "STOPPING", "STOPPED"]
    assert run(stop(wait_for_completion="true"), hook) == {"model_id": 7, "status": "STOPPED", "acted": True}


def test_stop_deferrable_defers_while_stopping() -> None:
    hook = FakeMLSHook(AUTO)
    hook.server[7] = "RUNNING"
    with pytest.raises(TaskDeferred) as deferred:
        run(stop(deferrable=True, wait_for_completion=True), hook)
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["check"] == {
        "kind": "server_status",
        "model_id": 7,
        "wait_while": ["STOPPING", "RUNNING", "STARTING"],
    }
    assert "stop_server_on_kill" not in kwargs
