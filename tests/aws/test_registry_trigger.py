"""ModelPackageApprovalTrigger against a real moto server: one event per run, boto3 off the event loop."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook
from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_mls._compat import TriggerEvent

ARTIFACT = "s3://models/churn/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
T = TypeVar("T")
CLASSPATH = "airflow_provider_mls.triggers.sagemaker_registry.ModelPackageApprovalTrigger"


def register(registry: SageMakerModelRegistryHook, group: str, **kwargs: Any) -> str:
    registry.ensure_group(group)
    return str(
        registry.register_version(group, model_data_url=ARTIFACT, image=IMAGE, **kwargs)["ModelPackageArn"]
    )


def trigger(moto_url: str, arn: str, **kwargs: Any) -> ModelPackageApprovalTrigger:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("deadline", time.time() + 600)
    return ModelPackageApprovalTrigger(model_package_arn=arn, endpoint_url=moto_url, **kwargs)


async def collect(trig: ModelPackageApprovalTrigger) -> list[TriggerEvent]:
    return [event async for event in trig.run()]


def run(trig: ModelPackageApprovalTrigger) -> list[TriggerEvent]:
    """Every event the trigger yields (the whole generator, not only the first), on a fresh loop."""
    return asyncio.run(asyncio.wait_for(collect(trig), 60))


def one_event(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, [e.payload for e in events]
    payload: dict[str, Any] = events[0].payload
    assert json.loads(json.dumps(payload)) == payload  # the triggerer stores it
    assert set(payload) == {"status", "message", "value", "checks", "model_package_arn"}
    return payload


@pytest.fixture
def on_check(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[int, dict[str, Any]], None]], list[str]]:
    """``on_check(action)``: after each ``approval`` call of any hook, ``action(n, approval)`` in its thread.

    Returns the approval status each check saw.
    """

    def install(action: Callable[[int, dict[str, Any]], None]) -> list[str]:
        seen: list[str] = []
        real = SageMakerModelRegistryHook.approval

        def approval(self: SageMakerModelRegistryHook, arn: str) -> dict[str, Any]:
            result = real(self, arn)
            seen.append(str(result["status"]))
            action(len(seen), result)
            return result

        monkeypatch.setattr(SageMakerModelRegistryHook, "approval", approval)
        return seen

    return install


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- serialization ---------------------------------------------------------------------------------


def test_serialize_round_trip(moto_url: str) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
    original = ModelPackageApprovalTrigger(
        model_package_arn=arn,
        aws_conn_id="aws_prod",
        region_name="ap-northeast-2",
        endpoint_url=moto_url,
        poke_interval=45,
        deadline=1_900_000_000,
    )
    classpath, kwargs = original.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "model_package_arn": arn,
        "aws_conn_id": "aws_prod",
        "region_name": "ap-northeast-2",
        "endpoint_url": moto_url,
        "poke_interval": 45.0,
        "deadline": 1_900_000_000.0,
    }
    stored = json.loads(json.dumps(kwargs))
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**stored)
    assert isinstance(rebuilt, ModelPackageApprovalTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_serialize_defaults() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
    _, kwargs = ModelPackageApprovalTrigger(model_package_arn=arn).serialize()
    assert kwargs == {
        "model_package_arn": arn,
        "aws_conn_id": "aws_default",
        "region_name": None,
        "endpoint_url": None,
        "poke_interval": 60.0,
        "deadline": None,
    }
    json.dumps(kwargs)


# ---- events ----------------------------------------------------------------------------------------


def test_success_when_already_approved(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)
    registry.update_version(arn, approval_status="Approved", approval_description="signed off")
    event = one_event(run(trigger(moto_url, arn)))
    assert event["status"] == "success"
    assert event["checks"] == 1
    assert event["value"] == {"arn": arn, "status": "Approved", "description": "signed off"}
    assert event["model_package_arn"] == arn
    assert "is Approved (signed off)" in event["message"]


def test_success_after_waiting(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    on_check: Callable[[Callable[[int, dict[str, Any]], None]], list[str]],
) -> None:
    arn = register(registry, group_name)

    def approve_after_the_third(n: int, _: dict[str, Any]) -> None:
        if n == 3:
            registry.update_version(arn, approval_status="Approved")

    seen = on_check(approve_after_the_third)
    event = one_event(run(trigger(moto_url, arn)))
    assert seen == ["PendingManualApproval"] * 3 + ["Approved"]
    assert event["status"] == "success" and event["checks"] == 4
    assert event["value"] == {"arn": arn, "status": "Approved", "description": None}


def test_failed_when_rejected(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    on_check: Callable[[Callable[[int, dict[str, Any]], None]], list[str]],
) -> None:
    arn = register(registry, group_name)

    def reject_after_the_first(n: int, _: dict[str, Any]) -> None:
        if n == 1:
            registry.update_version(arn, approval_status="Rejected", approval_description="leaks the label")

    seen = on_check(reject_after_the_first)
    event = one_event(run(trigger(moto_url, arn)))
    assert seen == ["PendingManualApproval", "Rejected"]
    assert event["status"] == "failed"
    assert event["checks"] == 2
    assert event["value"] is None
    assert event["message"] == f"model package {arn} was Rejected: leaks the label"


def test_timeout_when_the_deadline_has_passed(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    on_check: Callable[[Callable[[int, dict[str, Any]], None]], list[str]],
) -> None:
    arn = register(registry, group_name)
    seen = on_check(lambda n, _: None)
    event = one_event(run(trigger(moto_url, arn, deadline=time.time() - 5)))
    assert event["status"] == "timeout"
    assert event["checks"] == 1 and seen == ["PendingManualApproval"]  # one check, then the deadline
    assert event["value"] is None
    assert event["message"].startswith(f"timed out waiting for approval of {arn} after 1 check(s)")
    assert "PendingManualApproval" in event["message"]


def test_a_decision_beats_a_passed_deadline(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    approved = register(registry, group_name, approval_status="Approved")
    rejected = register(registry, group_name, approval_status="Rejected")
    assert one_event(run(trigger(moto_url, approved, deadline=time.time() - 5)))["status"] == "success"
    assert one_event(run(trigger(moto_url, rejected, deadline=time.time() - 5)))["status"] == "failed"


def test_error_for_a_missing_model_package(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    registry.ensure_group(group_name)
    missing = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group_name}/1"
    event = one_event(run(trigger(moto_url, missing)))
    assert event["status"] == "error"
    assert event["checks"] == 1
    assert event["value"] is None
    assert event["model_package_arn"] == missing
    assert event["message"].startswith(f"checking approval of {missing} failed: ClientError: ")
    assert "ValidationException" in event["message"]


def test_error_for_an_unreachable_endpoint(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries against the closed port
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1"
    event = one_event(run(trigger(f"http://127.0.0.1:{closed_port()}", arn)))
    assert event["status"] == "error"
    assert event["checks"] == 1
    assert "EndpointConnectionError" in event["message"]


def test_error_for_a_malformed_endpoint(aws_env: None) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1"
    event = one_event(run(trigger("not a url", arn)))
    assert event["status"] == "error"
    assert event["checks"] == 0  # the client could not even be built
    assert event["message"].startswith("could not start the SageMaker approval check: ValueError: ")


def test_failed_without_a_region(aws_env: None, monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1"
    event = one_event(run(trigger(moto_url, arn)))
    assert event["status"] == "failed"  # bad configuration: waiting cannot help
    assert event["checks"] == 0
    assert "region_name" in event["message"]


# ---- the event loop is never blocked ---------------------------------------------------------------


async def run_with_ticker(body: Callable[[list[int]], Awaitable[T]]) -> T:
    """Run ``body(ticks)`` alongside a task that adds 1 to ``ticks[0]`` every 10 ms (readable from threads)."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks[0] += 1

    task = asyncio.create_task(ticker())
    try:
        return await asyncio.wait_for(body(ticks), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_checks_run_off_the_event_loop(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = register(registry, group_name)
    real = SageMakerModelRegistryHook.approval
    shared: dict[str, Any] = {}  # the ticker's counter and the event loop's thread
    windows: list[tuple[int, int]] = []  # the tick count when a check started, and when it ended
    threads: list[threading.Thread] = []

    def slow_approval(self: SageMakerModelRegistryHook, arn: str) -> dict[str, Any]:
        threads.append(threading.current_thread())
        ticks = shared["ticks"]
        start = ticks[0]
        time.sleep(0.3)  # a slow AWS call, in whatever thread the trigger makes it
        result = real(self, arn)
        windows.append((start, ticks[0]))
        if len(windows) == 2:
            registry.update_version(arn, approval_status="Approved")
        return result

    monkeypatch.setattr(SageMakerModelRegistryHook, "approval", slow_approval)

    async def body(ticks: list[int]) -> list[TriggerEvent]:
        shared["ticks"], shared["loop_thread"] = ticks, threading.current_thread()
        return await collect(trigger(moto_url, arn))

    events = asyncio.run(run_with_ticker(body))
    assert one_event(events)["status"] == "success"
    assert len(windows) == 3  # pending, pending, approved
    for start, end in windows:
        assert end > start, f"the event loop did not tick while a check was in flight: {windows}"
    assert threads and all(thread is not shared["loop_thread"] for thread in threads)


def test_the_ticker_catches_a_blocked_loop() -> None:
    """The measure above tells the two apart: a blocking call on the loop itself stops the ticks."""
    windows: list[tuple[int, int]] = []

    async def body(ticks: list[int]) -> None:
        while ticks[0] == 0:  # the ticker runs meanwhile
            await asyncio.sleep(0.01)
        start = ticks[0]
        time.sleep(0.3)  # as a synchronous boto3 call in run() would
        windows.append((start, ticks[0]))

    asyncio.run(run_with_ticker(body))
    assert len(windows) == 1 and windows[0][1] == windows[0][0]


def test_the_client_is_built_off_the_event_loop(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = register(registry, group_name, approval_status="Approved")
    real = SageMakerModelRegistryHook.get_conn
    built_in: list[threading.Thread] = []

    def get_conn(self: SageMakerModelRegistryHook) -> Any:
        if self._client is None:
            built_in.append(threading.current_thread())
        return real(self)

    monkeypatch.setattr(SageMakerModelRegistryHook, "get_conn", get_conn)
    loop_thread: list[threading.Thread] = []

    async def main() -> list[TriggerEvent]:
        loop_thread.append(threading.current_thread())
        return await collect(trigger(moto_url, arn))

    assert one_event(asyncio.run(main()))["status"] == "success"
    assert built_in and all(thread is not loop_thread[0] for thread in built_in)
