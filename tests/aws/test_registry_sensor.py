"""ModelPackageApprovedSensor against a real moto server: poke mode, and deferrable through its trigger."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mls._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)
from airflow_provider_mls.bases import DEFERRAL_TIMEOUT_GRACE
from airflow_provider_mls.exceptions import MLSError
from airflow_provider_mls.sensors.sagemaker_registry import ModelPackageApprovedSensor
from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

ARTIFACT = "s3://models/churn/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
TRIGGER_CLASSPATH = "airflow_provider_mls.triggers.sagemaker_registry.ModelPackageApprovalTrigger"


def register(registry: SageMakerModelRegistryHook, group: str, **kwargs: Any) -> str:
    registry.ensure_group(group)
    return str(
        registry.register_version(group, model_data_url=ARTIFACT, image=IMAGE, **kwargs)["ModelPackageArn"]
    )


def sensor(moto_url: str, **kwargs: Any) -> ModelPackageApprovedSensor:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("timeout", 60)
    return ModelPackageApprovedSensor(task_id="approved", endpoint_url=moto_url, **kwargs)


def done_value(result: PokeReturnValue | bool) -> Any:
    assert isinstance(result, PokeReturnValue), result
    assert result.is_done
    return result.xcom_value


def defer(task: ModelPackageApprovedSensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    return caught.value


def rebuild(deferred: TaskDeferred, **overrides: Any) -> ModelPackageApprovalTrigger:
    """The trigger as the triggerer builds it: from ``serialize()`` (JSON), by its classpath."""
    classpath, kwargs = deferred.trigger.serialize()
    kwargs = json.loads(json.dumps(kwargs))
    module, _, name = classpath.rpartition(".")
    trigger: ModelPackageApprovalTrigger = getattr(importlib.import_module(module), name)(
        **{**kwargs, **overrides}
    )
    return trigger


def run_trigger(trigger: ModelPackageApprovalTrigger) -> list[TriggerEvent]:
    """Every event the trigger yields (the whole generator), on a fresh event loop."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), 60))


def one_event(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, [e.payload for e in events]
    payload: dict[str, Any] = events[0].payload
    json.dumps(payload)  # stored by the triggerer
    return payload


def resume(
    make: Callable[[], ModelPackageApprovedSensor], deferred: TaskDeferred, event: dict[str, Any]
) -> Any:
    """Resume a *fresh* task, as Airflow does: only the deferral's kwargs and the event survive."""
    next_kwargs = {**(deferred.kwargs or {}), "event": event}
    json.dumps(next_kwargs)
    return make().resume_execution(deferred.method_name, next_kwargs, {})


class Calls:
    """The hook methods a sensor calls (``describe_version``, ``_list_versions``), by name."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def count(self, name: str) -> int:
        return self.names.count(name)


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[ModelPackageApprovedSensor], Calls]:
    """``count_calls(sensor)``: wrap its registry hook's describe and list methods and record each call."""

    def install(task: ModelPackageApprovedSensor) -> Calls:
        calls = Calls()
        hook = task.registry
        for name in ("describe_version", "_list_versions"):
            real = getattr(hook, name)

            def wrapped(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
                calls.names.append(_name)
                return _real(*args, **kwargs)

            monkeypatch.setattr(hook, name, wrapped)
        return calls

    return install


# ---- poke mode ------------------------------------------------------------------------------------


def test_poke_waits_until_approved(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)
    task = sensor(moto_url, model_package_arn=arn)
    assert task.poke({}) is False
    assert task.poke({}) is False
    registry.update_version(arn, approval_status="Approved", approval_description="signed off")
    assert done_value(task.poke({})) == {"arn": arn, "status": "Approved", "description": "signed off"}


def test_execute_in_poke_mode_returns_once_approved_from_another_thread(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = register(registry, group_name)
    task = sensor(moto_url, model_package_arn=arn, mode="poke")
    poked = threading.Event()
    real = task.registry.approval

    def approval(arn: str) -> dict[str, Any]:
        result = real(arn)
        poked.set()
        return result

    monkeypatch.setattr(task.registry, "approval", approval)

    def approve() -> None:
        # Approve only once the sensor has seen the version pending: no race on timing.
        if poked.wait(30):
            registry.update_version(arn, approval_status="Approved", approval_description="by a reviewer")

    approver = threading.Thread(target=approve, daemon=True)
    approver.start()
    try:
        result = task.execute({})
    finally:
        approver.join(30)
    assert result == {"arn": arn, "status": "Approved", "description": "by a reviewer"}


def test_already_approved_returns_on_the_first_poke(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name, approval_status="Approved")
    assert sensor(moto_url, model_package_arn=arn).execute({}) == {
        "arn": arn,
        "status": "Approved",
        "description": None,
    }


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_rejected_fails_at_once_with_the_description(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, deferrable: bool
) -> None:
    arn = register(registry, group_name)
    registry.update_version(arn, approval_status="Rejected", approval_description="bias on segment B")
    task = sensor(moto_url, model_package_arn=arn, deferrable=deferrable)
    with pytest.raises(AirflowFailException, match=r"was Rejected: bias on segment B"):
        task.execute({})
    if not deferrable:
        with pytest.raises(AirflowFailException, match=r"was Rejected: bias on segment B"):
            task.poke({})
    with pytest.raises(AirflowSkipException, match="bias on segment B|soft_fail"):
        sensor(moto_url, model_package_arn=arn, deferrable=deferrable, soft_fail=True).execute({})


def test_rejected_without_a_description_says_so(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name, approval_status="Rejected")
    with pytest.raises(AirflowFailException, match="was Rejected: no approval description"):
        sensor(moto_url, model_package_arn=arn).poke({})


def test_poke_mode_times_out(registry: SageMakerModelRegistryHook, moto_url: str, group_name: str) -> None:
    arn = register(registry, group_name)
    with pytest.raises(AirflowSensorTimeout):
        sensor(moto_url, model_package_arn=arn, timeout=0, mode="poke").execute({})
    with pytest.raises(AirflowSkipException):
        sensor(moto_url, model_package_arn=arn, timeout=0, mode="poke", soft_fail=True).execute({})


@pytest.mark.parametrize("number", [1, "1"], ids=["int", "rendered-str"])
def test_resolves_group_and_version_once(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    count_calls: Callable[[ModelPackageApprovedSensor], Calls],
    number: Any,
) -> None:
    arn = register(registry, group_name)
    register(registry, group_name)  # version 2: the listing must pick the right one
    task = sensor(moto_url, model_package_group=group_name, model_package_version=number)
    calls = count_calls(task)
    pokes = 4
    for n in range(1, pokes + 1):
        assert task.poke({}) is False
        assert calls.count("_list_versions") == 1  # the group is listed once, on the first poke
        assert calls.count("describe_version") == 1 + n  # resolution + one describe per check
    registry.update_version(arn, approval_status="Approved")
    assert done_value(task.poke({}))["arn"] == arn
    assert calls.count("_list_versions") == 1
    assert calls.count("describe_version") == 1 + pokes + 1


def test_by_arn_makes_one_describe_per_check(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    count_calls: Callable[[ModelPackageApprovedSensor], Calls],
) -> None:
    arn = register(registry, group_name)
    task = sensor(moto_url, model_package_arn=arn)
    calls = count_calls(task)
    for n in range(1, 4):
        assert task.poke({}) is False
        assert calls.names == ["describe_version"] * n


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        pytest.param({}, "model_package_group", id="nothing"),
        pytest.param({"model_package_group": "GROUP"}, "model_package_version", id="no-version"),
        pytest.param(
            {"model_package_group": "GROUP", "model_package_version": 9}, "has no version 9", id="missing"
        ),
        pytest.param(
            {"model_package_arn": "ARN", "model_package_group": "GROUP"}, "model_package_arn", id="both"
        ),
        pytest.param({"model_package_arn": "churn/1"}, "model_package_arn", id="not-an-arn"),
    ],
)
@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_bad_reference_fails_at_once(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    ref: dict[str, Any],
    field: str,
    deferrable: bool,
) -> None:
    arn = register(registry, group_name)
    ref = {k: {"GROUP": group_name, "ARN": arn}.get(v, v) for k, v in ref.items()}
    with pytest.raises(AirflowFailException, match=field):
        sensor(moto_url, **ref, deferrable=deferrable).execute({})


# ---- deferrable -----------------------------------------------------------------------------------


def test_defers_while_pending(registry: SageMakerModelRegistryHook, moto_url: str, group_name: str) -> None:
    arn = register(registry, group_name)
    before = time.time()
    deferred = defer(
        sensor(
            moto_url,
            model_package_group=group_name,
            model_package_version="1",
            deferrable=True,
            poke_interval=30,
            timeout=600,
            region_name="us-east-1",
        )
    )
    after = time.time()

    assert isinstance(deferred.trigger, ModelPackageApprovalTrigger)
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == TRIGGER_CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs
    deadline = kwargs["deadline"]
    assert before + 600 <= deadline <= after + 600
    assert kwargs == {
        "model_package_arn": arn,  # resolved on the worker: the triggerer only describes
        "aws_conn_id": "aws_default",
        "region_name": "us-east-1",
        "endpoint_url": moto_url,
        "poke_interval": 30.0,
        "deadline": deadline,
    }
    assert deferred.method_name == "execute_complete"
    assert not deferred.kwargs  # nothing beside the trigger: the deadline travels in it, once
    assert isinstance(deferred.timeout, timedelta)
    assert DEFERRAL_TIMEOUT_GRACE < deferred.timeout.total_seconds() <= 600 + DEFERRAL_TIMEOUT_GRACE


def test_already_approved_returns_without_deferring(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    count_calls: Callable[[ModelPackageApprovedSensor], Calls],
) -> None:
    arn = register(registry, group_name)
    registry.update_version(arn, approval_status="Approved", approval_description="ok")
    task = sensor(moto_url, model_package_arn=arn, deferrable=True)
    calls = count_calls(task)
    assert task.execute({}) == {"arn": arn, "status": "Approved", "description": "ok"}
    assert calls.names == ["describe_version"]


def test_no_time_left_times_out_without_deferring(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)
    with pytest.raises(AirflowSensorTimeout):
        sensor(moto_url, model_package_arn=arn, deferrable=True, timeout=0).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(moto_url, model_package_arn=arn, deferrable=True, timeout=0, soft_fail=True).execute({})


def test_round_trip_through_the_trigger(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)

    def make() -> ModelPackageApprovedSensor:
        return sensor(moto_url, model_package_group=group_name, model_package_version=1, deferrable=True)

    deferred = defer(make())
    registry.update_version(arn, approval_status="Approved", approval_description="after review")
    event = one_event(run_trigger(rebuild(deferred)))
    expected = {"arn": arn, "status": "Approved", "description": "after review"}
    assert event["status"] == "success"
    assert event["value"] == expected
    assert event["model_package_arn"] == arn
    assert resume(make, deferred, event) == expected


def test_round_trip_approved_while_deferred(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trigger sees the version pending, then approved (by a reviewer between two of its checks)."""
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    arn = register(registry, group_name)

    def make() -> ModelPackageApprovedSensor:
        return sensor(moto_url, model_package_arn=arn, deferrable=True)

    deferred = defer(make())
    real = SageMakerModelRegistryHook.approval
    seen: list[str | None] = []

    def approval(self: SageMakerModelRegistryHook, arn: str) -> dict[str, Any]:
        result = real(self, arn)
        seen.append(result["status"])
        if len(seen) == 2:
            registry.update_version(arn, approval_status="Approved", approval_description="second look")
        return result

    monkeypatch.setattr(SageMakerModelRegistryHook, "approval", approval)
    event = one_event(run_trigger(rebuild(deferred)))
    assert seen == ["PendingManualApproval", "PendingManualApproval", "Approved"]
    assert event["status"] == "success" and event["checks"] == 3
    assert resume(make, deferred, event) == {"arn": arn, "status": "Approved", "description": "second look"}


def test_rejected_while_deferred(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)

    def make(**kwargs: Any) -> Callable[[], ModelPackageApprovedSensor]:
        return lambda: sensor(moto_url, model_package_arn=arn, deferrable=True, **kwargs)

    deferred = defer(make()())
    registry.update_version(arn, approval_status="Rejected", approval_description="fails the fairness check")
    event = one_event(run_trigger(rebuild(deferred)))
    assert event["status"] == "failed"
    with pytest.raises(AirflowFailException, match="was Rejected: fails the fairness check"):
        resume(make(), deferred, event)
    with pytest.raises(AirflowSkipException):
        resume(make(soft_fail=True), deferred, event)


def test_deadline_passed_in_the_triggerer(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)

    def make(**kwargs: Any) -> Callable[[], ModelPackageApprovedSensor]:
        return lambda: sensor(moto_url, model_package_arn=arn, deferrable=True, **kwargs)

    deferred = defer(make()())
    # As after a long triggerer outage: the absolute deadline is already behind us.
    event = one_event(run_trigger(rebuild(deferred, deadline=time.time() - 1)))
    assert event["status"] == "timeout" and event["checks"] == 1
    with pytest.raises(AirflowSensorTimeout, match="timed out waiting for approval of"):
        resume(make(), deferred, event)
    with pytest.raises(AirflowSkipException):
        resume(make(soft_fail=True), deferred, event)


def test_error_in_the_triggerer(registry: SageMakerModelRegistryHook, moto_url: str, group_name: str) -> None:
    arn = register(registry, group_name)
    missing = f"{arn.rsplit('/', 2)[0]}/{group_name}-gone/1"

    def make(**kwargs: Any) -> Callable[[], ModelPackageApprovedSensor]:
        return lambda: sensor(moto_url, model_package_arn=arn, deferrable=True, **kwargs)

    deferred = defer(make()())
    event = one_event(run_trigger(rebuild(deferred, model_package_arn=missing)))
    assert event["status"] == "error"
    # An error is not a verdict: it fails the task (Airflow's retries apply), soft_fail or not.
    for soft_fail in (False, True):
        with pytest.raises(MLSError, match="MLS trigger error: .*ClientError"):
            resume(make(soft_fail=soft_fail), deferred, event)


@pytest.mark.parametrize(
    ("event", "raised", "match"),
    [
        (
            {"status": "failed", "message": "model package x was Rejected: no"},
            AirflowFailException,
            "Rejected",
        ),
        ({"status": "timeout", "message": "timed out waiting"}, AirflowSensorTimeout, "timed out waiting"),
        ({"status": "error", "message": "EndpointConnectionError: boom"}, MLSError, "trigger error: .*boom"),
        ({"status": "bogus", "message": "?"}, MLSError, "unknown status 'bogus'"),
        ({"message": "no status"}, MLSError, "unexpected event"),
        (None, MLSError, "unexpected event"),
    ],
    ids=["failed", "timeout", "error", "unknown", "no-status", "none"],
)
def test_execute_complete_on_each_event(
    moto_url: str, aws_env: None, event: Any, raised: type[Exception], match: str
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    task = sensor(moto_url, model_package_arn=arn, deferrable=True)
    with pytest.raises(raised, match=match):
        task.execute_complete({}, event, deadline=time.time() + 60)


def test_execute_complete_success_makes_no_call(
    moto_url: str, aws_env: None, count_calls: Callable[[ModelPackageApprovedSensor], Calls]
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    value = {"arn": arn, "status": "Approved", "description": "ok"}
    task = sensor(moto_url, model_package_arn=arn, deferrable=True)
    calls = count_calls(task)
    event = {"status": "success", "message": "ok", "value": value, "checks": 2}
    assert task.execute_complete({}, event, deadline=time.time() + 60) == value
    assert calls.names == []


# ---- reschedule mode -------------------------------------------------------------------------------


def test_reschedule_mode_gives_the_slot_back_while_pending(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending: ``AirflowRescheduleException`` after one check; approved: the next execution succeeds.

    The first-reschedule lookup is answered like ``tests/sensors`` does (a mock ti on Airflow 3, the
    one DB query stubbed on 2.11); the scheduler side of reschedule runs in ``tests/e2e``.
    """
    from datetime import UTC, datetime
    from unittest import mock

    from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS

    try:
        from airflow.sdk.exceptions import AirflowRescheduleException
    except ImportError:
        from airflow.exceptions import AirflowRescheduleException

    ti = mock.MagicMock(name="ti")
    if AIRFLOW_V_3_0_PLUS:
        ti.get_first_reschedule_date.return_value = None
    else:
        ti.configure_mock(dag_id="dag", task_id="approval", run_id="run", map_index=-1, max_tries=0)
        monkeypatch.setattr("airflow.sensors.base._orig_start_date", lambda **_: None)
    arn = register(registry, group_name)
    task = sensor(moto_url, model_package_arn=arn, mode="reschedule", poke_interval=45)
    before = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException) as err:
        task.execute({"ti": ti})
    assert err.value.reschedule_date >= before + timedelta(seconds=45)

    registry.update_version(arn, approval_status="Approved", approval_description="ok")
    again = sensor(moto_url, model_package_arn=arn, mode="reschedule", poke_interval=45)
    assert again.execute({"ti": ti}) == {"arn": arn, "status": "Approved", "description": "ok"}
