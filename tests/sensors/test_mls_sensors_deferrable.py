"""The MLS sensors with ``deferrable=True``: check once on the worker, then wait in MLSCheckTrigger."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mls._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_mls.bases import DEFERRAL_TIMEOUT_GRACE
from airflow_provider_mls.checks import SUMMARY_FIELDS, TrainingDoneCheck
from airflow_provider_mls.exceptions import MLSError
from airflow_provider_mls.sensors.mls import (
    AutoMLTrainingDoneSensor,
    BatchPredictionReadySensor,
    OnlinePredictionReadySensor,
)
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_mls._compat import TriggerEvent
    from tests.sensors.conftest import Admin, Calls

    CountCalls = Callable[[Any], Calls]
    RunTrigger = Callable[[MLSCheckTrigger], list[TriggerEvent]]


def defer(sensor: Any) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as err:
        sensor.execute({})
    return err.value


def one_event(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, [e.payload for e in events]
    payload: dict[str, Any] = events[0].payload
    return payload


def test_defers_when_not_ready(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    table = f"dd_{unique}"
    model = admin.manual_model(f"dd-{unique}", table=table)
    sensor = BatchPredictionReadySensor(
        task_id="batch", model_id=model["id"], deferrable=True, poke_interval=7, timeout=600
    )
    calls = count_calls(sensor)
    before = time.time()
    exc = defer(sensor)
    after = time.time()
    assert len(calls) == 2  # model + is_active: one check on the worker, then the triggerer waits

    trigger = exc.trigger
    assert isinstance(trigger, MLSCheckTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    json.dumps(kwargs)
    assert kwargs["check"] == {"kind": "table_ready", "table": table, "model_id": model["id"]}
    assert kwargs["mls_conn_id"] == "mls_default"
    assert kwargs["poke_interval"] == 7.0
    deadline = kwargs["deadline"]
    assert before + 600 <= deadline <= after + 600
    assert exc.method_name == "execute_complete"
    assert not exc.kwargs  # nothing beside the trigger: the deadline travels in it, once
    assert exc.timeout is not None
    assert DEFERRAL_TIMEOUT_GRACE < exc.timeout.total_seconds() <= 600 + DEFERRAL_TIMEOUT_GRACE


def test_defer_with_timedelta_arguments(admin: Admin, unique: str) -> None:
    sensor = BatchPredictionReadySensor(
        task_id="batch",
        table=f"dt_{unique}",
        deferrable=True,
        poke_interval=timedelta(seconds=45),
        timeout=timedelta(minutes=20),
    )
    before = time.time()
    exc = defer(sensor)
    _, kwargs = exc.trigger.serialize()
    assert kwargs["poke_interval"] == 45.0
    assert before + 1200 <= kwargs["deadline"] <= time.time() + 1200
    assert exc.timeout is not None and exc.timeout.total_seconds() <= 1200 + DEFERRAL_TIMEOUT_GRACE


def test_defer_keeps_the_connection_id(
    admin: Admin, mls_server: Any, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_OTHER", mls_server.conn_json())
    sensor = OnlinePredictionReadySensor(
        task_id="online", name=f"dc-{unique}", version="v1", mls_conn_id="mls_other", deferrable=True
    )
    _, kwargs = defer(sensor).trigger.serialize()
    assert kwargs["mls_conn_id"] == "mls_other"
    assert kwargs["check"] == {
        "kind": "artifact_ready",
        "name": f"dc-{unique}",
        "version": "v1",
        "model_id": None,
    }


def test_returns_at_once_when_ready(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    table = f"dr_{unique}"
    admin.set_table(table)
    model = admin.manual_model(f"dr-{unique}", table=table)
    sensor = BatchPredictionReadySensor(task_id="batch", model_id=model["id"], deferrable=True)
    calls = count_calls(sensor)
    assert sensor.execute({}) == {"table": table, "model_id": model["id"]}
    assert len(calls) == 3


def test_terminal_failure_fails_without_deferring(admin: Admin, unique: str) -> None:
    no_table = admin.manual_model(f"dn-{unique}")
    failed = admin.create_automl_model(f"df-{unique}")
    admin.finish_training(failed["id"], "FAILED", error=f"no rows for {unique}")

    with pytest.raises(AirflowFailException, match="has no table"):
        BatchPredictionReadySensor(task_id="b", model_id=no_table["id"], deferrable=True).execute({})
    with pytest.raises(AirflowFailException, match=f"no rows for {unique}"):
        AutoMLTrainingDoneSensor(task_id="a", model_id=failed["id"], deferrable=True).execute({})
    with pytest.raises(AirflowSkipException):
        BatchPredictionReadySensor(
            task_id="b", model_id=no_table["id"], deferrable=True, soft_fail=True
        ).execute({})
    with pytest.raises(AirflowSkipException):
        AutoMLTrainingDoneSensor(task_id="a", model_id=failed["id"], deferrable=True, soft_fail=True).execute(
            {}
        )


def test_no_time_left_times_out_without_deferring(admin: Admin, unique: str) -> None:
    table = f"dz_{unique}"
    with pytest.raises(AirflowSensorTimeout):
        BatchPredictionReadySensor(task_id="b", table=table, deferrable=True, timeout=0).execute({})
    with pytest.raises(AirflowSkipException):
        BatchPredictionReadySensor(
            task_id="b", table=table, deferrable=True, timeout=0, soft_fail=True
        ).execute({})


def test_round_trip_through_the_trigger(
    admin: Admin, count_calls: CountCalls, on_async_check: Any, run_trigger: RunTrigger, unique: str
) -> None:
    table = f"rt_{unique}"
    model = admin.manual_model(f"rt-{unique}", table=table)
    sensor = BatchPredictionReadySensor(
        task_id="batch", model_id=str(model["id"]), deferrable=True, poke_interval=0.01, timeout=600
    )
    calls = count_calls(sensor)
    exc = defer(sensor)
    admin.set_table(table, is_active=True, is_loading=True)
    checks = on_async_check(lambda n: n == 2 and admin.set_table(table, is_active=True, is_loading=False))

    payload = one_event(run_trigger(exc.trigger))
    assert payload["status"] == "success"
    assert payload["checks"] == 3 and len(checks) == 3
    assert payload["value"] == {"table": table, "model_id": model["id"]}
    json.dumps(payload)

    expected = {"table": table, "model_id": model["id"]}
    assert sensor.execute_complete({}, payload, **(exc.kwargs or {})) == expected
    assert (
        sensor.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {}) == expected
    )
    assert len(calls) == 2  # resuming makes no request on the worker


def test_online_round_trip(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    name = f"ort-{unique}"
    sensor = OnlinePredictionReadySensor(task_id="online", name=name, version="v1", deferrable=True)
    exc = defer(sensor)
    admin.set_artifact(name, "v1", {"size": 3})
    payload = one_event(run_trigger(exc.trigger))
    assert payload["status"] == "success" and payload["checks"] == 1
    result = sensor.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {})
    assert result == {"model_id": None, "name": name, "version": "v1", "info": {"size": 3}}


def test_automl_round_trip_returns_the_model(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    """The training ends by itself on the server; the model's summary comes back whichever side saw it
    end (the trigger's event carries no more than the summary either)."""
    model = admin.create_automl_model(f"art-{unique}")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model, deferrable=True, poke_interval=0.05)
    try:
        result = sensor.execute({})  # only if the training already ended (a slow machine)
    except TaskDeferred as exc:
        payload = one_event(run_trigger(exc.trigger))
        assert payload["status"] == "success"
        assert set(payload["value"]) <= set(SUMMARY_FIELDS)
        result = sensor.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {})
    assert result["id"] == model["id"] and result["status"] == "DONE" and result["model_type"] == "automl"
    assert set(result) <= set(SUMMARY_FIELDS) and "model_meta" not in result


def test_automl_failed_event_from_the_trigger(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    model = admin.create_automl_model(f"afe-{unique}")
    admin.finish_training(model["id"], "FAILED", error=f"bad labels {unique}")
    payload = one_event(run_trigger(MLSCheckTrigger(check=TrainingDoneCheck(model_id=model["id"]).to_dict())))
    assert payload["status"] == "failed"
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], deferrable=True)
    kwargs = {"deadline": time.time() + 60}
    with pytest.raises(AirflowFailException, match=f"bad labels {unique}"):
        sensor.execute_complete({}, payload, **kwargs)
    soft = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": payload, **kwargs}, {})


def test_trigger_timeout_event_times_the_task_out(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    table = f"tt_{unique}"
    sensor = BatchPredictionReadySensor(task_id="batch", table=table, deferrable=True, timeout=600)
    exc = defer(sensor)
    _, kwargs = exc.trigger.serialize()
    expired = MLSCheckTrigger(**{**kwargs, "deadline": time.time() - 1})  # as if the wait ran out
    payload = one_event(run_trigger(expired))
    assert payload["status"] == "timeout" and payload["checks"] == 1
    with pytest.raises(AirflowSensorTimeout, match="timed out"):
        sensor.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {})
    soft = BatchPredictionReadySensor(task_id="batch", table=table, deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {})


def test_a_4xx_answer_ends_the_task_the_same_way_in_every_mode(
    admin: Admin, run_trigger: RunTrigger, unique: str
) -> None:
    table = f"d4_{unique}"
    path = f"/api/v1/dynamodb/tables/{table}"
    body = json.dumps({"code": 400, "error": "table: not a valid table name", "results": None})
    fault = {"status": 400, "body": body, "content_type": "application/json"}

    admin.add_fault("GET", path, **fault)
    poking = BatchPredictionReadySensor(task_id="batch", table=table, poke_interval=0.01)
    with pytest.raises(AirflowFailException, match="not a valid table name"):
        poking.execute({})

    deferring = BatchPredictionReadySensor(task_id="batch", table=table, deferrable=True, timeout=600)
    exc = defer(deferring)  # the table is only not active yet on the worker
    admin.add_fault("GET", path, **fault)
    payload = one_event(run_trigger(exc.trigger))
    with pytest.raises(AirflowFailException, match="not a valid table name"):
        deferring.resume_execution("execute_complete", {"event": payload, **(exc.kwargs or {})}, {})


# ---- execute_complete on its own ----------------------------------------------------------------


def _event(status: str, message: str = "the message") -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "value": None,
        "checks": 2,
        "check": {"kind": "table_ready"},
    }


RESUME = {"deadline": 1.0}


@pytest.mark.parametrize(
    ("status", "raised"),
    [("failed", AirflowFailException), ("timeout", AirflowSensorTimeout), ("error", MLSError)],
)
def test_execute_complete_bad_events_raise(status: str, raised: type[Exception]) -> None:
    sensor = BatchPredictionReadySensor(task_id="batch", table="t", deferrable=True)
    with pytest.raises(raised, match="the message") as err:
        sensor.execute_complete({}, _event(status), **RESUME)
    if status == "error":
        assert not isinstance(err.value, AirflowException)  # retried like poke mode; soft_fail can't hide it
        assert "MLS trigger error" in str(err.value)
    with pytest.raises(raised):
        sensor.resume_execution("execute_complete", {"event": _event(status), **RESUME}, {})


@pytest.mark.parametrize("status", ["failed", "timeout"])
def test_soft_fail_skips_on_resume(status: str) -> None:
    """Airflow applies soft_fail to what execute_complete raises (any AirflowException) in resume_execution."""
    sensor = BatchPredictionReadySensor(task_id="batch", table="t", deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": _event(status), **RESUME}, {})


def test_soft_fail_does_not_hide_an_error_event() -> None:
    """As in poke mode, an unreachable MLS (or a 5xx after retries) fails the task even with soft_fail."""
    sensor = BatchPredictionReadySensor(task_id="batch", table="t", deferrable=True, soft_fail=True)
    with pytest.raises(MLSError, match="MLS trigger error"):
        sensor.resume_execution("execute_complete", {"event": _event("error"), **RESUME}, {})


@pytest.mark.parametrize(
    "event",
    [None, {}, "success", ["success"], {"message": "no status"}, {"status": "weird", "message": "?"}],
    ids=["none", "empty", "string", "list", "no-status", "unknown-status"],
)
def test_execute_complete_garbage_events_raise(event: Any) -> None:
    sensor = BatchPredictionReadySensor(task_id="batch", table="t", deferrable=True)
    with pytest.raises(MLSError, match="unexpected event|unknown status"):
        sensor.execute_complete({}, event, **RESUME)


def test_execute_complete_success_returns_the_value() -> None:
    sensor = OnlinePredictionReadySensor(task_id="online", name="m", version="v", deferrable=True)
    value = {"model_id": None, "name": "m", "version": "v", "info": {"size": 1}}
    event = {**_event("success"), "value": value}
    assert sensor.execute_complete({}, event, **RESUME) == value
    assert sensor.execute_complete({}, event) == value  # kwargs of an older deferral: none


# ---- the default ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_the_airflow_setting(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, setting: str, unique: str
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    table = f"df_{unique}"
    for cls, kwargs in (
        (BatchPredictionReadySensor, {"table": table}),
        (OnlinePredictionReadySensor, {"name": "n", "version": "v"}),
        (AutoMLTrainingDoneSensor, {"model_id": 1}),
    ):
        assert cls(task_id="s", **kwargs).deferrable is (setting == "True")
        assert cls(task_id="s", deferrable=False, **kwargs).deferrable is False
        assert cls(task_id="s", deferrable=True, **kwargs).deferrable is True
    if setting == "True":
        defer(BatchPredictionReadySensor(task_id="s", table=table, poke_interval=0.01, timeout=600))
    else:
        sensor = BatchPredictionReadySensor(task_id="s", table=table, poke_interval=0.01, timeout=0.05)
        with pytest.raises(AirflowSensorTimeout):  # poke mode: waited on the worker and ran out of time
            sensor.execute({})
