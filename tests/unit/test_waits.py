"""The one wait skeleton (``airflow_provider_mls.bases``), with the hook replaced: no server, no real waiting.

Poke (done, waiting, failed), check-then-defer (the ``TaskDeferred`` it raises), ``execute_complete``
for each event status, the server operators' facts across a deferral (the trigger's event is the one
channel), a deferral made by the previous release, and ``soft_fail``. Each check is answered by a
scripted hook; the in-process waits run on a fake clock (no real sleep).
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)

from airflow_provider_mls.bases import DEFERRAL_TIMEOUT_GRACE, ERROR, FAILED, SUCCESS, TIMEOUT, event_value
from airflow_provider_mls.checks import Outcome
from airflow_provider_mls.exceptions import MLSError, MLSNotFoundError
from airflow_provider_mls.operators.automl import StartAutoMLServerOperator, StopAutoMLServerOperator
from airflow_provider_mls.sensors.automl import AutoMLTrainingDoneSensor
from airflow_provider_mls.sensors.prediction_table import BatchPredictionReadySensor
from airflow_provider_mls.sensors.sagemaker_registry import ModelPackageApprovedSensor
from airflow_provider_mls.triggers.mls import MLSCheckTrigger
from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

pytestmark = pytest.mark.timeout(30)

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 2.11
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
READY = {"table": "t", "model_id": None}


@pytest.fixture(autouse=True)
def mls_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection to read (the task's links are built from it); nothing ever connects to it."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_DEFAULT", json.dumps({"conn_type": "mls", "host": "localhost", "port": 9})
    )


class ScriptedHook:
    """Stands in for ``MLSHook``: each ``run_check`` returns the next scripted outcome (or raises it)."""

    def __init__(self, *outcomes: Outcome | Exception, statuses: tuple[str, ...] = ()) -> None:
        self.outcomes = list(outcomes)
        self.statuses = list(statuses)
        self.calls: list[Any] = []

    def run_check(self, check: Any) -> Outcome:
        self.calls.append(("check", check.to_dict()))
        answer = self.outcomes.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_automl_model_server_status(self, id: int) -> str:
        self.calls.append(("status", id))
        return self.statuses.pop(0)

    def start_automl_model_server(self, id: int) -> dict[str, Any]:
        self.calls.append(("start", id))
        return {"status": "STARTING"}

    def stop_automl_model_server(self, id: int) -> dict[str, Any]:
        self.calls.append(("stop", id))
        return {"status": "STOPPING"}


def table_sensor(
    *outcomes: Outcome | Exception, **kwargs: Any
) -> tuple[BatchPredictionReadySensor, ScriptedHook]:
    hook = ScriptedHook(*outcomes)
    sensor = BatchPredictionReadySensor(task_id="wait", table="t", poke_interval=5, timeout=600, **kwargs)
    sensor.__dict__["hook"] = hook
    return sensor, hook


def waiting(message: str = "not active yet") -> Outcome:
    return Outcome("waiting", message)


def event(status: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"status": status, "message": f"the {status} message", "value": value, "checks": 2, **extra}


# ---- poke --------------------------------------------------------------------------------------------


def test_poke_done_returns_the_value_as_xcom() -> None:
    sensor, hook = table_sensor(Outcome("done", "ready", READY))
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue) and result.is_done and result.xcom_value == READY
    assert hook.calls == [("check", {"kind": "table_ready", "table": "t", "model_id": None})]


def test_poke_waiting_is_false() -> None:
    sensor, _ = table_sensor(waiting())
    assert sensor.poke({}) is False


@pytest.mark.parametrize("soft_fail", [False, True])
def test_poke_failed_fails_at_once_or_skips(soft_fail: bool) -> None:
    sensor, _ = table_sensor(Outcome("failed", "training FAILED: GPU quota"), soft_fail=soft_fail)
    raised = AirflowSkipException if soft_fail else AirflowFailException
    with pytest.raises(raised, match="GPU quota"):
        sensor.poke({})


def test_poke_terminal_error_fails_without_retries_and_transient_passes_through() -> None:
    sensor, _ = table_sensor(MLSNotFoundError("no such table", code=404))
    with pytest.raises(AirflowFailException, match="no such table"):
        sensor.poke({})
    sensor, _ = table_sensor(MLSError("502 after the retries"))
    with pytest.raises(MLSError, match="502"):  # Airflow's retries apply
        sensor.poke({})


# ---- check, then defer -------------------------------------------------------------------------------


def test_deferrable_sensor_checks_once_then_defers_with_the_trigger_alone() -> None:
    sensor, hook = table_sensor(waiting(), deferrable=True)
    before = time.time()
    with pytest.raises(TaskDeferred) as raised:
        sensor.execute({})
    deferred = raised.value
    assert len(hook.calls) == 1  # one check on the worker
    assert deferred.method_name == "execute_complete"
    assert not deferred.kwargs  # nothing beside the trigger: no duplicated facts
    trigger = deferred.trigger
    assert isinstance(trigger, MLSCheckTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    assert kwargs["check"] == {"kind": "table_ready", "table": "t", "model_id": None}
    assert kwargs["poke_interval"] == 5.0 and "carry" not in kwargs
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    assert isinstance(deferred.timeout, timedelta)
    assert 600 < deferred.timeout.total_seconds() <= 600 + DEFERRAL_TIMEOUT_GRACE
    assert deferred.timeout.total_seconds() > 600 + DEFERRAL_TIMEOUT_GRACE - 5


def test_deferrable_sensor_done_on_the_first_check_does_not_defer() -> None:
    sensor, _ = table_sensor(Outcome("done", "ready", READY), deferrable=True)
    assert sensor.execute({}) == READY


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferrable_sensor_failed_on_the_first_check_does_not_defer(soft_fail: bool) -> None:
    sensor, _ = table_sensor(Outcome("failed", "gone"), deferrable=True, soft_fail=soft_fail)
    with pytest.raises(AirflowSkipException if soft_fail else AirflowFailException, match="gone"):
        sensor.execute({})


def test_aws_sensor_defers_through_the_same_skeleton() -> None:
    class Registry:
        def approval(self, arn: str) -> dict[str, Any]:
            return {"arn": arn, "status": "PendingManualApproval", "description": None}

    sensor = ModelPackageApprovedSensor(
        task_id="approved", model_package_arn=ARN, deferrable=True, poke_interval=30, timeout=60
    )
    sensor.__dict__["registry"] = Registry()
    assert sensor.poke({}) is False
    with pytest.raises(TaskDeferred) as raised:
        sensor.execute({})
    assert not raised.value.kwargs
    assert isinstance(raised.value.trigger, ModelPackageApprovalTrigger)
    _, kwargs = raised.value.trigger.serialize()
    assert kwargs["model_package_arn"] == ARN and "carry" not in kwargs


# ---- execute_complete: the trigger's one event -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "soft_fail", "raised"),
    [
        (FAILED, False, AirflowFailException),
        (FAILED, True, AirflowSkipException),
        (TIMEOUT, False, AirflowSensorTimeout),
        (TIMEOUT, True, AirflowSkipException),
        (ERROR, False, MLSError),
        (ERROR, True, MLSError),  # an error is not the resource's answer: retries apply, no skip
        ("bogus", False, MLSError),
    ],
)
def test_execute_complete_on_each_non_success_status(status: str, soft_fail: bool, raised: type) -> None:
    sensor, hook = table_sensor(deferrable=True, soft_fail=soft_fail)
    with pytest.raises(raised):
        sensor.execute_complete({}, event(status))
    assert hook.calls == []  # resuming makes no request


@pytest.mark.parametrize("bad", [None, {}, {"message": "no status"}, "success"])
def test_execute_complete_on_a_malformed_event(bad: Any) -> None:
    sensor, _ = table_sensor(deferrable=True)
    with pytest.raises(MLSError, match="unexpected event"):
        sensor.execute_complete({}, bad)


def test_execute_complete_success_returns_the_value_and_ignores_old_kwargs() -> None:
    sensor, hook = table_sensor(deferrable=True)
    assert sensor.execute_complete({}, event(SUCCESS, READY)) == READY
    # A deferral of the previous release handed back its deadline as a kwarg: accepted, ignored.
    assert sensor.execute_complete({}, event(SUCCESS, READY), deadline=time.time() + 60) == READY
    assert sensor.resume_execution("execute_complete", {"event": event(SUCCESS, READY)}, {}) == READY
    assert hook.calls == []


def test_event_value_reads_every_status_the_same_for_any_task() -> None:
    task = AutoMLTrainingDoneSensor(task_id="t", model_id=1)
    assert event_value(task, event(SUCCESS, {"id": 1})) == {"id": 1}
    for status, raised in (
        (FAILED, AirflowFailException),
        (TIMEOUT, AirflowSensorTimeout),
        (ERROR, MLSError),
    ):
        with pytest.raises(raised, match=f"the {status} message"):
            event_value(task, event(status))


# ---- the server operators: act, then wait in the same skeleton ---------------------------------------


class FakeClock:
    """``time`` for the wait skeleton: ``sleep`` moves the clock on instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()  # the operator takes its deadline from the real clock
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("airflow_provider_mls.bases.time", fake)
    return fake


def start(hook: ScriptedHook, **kwargs: Any) -> StartAutoMLServerOperator:
    op = StartAutoMLServerOperator(task_id="start", model_id=7, poke_interval=5, timeout=20, **kwargs)
    op.__dict__["hook"] = hook
    return op


def rebuild(trigger: Any) -> Any:
    """The trigger as the triggerer builds it: from its serialized JSON, by its classpath."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


def test_server_operator_carries_its_facts_in_the_trigger_and_resumes_from_the_event_alone() -> None:
    hook = ScriptedHook(statuses=("STOPPED",))
    with pytest.raises(TaskDeferred) as raised:
        start(hook, deferrable=True).execute({})
    assert hook.calls == [("status", 7), ("start", 7)]
    deferred = raised.value
    assert not deferred.kwargs  # the facts travel once: in the trigger
    trigger = rebuild(deferred.trigger)
    assert trigger.carry == {"model_id": 7, "acted": True, "sent": True}
    assert trigger.stop_server_on_kill == 7  # cancel_on_kill: this task started it
    assert trigger.check == {"kind": "server_status", "model_id": 7, "wait_while": ["STOPPED", "STARTING"]}
    assert trigger.deadline is not None and trigger.deadline > time.time()

    # The event the trigger builds when the server is RUNNING: carry and deadline come back in it.
    payload = trigger._event(SUCCESS, "RUNNING", 3, {"model_id": 7, "status": "RUNNING"}).payload
    assert payload["carry"] == trigger.carry and payload["deadline"] == trigger.deadline
    resumed_hook = ScriptedHook()
    resumed = start(resumed_hook, deferrable=True)  # a fresh instance, as Airflow resumes
    result = resumed.resume_execution("execute_complete", {"event": payload}, {})
    assert result == {"model_id": 7, "status": "RUNNING", "acted": True}
    assert resumed_hook.calls == []  # the event said it all


def test_server_operator_resume_accepts_a_previous_release_deferral() -> None:
    """The previous release sent model_id/acted/sent/deadline as kwargs too, and the deadline in carry."""
    deadline = time.time() + 60
    old_event = event(
        SUCCESS,
        {"model_id": 7, "status": "FAILED"},
        check={"kind": "server_status", "model_id": 7, "wait_while": ["STOPPED", "STARTING"]},
        carry={"model_id": 7, "acted": True, "sent": True, "deadline": deadline},
    )
    old_kwargs = {"deadline": deadline, "model_id": 999, "acted": False, "sent": False}  # ignored
    op = start(ScriptedHook())
    with pytest.raises(
        AirflowFailException, match="FAILED after the start"
    ):  # carry says this try started it
        op.execute_complete({}, old_event, **old_kwargs)


@pytest.mark.parametrize("missing", ["model_id", "acted", "deadline"])
def test_server_operator_resume_without_a_fact_fails_naming_it(missing: str) -> None:
    carry: dict[str, Any] = {"model_id": 7, "acted": True}
    payload = event(SUCCESS, {"model_id": 7, "status": "RUNNING"}, carry=carry, deadline=time.time() + 60)
    if missing == "deadline":
        del payload["deadline"]
    else:
        del carry[missing]
    with pytest.raises(AirflowFailException, match=missing):
        start(ScriptedHook()).execute_complete({}, payload)


def test_server_operator_waits_in_process_through_the_same_checks(clock: FakeClock) -> None:
    hook = ScriptedHook(
        waiting("server of model 7 is STARTING"),
        Outcome("done", "RUNNING", {"model_id": 7, "status": "RUNNING"}),
        statuses=("STOPPED",),
    )
    assert start(hook).execute({}) == {"model_id": 7, "status": "RUNNING", "acted": True}
    assert [c[0] for c in hook.calls] == ["status", "start", "check", "check"]
    assert clock.slept == [5.0, 5.0]  # poke_interval before each check


@pytest.mark.parametrize("soft_fail", [False, True])
def test_server_operator_in_process_wait_times_out(soft_fail: bool, clock: FakeClock) -> None:
    hook = ScriptedHook(*[waiting("still STARTING")] * 50, statuses=("STOPPED",))
    op = StartAutoMLServerOperator(
        task_id="start", model_id=7, poke_interval=5, timeout=12, soft_fail=soft_fail
    )
    op.__dict__["hook"] = hook
    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout, match="still STARTING"):
        op.execute({})
    assert clock.slept[:2] == [5.0, 5.0] and len(clock.slept) == 3  # checks every poke_interval
    assert 1.5 < clock.slept[2] < 2.5  # the last wait ends at the deadline, 12 s from the start


def test_stop_operator_defers_without_a_kill_action() -> None:
    hook = ScriptedHook(statuses=("RUNNING",))
    op = StopAutoMLServerOperator(task_id="stop", model_id=7, wait_for_completion=True, deferrable=True)
    op.__dict__["hook"] = hook
    with pytest.raises(TaskDeferred) as raised:
        op.execute({})
    assert raised.value.trigger.carry == {"model_id": 7, "acted": True, "sent": True}
    assert raised.value.trigger.stop_server_on_kill is None  # only a start is undone on a kill


def test_a_deadline_already_past_times_out_without_deferring() -> None:
    hook = ScriptedHook(statuses=("STOPPED",))
    op = StartAutoMLServerOperator(task_id="start", model_id=7, deferrable=True, timeout=0, soft_fail=True)
    op.__dict__["hook"] = hook
    with pytest.raises(AirflowSkipException, match="timed out"):
        op.execute({})
