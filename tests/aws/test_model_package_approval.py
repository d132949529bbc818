"""ModelPackageApprovalOperator against a real moto server: the body from the registry, one UpdateModelPackage.

Airflow's HITL plumbing (``upsert_hitl_detail``) is recorded instead of written; the reviewer's answer
is handed to ``execute_complete`` as Airflow would. The round trip through a scheduler and the REST API
is ``tests/e2e/test_approval_e2e.py``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_mls.operators import approval

if TYPE_CHECKING:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not approval.HITL_AVAILABLE, reason="human-in-the-loop needs Airflow 3.1+"),
]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"


def card(auc: float, creator: str) -> dict[str, Any]:
    return {
        "model_overview": {"model_creator": creator},
        "evaluation_details": [
            {
                "name": "holdout",
                "metric_groups": [
                    {"name": "m", "metric_data": [{"name": "auc", "type": "number", "value": auc}]}
                ],
            }
        ],
    }


class FakeTI:
    def __init__(self, try_number: int = 1) -> None:
        self.id = uuid.uuid4()
        self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number = (
            "gate",
            "r1",
            "approve",
            -1,
            try_number,
        )
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def operator(moto_url: str, **kwargs: Any) -> Any:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("gate", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = approval.ModelPackageApprovalOperator(
            task_id="approve", aws_conn_id=None, endpoint_url=moto_url, **kwargs
        )
        op >> EmptyOperator(task_id="deploy")
    return op


def answer(option: str, comment: str) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"comment": comment},
        "responded_at": datetime(2026, 12, 6, 13, 0, tzinfo=UTC),
        "responded_by_user": {"id": "alice", "name": "Alice"},
    }


@pytest.fixture
def versions(registry: SageMakerModelRegistryHook, group_name: str) -> tuple[str, str]:
    """(serving: Approved, auc 0.88; candidate: pending, auc 0.91) in a new group."""
    registry.ensure_group(group_name)
    serving = registry.register_version(
        group_name,
        model_data_url="s3://models/churn/v1/model.tar.gz",
        image=IMAGE,
        approval_status="Approved",
        customer_metadata={"features": "age tenure"},
        model_card_content=card(0.88, "bo"),
    )
    candidate = registry.register_version(
        group_name,
        model_data_url="s3://models/churn/v2/model.tar.gz",
        image=IMAGE,
        description="retrained on November",
        customer_metadata={"features": "age tenure calls"},
        model_card_content=card(0.91, "ana"),
    )
    return str(serving["ModelPackageArn"]), str(candidate["ModelPackageArn"])


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    import airflow.providers.standard.operators.hitl as hitl

    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: calls.append(kw))
    return calls


def updates(op: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    op.registry.get_conn().meta.events.register(
        "provide-client-params.sagemaker.UpdateModelPackage", lambda params, **_: seen.append(dict(params))
    )
    return seen


def test_the_body_compares_with_the_latest_approved_version(
    moto_url: str, versions: tuple[str, str], group_name: str, asked: list[dict[str, Any]]
) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    serving, candidate = versions
    op = operator(moto_url, model_package_group=group_name, model_package_version="2")
    ti = FakeTI()
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute({"ti": ti, "task_instance": ti, "task": op})
    (question,) = asked
    assert question["subject"] == f"Approve {group_name} version 2?"
    body = question["body"]
    assert "| | proposed | latest approved |" in body
    assert f"| version | {group_name} v2 | {group_name} v1 |" in body
    assert "| status | PendingManualApproval | Approved |" in body
    assert "| model data | s3://models/churn/v2/model.tar.gz | s3://models/churn/v1/model.tar.gz |" in body
    assert "| created by | ana | bo |" in body
    assert "| metadata `features` | age tenure calls | age tenure |" in body
    assert "| holdout/auc | 0.91 | 0.88 | +0.03 |" in body
    assert f"model-package-groups/{group_name}/versions/2" in body
    assert "s3.console.aws.amazon.com/s3/buckets/models?prefix=churn/v2/" in body
    assert parked.value.kwargs["target"] == {
        "arn": candidate,
        "group": group_name,
        "version": 2,
        "status_asked": "PendingManualApproval",
    }
    assert ti.xcoms["mls_link_sagemaker_model_package"].endswith(f"{group_name}/versions/2")


def test_approve_is_one_update_naming_the_reviewer(
    moto_url: str, versions: tuple[str, str], registry: SageMakerModelRegistryHook
) -> None:
    _, candidate = versions
    op = operator(moto_url, model_package_arn=candidate)
    sent = updates(op)
    ti = FakeTI()
    target = {"arn": candidate, "group": "g", "version": 2, "status_asked": "PendingManualApproval"}
    result = op.execute_complete(
        {"ti": ti, "task": op}, answer("Approve", "better on new customers"), target=target
    )
    text = (
        "Approved in Airflow by Alice (id alice) at 2026-12-06T13:00:00+00:00: better on new customers"
        " [dag run gate/r1, task approve]"
    )
    assert sent == [
        {"ModelPackageArn": candidate, "ModelApprovalStatus": "Approved", "ApprovalDescription": text}
    ]
    assert registry.approval(candidate) == {"arn": candidate, "status": "Approved", "description": text}
    assert result["decision"] == "approved" and result["approval_status"] == "Approved"


def test_reject_writes_rejected_then_skips_downstream(
    moto_url: str, versions: tuple[str, str], registry: SageMakerModelRegistryHook
) -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    _, candidate = versions
    op = operator(moto_url, model_package_arn=candidate)
    target = {"arn": candidate, "group": "g", "version": 2, "status_asked": "PendingManualApproval"}
    long_comment = "worse on prepaid " * 100
    with pytest.raises(DownstreamTasksSkipped):
        op.execute_complete({"ti": FakeTI(), "task": op}, answer("Reject", long_comment), target=target)
    state = registry.approval(candidate)
    assert state["status"] == "Rejected"
    assert len(state["description"]) == 1024  # shortened to SageMaker's limit, the reviewer and run kept
    assert state["description"].startswith("Rejected in Airflow by Alice (id alice)")
    assert state["description"].endswith("… [dag run gate/r1, task approve]")


def test_a_decision_made_in_the_console_meanwhile_is_not_overwritten(
    moto_url: str, versions: tuple[str, str], registry: SageMakerModelRegistryHook
) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    _, candidate = versions
    registry.update_version(candidate, approval_status="Rejected", approval_description="no, by the console")
    op = operator(moto_url, model_package_arn=candidate)
    sent = updates(op)
    target = {"arn": candidate, "group": "g", "version": 2, "status_asked": "PendingManualApproval"}
    with pytest.raises(AirflowFailException, match="changed from PendingManualApproval to Rejected"):
        op.execute_complete({"ti": FakeTI(), "task": op}, answer("Approve", "ok"), target=target)
    assert sent == []
    assert registry.approval(candidate)["status"] == "Rejected"


@pytest.mark.parametrize("lost", [False, True], ids=["update refused", "updated, answer lost"])
def test_an_update_that_fails_once_is_finished_by_the_retry_without_asking_again(
    moto_url: str,
    versions: tuple[str, str],
    registry: SageMakerModelRegistryHook,
    asked: list[dict[str, Any]],
    lost: bool,
) -> None:
    """SageMaker unreachable for the UpdateModelPackage (``lost``: after it was applied). On Airflow
    3.3 the decision waits in the task state store; the retry writes it (once) and asks no one."""
    from botocore.exceptions import EndpointConnectionError

    from tests.operators.test_durable_tasks import TaskStore

    _, candidate = versions
    store = TaskStore()
    target = {"arn": candidate, "group": "g", "version": 2, "status_asked": "PendingManualApproval"}
    first = operator(moto_url, model_package_arn=candidate)
    failed: list[bool] = []

    def unreachable(**_: Any) -> None:
        if not failed:
            failed.append(True)
            raise EndpointConnectionError(endpoint_url=moto_url)

    when = "after-call" if lost else "before-call"
    first.registry.get_conn().meta.events.register(f"{when}.sagemaker.UpdateModelPackage", unreachable)
    ti = FakeTI()
    with pytest.raises(EndpointConnectionError):
        first.execute_complete(
            {"ti": ti, "task": first, "task_state_store": store}, answer("Approve", "ok"), target=target
        )
    text = "Approved in Airflow by Alice (id alice) at 2026-12-06T13:00:00+00:00: ok [dag run gate/r1, task approve]"
    assert registry.approval(candidate)["status"] == ("Approved" if lost else "PendingManualApproval")
    assert store.get("mls_approval")["entry"]["by"] == {"id": "alice", "name": "Alice"}

    retry = operator(moto_url, model_package_arn=candidate)
    sent = updates(retry)
    ti = FakeTI(try_number=2)
    result = retry.execute({"ti": ti, "task_instance": ti, "task": retry, "task_state_store": store})
    assert asked == []
    assert sent == (
        []
        if lost
        else [{"ModelPackageArn": candidate, "ModelApprovalStatus": "Approved", "ApprovalDescription": text}]
    )
    assert registry.approval(candidate) == {"arn": candidate, "status": "Approved", "description": text}
    assert (result["decision"], result["by"], result["approval_status"]) == (
        "approved",
        {"id": "alice", "name": "Alice"},
        "Approved",
    )
    assert store.values == {}
