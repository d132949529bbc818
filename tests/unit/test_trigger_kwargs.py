"""What the tasks' deferrals hand to the triggerer: the triggers' kwargs survive the trip as they are.

A deferred task instance keeps its trigger as (classpath, kwargs) in the metadata DB; the triggerer
rebuilds it from them, also after an upgrade: the classpaths stay where they are. Running a trigger
against MLS or SageMaker is the server-backed tests' (tests/triggers, tests/aws).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest

from airflow_provider_mls.checks import ServerStatusCheck, TableReadyCheck, check_from_dict
from airflow_provider_mls.triggers.mls import MLSCheckTrigger
from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"


def rebuilt(trigger: Any) -> Any:
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # the triggerer stores them as JSON
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


@pytest.mark.parametrize(
    "trigger",
    [
        MLSCheckTrigger(check=TableReadyCheck(table="scores").to_dict(), poke_interval=5, deadline=1e9),
        MLSCheckTrigger(
            check=ServerStatusCheck(model_id=7, wait_while=("STARTING",)).to_dict(),
            mls_conn_id="mls_prd",
            stop_server_on_kill=7,
        ),
        ModelPackageApprovalTrigger(
            model_package_arn=ARN, aws_conn_id=None, region_name="eu-west-1", deadline=None
        ),
    ],
    ids=["table", "server", "approval"],
)
def test_a_trigger_rebuilt_from_its_kwargs_is_the_same_trigger(trigger: Any) -> None:
    assert rebuilt(trigger).serialize() == trigger.serialize()


def test_the_classpaths_of_deferred_waits_stay_where_they_are() -> None:
    assert MLSCheckTrigger(check={}).serialize()[0] == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    assert (
        ModelPackageApprovalTrigger(model_package_arn=ARN).serialize()[0]
        == "airflow_provider_mls.triggers.sagemaker_registry.ModelPackageApprovalTrigger"
    )


def test_optional_kwargs_are_serialized_only_when_given() -> None:
    kwargs = MLSCheckTrigger(check=TableReadyCheck(table="t").to_dict()).serialize()[1]
    assert "stop_server_on_kill" not in kwargs


def test_the_serialized_check_is_the_check() -> None:
    check = ServerStatusCheck(model_id=7, wait_while=("STOPPING", "RUNNING"))
    assert check_from_dict(MLSCheckTrigger(check=check.to_dict()).serialize()[1]["check"]) == check


def test_a_trigger_with_an_unknown_check_fails_without_a_request() -> None:
    async def first() -> Any:
        return await MLSCheckTrigger(check={"kind": "nope"}, mls_conn_id="mls_default").run().__anext__()

    event = asyncio.run(first())
    assert event.payload["status"] == "failed"
    assert (
        "could not start the MLS check: MLSValidationError: check: unknown check" in event.payload["message"]
    )
    assert event.payload["checks"] == 0
