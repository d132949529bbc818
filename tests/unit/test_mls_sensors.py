"""The MLS sensors' own logic, hook replaced: inputs, each poke's outcome, the deferral, each event.

The fake hook runs the real readiness checks (``airflow_provider_mls.checks``) over MLS's answers,
so a poke here sends the same requests, in the same order, as against the service.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_mls.checks import SUMMARY_FIELDS
from airflow_provider_mls.exceptions import MLSError, MLSNotFoundError, MLSServerError, MLSValidationError
from airflow_provider_mls.sensors.mls import (
    AutoMLTrainingDoneSensor,
    BatchPredictionReadySensor,
    OnlinePredictionReadySensor,
)
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

from .fakes import FakeMLSHook, FakeStore, automl_model, context, manual_model

TABLE = "churn_scores"
ACTIVE = f"/api/v1/dynamodb/tables/{TABLE}/is_active"
LOADING = f"/api/v1/dynamodb/tables/{TABLE}/is_loading"
ARTIFACT = "/api/v1/model_registry/artifacts/info"
MODEL = manual_model(12, "churn", "v1", table=TABLE)
INFO = {"model_name": "churn", "model_version": "v1", "files": ["model.joblib", "model.json"]}


def sensor(cls: type, hook: FakeMLSHook, **kwargs: Any) -> Any:
    op = cls(task_id="wait", **kwargs)
    op.hook = hook
    return op


def requests(hook: FakeMLSHook) -> list[tuple[str, str]]:
    return [(args[0], args[1]) for name, args, _ in hook.calls if name == "run"]


def table_hook(active: bool, loading: bool = False, *models: dict[str, Any]) -> FakeMLSHook:
    hook = FakeMLSHook(*models)
    hook.answers = {ACTIVE: {"is_active": active}, LOADING: {"is_loading": loading}}
    return hook


def fail_cause(call: Any) -> BaseException:
    with pytest.raises(AirflowFailException) as err:
        call()
    assert err.value.__cause__ is not None
    return err.value.__cause__


# ---- BatchPredictionReadySensor ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "loading", "done", "sent"),
    [
        (False, False, False, [ACTIVE]),  # not active: the loading flag is not asked
        (True, True, False, [ACTIVE, LOADING]),
        (True, False, True, [ACTIVE, LOADING]),
    ],
)
def test_batch_poke_outcomes(active: bool, loading: bool, done: bool, sent: list[str]) -> None:
    hook = table_hook(active, loading)
    op = sensor(BatchPredictionReadySensor, hook, table=TABLE)
    result = op.poke(context(op))
    assert requests(hook) == [("GET", path) for path in sent]
    if done:
        assert isinstance(result, PokeReturnValue) and result.is_done
        assert result.xcom_value == {"table": TABLE, "model_id": None}
    else:
        assert result is False


def test_batch_by_model_reads_its_table_once_per_try() -> None:
    hook = table_hook(False, False, MODEL)
    op = sensor(BatchPredictionReadySensor, hook, model_id="12")
    ctx = context(op)
    assert op.poke(ctx) is False
    hook.answers[ACTIVE] = {"is_active": True}
    result = op.poke(ctx)
    assert result.xcom_value == {"table": TABLE, "model_id": 12}
    assert hook.names.count("get_manual_model") == 1
    assert hook.called("get_manual_model")[0] == ((), {"id": 12, "name": None, "version": None})


def test_batch_in_reschedule_mode_resolves_once_per_try_across_reschedules() -> None:
    store, hook = FakeStore(), table_hook(False, False, MODEL)
    for _ in range(3):  # each reschedule is a new task object in a new process
        op = sensor(BatchPredictionReadySensor, hook, name="churn", version="v1", mode="reschedule")
        assert op.poke(context(op, store=store)) is False
    assert hook.names.count("get_manual_model") == 1
    retry = sensor(BatchPredictionReadySensor, hook, name="churn", version="v1", mode="reschedule")
    retry.poke(context(retry, try_number=2, store=store))
    assert hook.names.count("get_manual_model") == 2  # a new try resolves again


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "table"),
        ({"table": "  "}, "table"),
        ({"table": TABLE, "model_id": 12}, "table"),
        ({"model_id": "twelve"}, "model_id"),
        ({"name": "churn"}, "version"),
        ({"model_id": 13}, "table"),  # a model with no table has no batch prediction
    ],
)
def test_batch_bad_input_fails_at_once_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    hook = table_hook(True, False, MODEL, manual_model(13, "churn", "v2", table=""))
    op = sensor(BatchPredictionReadySensor, hook, **kwargs)
    cause = fail_cause(lambda: op.poke(context(op)))
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert requests(hook) == []


def test_batch_unknown_model_fails_at_once_and_soft_fail_skips() -> None:
    op = sensor(BatchPredictionReadySensor, FakeMLSHook(), model_id=404)
    assert isinstance(fail_cause(lambda: op.poke(context(op))), MLSNotFoundError)
    soft = sensor(BatchPredictionReadySensor, FakeMLSHook(), model_id=404, soft_fail=True)
    with pytest.raises(AirflowSkipException, match="MLSNotFoundError"):
        soft.poke(context(soft))


def test_batch_a_transient_error_is_retried_by_airflow_not_failed() -> None:
    hook = table_hook(True)
    hook.answers[ACTIVE] = MLSServerError("bad gateway", code=502)
    op = sensor(BatchPredictionReadySensor, hook, table=TABLE, soft_fail=True)
    with pytest.raises(MLSServerError):
        op.poke(context(op))


# ---- OnlinePredictionReadySensor --------------------------------------------------------------------


@pytest.mark.parametrize("info", [None, {}, ""])
def test_online_not_ready_until_the_artifact_has_info(info: Any) -> None:
    hook = FakeMLSHook()
    hook.answers[ARTIFACT] = {"info": info}
    op = sensor(OnlinePredictionReadySensor, hook, name="churn", version="v1")
    assert op.poke(context(op)) is False
    assert hook.calls[-1][2] == {"params": {"model_name": "churn", "model_version": "v1"}}
    assert "get_model" not in hook.names  # by name: no model lookup at all


def test_online_by_model_id_reads_the_model_once() -> None:
    hook = FakeMLSHook(MODEL)
    hook.answers[ARTIFACT] = [{"info": None}, {"info": INFO}]
    op = sensor(OnlinePredictionReadySensor, hook, model_id={"id": 12})
    ctx = context(op)
    assert op.poke(ctx) is False
    result = op.poke(ctx)
    assert result.xcom_value == {"model_id": 12, "name": "churn", "version": "v1", "info": INFO}
    assert hook.names.count("get_model") == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "model_id"),
        ({"version": "v1"}, "name"),
        ({"model_id": 1, "name": "x", "version": "v"}, "model_id"),
    ],
)
def test_online_bad_reference_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    hook = FakeMLSHook()
    op = sensor(OnlinePredictionReadySensor, hook, **kwargs)
    cause = fail_cause(lambda: op.poke(context(op)))
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert hook.calls == []


# ---- AutoMLTrainingDoneSensor -----------------------------------------------------------------------


def training(status: str, **fields: Any) -> FakeMLSHook:
    return FakeMLSHook(automl_model(7, "auto", "v1", status=status, **fields))


def test_training_done_returns_the_model_summary() -> None:
    op = sensor(AutoMLTrainingDoneSensor, training("DONE", model_meta={"big": "x" * 1000}), model_id=7)
    result = op.poke(context(op))
    assert result.is_done and result.xcom_value["status"] == "DONE"
    assert set(result.xcom_value) <= set(SUMMARY_FIELDS) and "model_meta" not in result.xcom_value


@pytest.mark.parametrize("status", ["TRAINING", "UNKNOWN", "QUEUED"])
def test_training_any_other_status_keeps_waiting(status: str) -> None:
    op = sensor(AutoMLTrainingDoneSensor, training(status), model_id=7)
    assert op.poke(context(op)) is False


@pytest.mark.parametrize("soft_fail", [False, True])
def test_training_failed_fails_at_once_with_the_services_error(soft_fail: bool) -> None:
    op = sensor(AutoMLTrainingDoneSensor, training("FAILED"), model_id=7, soft_fail=soft_fail)
    expected = AirflowSkipException if soft_fail else AirflowFailException
    with pytest.raises(expected, match="FAILED: out of memory"):
        op.poke(context(op))


def test_training_of_a_manual_model_or_a_deleted_model_fails() -> None:
    op = sensor(AutoMLTrainingDoneSensor, FakeMLSHook(MODEL), model_id=12)
    with pytest.raises(AirflowFailException, match="is a manual model, not automl"):
        op.poke(context(op))
    gone = sensor(AutoMLTrainingDoneSensor, FakeMLSHook(), model_id=7)
    with pytest.raises(AirflowFailException, match="does not exist"):
        gone.poke(context(gone))


def test_training_by_name_looks_the_automl_model_up() -> None:
    hook = training("DONE")
    op = sensor(AutoMLTrainingDoneSensor, hook, name="auto", version="v1")
    assert op.poke(context(op)).xcom_value["id"] == 7
    assert hook.names[0] == "get_automl_model"


# ---- deferrable: check on the worker, then defer --------------------------------------------------------


def test_deferrable_not_ready_defers_to_the_check_trigger() -> None:
    hook = table_hook(False, False, MODEL)
    op = sensor(BatchPredictionReadySensor, hook, model_id=12, deferrable=True, poke_interval=20, timeout=300)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(op))
    assert requests(hook) == [("GET", ACTIVE)]  # one check on the worker first
    assert deferred.value.method_name == "execute_complete"
    assert 300 <= deferred.value.timeout.total_seconds() <= 400
    trigger = deferred.value.trigger
    assert isinstance(trigger, MLSCheckTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    assert kwargs["check"] == {"kind": "table_ready", "table": TABLE, "model_id": 12}
    assert (kwargs["mls_conn_id"], kwargs["poke_interval"]) == ("mls_default", 20.0)
    assert before + 300 <= kwargs["deadline"] <= time.time() + 300
    rebuilt = MLSCheckTrigger(**kwargs)  # what the triggerer does with the row
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "check"),
    [
        (
            OnlinePredictionReadySensor,
            {"name": "churn", "version": "v1"},
            {"kind": "artifact_ready", "name": "churn", "version": "v1", "model_id": None},
        ),
        (AutoMLTrainingDoneSensor, {"model_id": 7}, {"kind": "training_done", "model_id": 7}),
    ],
)
def test_each_sensor_defers_its_own_check(cls: type, kwargs: dict[str, Any], check: dict[str, Any]) -> None:
    hook = training("TRAINING")
    hook.answers[ARTIFACT] = {"info": None}
    op = sensor(cls, hook, deferrable=True, **kwargs)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(op))
    assert deferred.value.trigger.serialize()[1]["check"] == check


def test_deferrable_ready_at_the_first_check_returns_without_deferring() -> None:
    op = sensor(AutoMLTrainingDoneSensor, training("DONE"), model_id=7, deferrable=True)
    assert op.execute(context(op))["id"] == 7


def test_deferrable_failed_at_the_first_check_fails_without_deferring() -> None:
    op = sensor(AutoMLTrainingDoneSensor, training("FAILED"), model_id=7, deferrable=True)
    with pytest.raises(AirflowFailException, match="out of memory"):
        op.execute(context(op))


def test_deferrable_bad_input_fails_before_any_request() -> None:
    hook = FakeMLSHook()
    op = sensor(BatchPredictionReadySensor, hook, deferrable=True)
    with pytest.raises(AirflowFailException, match="table: give table"):
        op.execute(context(op))
    assert hook.calls == []


# ---- execute_complete: the trigger's one event --------------------------------------------------------

VALUE = {"table": TABLE, "model_id": None}


def event(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "message": f"the check said {status}", "value": None, "checks": 3, **extra}


@pytest.mark.parametrize(
    "cls", [BatchPredictionReadySensor, OnlinePredictionReadySensor, AutoMLTrainingDoneSensor]
)
def test_execute_complete_success_returns_the_value(cls: type) -> None:
    op = cls(task_id="wait", deferrable=True)
    assert op.execute_complete(context(op), event("success", value=VALUE)) == VALUE


@pytest.mark.parametrize(
    ("status", "soft_fail", "raised"),
    [
        ("failed", False, AirflowFailException),
        ("failed", True, AirflowSkipException),
        ("timeout", False, AirflowSensorTimeout),
        ("timeout", True, AirflowSkipException),
    ],
)
def test_execute_complete_failed_and_timeout(status: str, soft_fail: bool, raised: type) -> None:
    op = BatchPredictionReadySensor(task_id="wait", table=TABLE, deferrable=True, soft_fail=soft_fail)
    with pytest.raises(raised, match=f"the check said {status}"):
        op.execute_complete(context(op), event(status))


@pytest.mark.parametrize(
    "payload",
    [event("error"), event("paused"), {"message": "no status"}, None, "success"],
)
def test_execute_complete_error_or_a_malformed_event_is_retryable_not_skipped(payload: Any) -> None:
    op = BatchPredictionReadySensor(task_id="wait", table=TABLE, deferrable=True, soft_fail=True)
    with pytest.raises(MLSError) as err:
        op.execute_complete(context(op), payload)
    assert not isinstance(err.value, AirflowFailException | AirflowSkipException)


# ---- execute in poke mode, and a deferrable wait out of time --------------------------------------------


def test_poke_mode_execute_returns_the_first_ready_checks_value() -> None:
    hook = table_hook(True, False)
    op = sensor(BatchPredictionReadySensor, hook, table=TABLE, poke_interval=0)
    assert op.execute(context(op)) == {"table": TABLE, "model_id": None}


def test_poke_mode_execute_fails_at_once_on_a_terminal_failure() -> None:
    op = sensor(AutoMLTrainingDoneSensor, training("FAILED"), model_id=7, poke_interval=0)
    with pytest.raises(AirflowFailException, match="out of memory"):
        op.execute(context(op))


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferrable_without_time_left_times_out_instead_of_deferring(soft_fail: bool) -> None:
    op = sensor(
        AutoMLTrainingDoneSensor,
        training("TRAINING"),
        model_id=7,
        deferrable=True,
        timeout=0,
        soft_fail=soft_fail,
    )
    with pytest.raises(
        AirflowSkipException if soft_fail else AirflowSensorTimeout, match="timed out after 0"
    ):
        op.execute(context(op))


@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_the_airflow_setting(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    from airflow_provider_mls.operators.mls import StartAutoMLServerOperator

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    expected = setting == "True"
    assert BatchPredictionReadySensor(task_id="w", table=TABLE).deferrable is expected
    assert StartAutoMLServerOperator(task_id="s", model_id=7).deferrable is expected
    assert (
        BatchPredictionReadySensor(task_id="w", table=TABLE, deferrable=not expected).deferrable
        is not expected
    )
