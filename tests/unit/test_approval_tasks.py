"""The approval tasks' own logic with the MLS hook and the SageMaker registry replaced.

Airflow's human-in-the-loop tasks exist on Airflow 3.1+ only: on older Airflow these tests skip
(``tests/operators/test_approval.py`` checks the error importing a task gives there). What the
question writes to Airflow's DB (``upsert_hitl_detail``) is recorded instead; the rest of Airflow's
``ApprovalOperator`` runs as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls.exceptions import MLSServerError, MLSValidationError
from airflow_provider_mls.operators import approval

from .fakes import FakeMLSHook, FakeSageMakerRegistry, FakeStore, context, manual_model, package

pytestmark = pytest.mark.skipif(
    not approval.HITL_AVAILABLE, reason="human-in-the-loop tasks need Airflow 3.1+ (this Airflow has none)"
)

SERVING_CARD = {
    "model_overview": {"model_creator": "bo"},
    "evaluation_details": [
        {"name": "holdout", "metric_groups": [{"name": "m", "metric_data": [{"name": "auc", "value": 0.88}]}]}
    ],
}
CARD = {
    "model_overview": {"model_creator": "ana"},
    "evaluation_details": [
        {"name": "holdout", "metric_groups": [{"name": "m", "metric_data": [{"name": "auc", "value": 0.91}]}]}
    ],
}
SERVING = package(2, status="Approved", card=SERVING_CARD, metadata={"features": "age tenure"})
CANDIDATE = package(3, card=CARD, metadata={"features": "age tenure calls"})
ARN = CANDIDATE["ModelPackageArn"]
TARGET = {"arn": ARN, "group": "churn", "version": 3, "status_asked": "PendingManualApproval"}
DECIDED = "Approved in Airflow by Alice (id alice) at 2026-12-06T13:00:00+00:00: ok [dag run unit/manual__1, task approve]"


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every question the task asks (what ``upsert_hitl_detail`` would write), recorded."""
    import airflow.providers.standard.operators.hitl as hitl

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: calls.append(kw))
    return calls


def in_a_dag(cls: type, **kwargs: Any) -> Any:
    """The task in a DAG with one downstream task (``deploy``), which a rejection skips."""
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("unit", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = cls(task_id="approve", **kwargs)
        op >> EmptyOperator(task_id="deploy")
    return op


def package_task(registry: FakeSageMakerRegistry, **kwargs: Any) -> Any:
    op = in_a_dag(approval.ModelPackageApprovalOperator, **{"model_package_arn": ARN, **kwargs})
    op.registry = registry
    return op


def answer(option: str, comment: str = "ok") -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"comment": comment},
        "responded_at": datetime(2026, 12, 6, 13, 0, tzinfo=UTC),
        "responded_by_user": {"id": "alice", "name": "Alice"},
    }


# ---- ModelPackageApprovalOperator ---------------------------------------------------------------------


def test_the_question_compares_the_version_with_the_latest_approved(asked: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    registry = FakeSageMakerRegistry(SERVING, CANDIDATE)
    op = package_task(
        registry, model_package_arn=None, model_package_group="churn", model_package_version="3"
    )
    ctx = context(op)
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute(ctx)
    assert registry.names == ["describe_version", "list_versions", "describe_version"]
    (question,) = asked
    assert question["subject"] == "Approve churn version 3?"
    assert question["defaults"] == ["Reject"]  # the timeout default is never an approval
    body = question["body"]
    assert "| | proposed | latest approved |" in body
    assert "| version | churn v3 | churn v2 |" in body
    assert "| status | PendingManualApproval | Approved |" in body
    assert "| created by | ana | bo |" in body
    assert "| metadata `features` | age tenure calls | age tenure |" in body
    assert "| holdout/auc | 0.91 | 0.88 | +0.03 |" in body
    assert "s3.console.aws.amazon.com/s3/buckets/models?prefix=churn/3" in body
    assert parked.value.kwargs["target"] == TARGET
    assert ctx["ti"].xcoms["mls_link_sagemaker_model_package"].endswith("churn/versions/3")


def test_the_serving_version_given_and_no_serving_version(asked: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    registry = FakeSageMakerRegistry(SERVING, CANDIDATE)
    op = package_task(registry, serving_model_package_arn=SERVING["ModelPackageArn"])
    with pytest.raises(TaskAwaitingInput):
        op.execute(context(op))
    assert "| | proposed | serving now |" in asked[-1]["body"]
    alone = package_task(FakeSageMakerRegistry(CANDIDATE), response_timeout=timedelta(hours=2))
    with pytest.raises(TaskAwaitingInput):
        alone.execute(context(alone))
    assert "| | proposed | latest approved (none) |" in asked[-1]["body"]
    assert "No answer within 2:00:00 counts as a rejection" in asked[-1]["body"]


def test_approve_is_one_update_naming_the_reviewer() -> None:
    registry = FakeSageMakerRegistry(SERVING, CANDIDATE)
    op = package_task(registry)
    result = op.execute_complete(context(op), answer("Approve"), target=dict(TARGET))
    assert registry.called("update_version") == [
        ((ARN,), {"approval_status": "Approved", "approval_description": DECIDED})
    ]
    assert result["decision"] == "approved" and result["approval_status"] == "Approved"
    assert (result["arn"], result["group"], result["version"]) == (ARN, "churn", 3)


def test_reject_is_written_then_skips_downstream() -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    registry = FakeSageMakerRegistry(CANDIDATE)
    op = package_task(registry)
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        op.execute_complete(context(op), answer("Reject", "worse on prepaid " * 100), target=dict(TARGET))
    assert skipped.value.tasks == ["deploy"]
    ((_, sent),) = registry.called("update_version")
    assert sent["approval_status"] == "Rejected"
    assert len(sent["approval_description"]) == 1024  # SageMaker's limit: the comment is shortened
    assert sent["approval_description"].endswith("… [dag run unit/manual__1, task approve]")


def test_a_rejection_without_a_comment_asks_again(asked: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    registry = FakeSageMakerRegistry(CANDIDATE)
    op = package_task(registry)
    question = {"subject": "Approve churn version 3?", "body": "the body"}
    with pytest.raises(TaskAwaitingInput):
        op.execute_complete(context(op), answer("Reject", "  "), target=dict(TARGET), question=question)
    assert "update_version" not in registry.names
    assert asked[0]["body"].startswith("**Asked again: a rejection needs a comment.**")


def test_a_decision_made_in_the_console_meanwhile_is_not_overwritten() -> None:
    registry = FakeSageMakerRegistry(package(3, status="Rejected", description="no, by the console"))
    op = package_task(registry)
    with pytest.raises(AirflowFailException, match="changed from PendingManualApproval to Rejected"):
        op.execute_complete(context(op), answer("Approve"), target=dict(TARGET))
    assert "update_version" not in registry.names


def test_a_write_back_that_failed_is_finished_by_the_retry_without_asking_again(
    asked: list[dict[str, Any]],
) -> None:
    store, registry = FakeStore(), FakeSageMakerRegistry(CANDIDATE)
    registry.fail("update_version", MLSServerError("SageMaker unreachable"))
    first = package_task(registry)
    with pytest.raises(MLSServerError):  # not terminal: Airflow's retries apply
        first.execute_complete(context(first, store=store), answer("Approve"), target=dict(TARGET))
    registry.failures.clear()
    retry = package_task(registry)
    result = retry.execute(context(retry, try_number=2, store=store))
    assert asked == []
    assert registry.called("update_version")[-1] == (
        (ARN,),
        {"approval_status": "Approved", "approval_description": DECIDED},
    )
    assert (result["decision"], result["approval_status"]) == ("approved", "Approved")
    assert store.values == {}


def test_a_retry_after_the_decision_was_written_asks_no_one(asked: list[dict[str, Any]]) -> None:
    registry = FakeSageMakerRegistry(package(3, status="Approved", description=DECIDED))
    op = package_task(registry)
    result = op.execute(context(op, try_number=2))
    assert asked == [] and "update_version" not in registry.names
    assert result["decision"] == "approved"


# ---- MLSModelApprovalOperator (more in tests/operators/test_approval.py) -------------------------------------


def model_task(hook: FakeMLSHook, **kwargs: Any) -> Any:
    op = in_a_dag(approval.MLSModelApprovalOperator, **{"model_id": 12, **kwargs})
    op.hook = hook
    return op


def test_the_question_about_an_mls_model_by_name(asked: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    hook = FakeMLSHook(
        manual_model(12, "churn", "v2", model_meta={"performance": {"auc": 0.91}}),
        manual_model(9, "churn", "v1", model_meta={"performance": {"auc": 0.88}}),
    )
    op = model_task(hook, model_id=None, name="churn", version="v2", serving_model_id="9")
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute(context(op))
    assert hook.names == ["get_manual_model", "get_model"]
    assert asked[0]["subject"] == "Deploy churn v2?"
    assert "| auc | 0.91 | 0.88 | +0.03 |" in asked[0]["body"]
    assert parked.value.kwargs["target"] == {
        "model_id": 12,
        "name": "churn",
        "version": "v2",
        "serving_model_id": 9,
    }


def test_approve_merges_the_decision_into_the_models_meta() -> None:
    hook = FakeMLSHook(manual_model(12, "churn", "v2", model_meta={"a": 1}))
    op = model_task(hook)
    target = {"model_id": 12, "name": "churn", "version": "v2", "serving_model_id": None}
    result = op.execute_complete(context(op), answer("Approve", "fine"), target=target)
    ((args, kwargs),) = hook.called("update_manual_model_meta")
    assert args[0] == 12 and kwargs["partial_update"] is True
    assert args[1]["approval"]["decision"] == "approved" and args[1]["approval"]["comment"] == "fine"
    assert hook.models[12]["model_meta"]["a"] == 1
    assert result == {**args[1]["approval"], **target}


def test_resumed_without_its_target_fails() -> None:
    op = model_task(FakeMLSHook())
    with pytest.raises(AirflowFailException, match="resumed without its target"):
        op.execute_complete(context(op), answer("Approve"))


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        ("MLSModelApprovalOperator", {"on_timeout": "approve"}, "on_timeout"),
        ("MLSModelApprovalOperator", {"assigned_users": "alice"}, "assigned_users"),
        ("ModelPackageApprovalOperator", {"response_timeout": timedelta(0)}, "response_timeout"),
        ("ModelPackageApprovalOperator", {"options": ["Yes"]}, "options"),
    ],
)
def test_bad_arguments_name_the_field_when_the_dag_is_parsed(
    cls: str, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(MLSValidationError, match=f"^{field}: "):
        getattr(approval, cls)(task_id="approve", **kwargs)


def test_a_bad_package_reference_fails_before_asking(asked: list[dict[str, Any]]) -> None:
    registry = FakeSageMakerRegistry(CANDIDATE)
    op = package_task(registry, model_package_arn=None, model_package_group="churn")
    with pytest.raises(AirflowFailException, match="model_package_version"):
        op.execute(context(op))
    assert asked == [] and registry.calls == []
