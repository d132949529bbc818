"""UpdateModelPackageOperator and DeployModelPackageToMLSOperator against a real moto server and the local MLS.

The SageMaker side is ``LocalAWSEndpoint`` (moto with SageMaker's update semantics; it keeps the
model card), the MLS side the shared local MLS server over HTTP (``mls_conn``).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls._compat import AirflowFailException
from airflow_provider_mls.exceptions import MLSNotFoundError
from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.operators.sagemaker_registry import (
    DeployModelPackageToMLSOperator,
    UpdateModelPackageOperator,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
CARD: dict[str, Any] = {
    "model_overview": {"model_creator": "ml-platform", "model_artifact": ["s3://models/churn/1.tar.gz"]},
    "intended_uses": {"purpose_of_model": "Predict churn.", "risk_rating": "Low"},
}
NEW_CARD: dict[str, Any] = {
    "intended_uses": {"purpose_of_model": "Predict churn, v2.", "risk_rating": "Medium"},
    "business_details": {"business_problem": "Customer churn.", "line_of_business": "Mobile"},
}


def artifact(n: int) -> str:
    return f"s3://models/churn/{n}/model.tar.gz"


def register(registry: SageMakerModelRegistryHook, group: str, n: int = 1, **kwargs: Any) -> dict[str, Any]:
    registry.ensure_group(group)
    return registry.register_version(group, model_data_url=artifact(n), image=IMAGE, **kwargs)


def card_of(description: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    card = description.get("ModelCard") or {}
    content = card.get("ModelCardContent")
    return (json.loads(content) if content else None), card.get("ModelCardStatus")


@pytest.fixture
def mls(mls_conn: Any) -> Iterator[MLSHook]:
    """An MLS hook of the test's own on the shared local server, to read back what was deployed."""
    hook = MLSHook()
    yield hook
    hook.close()


@pytest.fixture
def model_name() -> str:
    return f"sm-{uuid.uuid4().hex[:10]}"


def update_op(moto_url: str, **kwargs: Any) -> UpdateModelPackageOperator:
    return UpdateModelPackageOperator(task_id="update", endpoint_url=moto_url, **kwargs)


def deploy_op(moto_url: str, **kwargs: Any) -> DeployModelPackageToMLSOperator:
    return DeployModelPackageToMLSOperator(task_id="deploy", endpoint_url=moto_url, **kwargs)


# ---- UpdateModelPackageOperator ------------------------------------------------------------------


def test_approve_by_arn_returns_the_new_state(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    version = register(registry, group_name, customer_metadata={"team": "growth"})
    arn = version["ModelPackageArn"]
    state = update_op(
        moto_url,
        model_package_arn=arn,
        approval_status="Approved",
        approval_description="AUC 0.91 on holdout",
    ).execute({})

    assert state == {
        "arn": arn,
        "group": group_name,
        "version": 1,
        "approval_status": "Approved",
        "approval_description": "AUC 0.91 on holdout",
        "customer_metadata": {"team": "growth"},
        "model_card_status": None,
        "model_card_sections": [],
    }
    assert json.loads(json.dumps(state)) == state  # XCom-safe
    described = registry.describe_version(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "AUC 0.91 on holdout"
    assert described["CustomerMetadataProperties"] == {"team": "growth"}


@pytest.mark.parametrize("number", [2, "2", " 2 "], ids=["int", "str", "padded-str"])
def test_reject_by_group_and_version_number(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, number: Any
) -> None:
    first = register(registry, group_name, 1)
    second = register(registry, group_name, 2)
    state = update_op(
        moto_url,
        model_package_group=group_name,
        model_package_version=number,
        approval_status="Rejected",
        approval_description="drift on the March cohort",
    ).execute({})

    assert state["arn"] == second["ModelPackageArn"]
    assert state["version"] == 2
    assert state["approval_status"] == "Rejected"
    assert state["approval_description"] == "drift on the March cohort"
    assert registry.approval(second["ModelPackageArn"]) == {
        "arn": second["ModelPackageArn"],
        "status": "Rejected",
        "description": "drift on the March cohort",
    }
    assert registry.describe_version(first["ModelPackageArn"]) == first  # the other version untouched


def test_metadata_merge_and_removal(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name, customer_metadata={"team": "growth", "auc": "0.88", "tmp": "x"})[
        "ModelPackageArn"
    ]
    state = update_op(
        moto_url,
        model_package_arn=arn,
        customer_metadata={"auc": "0.91", "dataset": "s3://data/2024-06"},
        remove_metadata_keys=["tmp"],
    ).execute({})

    expected = {"team": "growth", "auc": "0.91", "dataset": "s3://data/2024-06"}
    assert state["customer_metadata"] == expected
    assert state["approval_status"] == "PendingManualApproval"  # not sent, not changed
    assert registry.describe_version(arn)["CustomerMetadataProperties"] == expected

    state = update_op(moto_url, model_package_arn=arn, remove_metadata_keys=["auc", "dataset"]).execute({})
    assert state["customer_metadata"] == {"team": "growth"}
    assert registry.describe_version(arn)["CustomerMetadataProperties"] == {"team": "growth"}


def test_model_card_content_and_status(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name)["ModelPackageArn"]
    state = update_op(
        moto_url, model_package_arn=arn, model_card_content=CARD, model_card_status="Draft"
    ).execute({})
    assert state["model_card_status"] == "Draft"
    assert state["model_card_sections"] == ["intended_uses", "model_overview"]
    assert card_of(registry.describe_version(arn)) == (CARD, "Draft")

    # The content is replaced as a whole (a JSON string, as a rendered template gives it); the status kept.
    state = update_op(moto_url, model_package_arn=arn, model_card_content=json.dumps(NEW_CARD)).execute({})
    assert state["model_card_status"] == "Draft"
    assert state["model_card_sections"] == ["business_details", "intended_uses"]
    assert card_of(registry.describe_version(arn)) == (NEW_CARD, "Draft")

    # The status alone keeps the content.
    state = update_op(moto_url, model_package_arn=arn, model_card_status="PendingReview").execute({})
    assert state["model_card_status"] == "PendingReview"
    assert card_of(registry.describe_version(arn)) == (NEW_CARD, "PendingReview")


def test_everything_in_one_task(registry: SageMakerModelRegistryHook, moto_url: str, group_name: str) -> None:
    arn = register(registry, group_name, customer_metadata={"old": "1"})["ModelPackageArn"]
    state = update_op(
        moto_url,
        model_package_group=group_name,
        model_package_version="1",
        approval_status="Approved",
        approval_description="signed off",
        customer_metadata={"new": "2"},
        remove_metadata_keys=["old"],
        model_card_content=CARD,
        model_card_status="Approved",
    ).execute({})
    assert state == {
        "arn": arn,
        "group": group_name,
        "version": 1,
        "approval_status": "Approved",
        "approval_description": "signed off",
        "customer_metadata": {"new": "2"},
        "model_card_status": "Approved",
        "model_card_sections": ["intended_uses", "model_overview"],
    }
    described = registry.describe_version(arn)
    assert card_of(described) == (CARD, "Approved")
    assert described["CustomerMetadataProperties"] == {"new": "2"}


BAD_UPDATES = [
    pytest.param({"approval_status": "approved"}, "approval_status", id="bad-approval-status"),
    pytest.param(
        {"approval_status": "Approved", "model_card_status": "Done"},
        "model_card_status",
        id="bad-card-status",
    ),
    pytest.param(
        {
            "approval_status": "Approved",
            "model_card_content": {"intended_uses": {"risk_rating": "Extreme"}},
        },
        "model_card_content.intended_uses.risk_rating",
        id="bad-card-path",
    ),
    pytest.param(
        {"approval_status": "Approved", "model_card_content": {"intended_uses": {"owner": "me"}}},
        "model_card_content.intended_uses.owner",
        id="unknown-card-field",
    ),
    pytest.param(
        {"approval_status": "Approved", "model_card_content": "{not json"},
        "model_card_content",
        id="card-not-json",
    ),
    pytest.param(
        {"approval_status": "Approved", "customer_metadata": {"team": "a\nb"}},
        "customer_metadata",
        id="bad-metadata",
    ),
    pytest.param(
        {"customer_metadata": {"team": "x"}, "remove_metadata_keys": ["team"]},
        "remove_metadata_keys",
        id="set-and-removed",
    ),
    pytest.param({}, "nothing to update", id="nothing-to-update"),
    pytest.param({"remove_metadata_keys": []}, "nothing to update", id="nothing-to-remove"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_UPDATES)
@pytest.mark.parametrize("by", ["arn", "group"])
def test_bad_input_fails_naming_the_field_and_changes_nothing(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    kwargs: dict[str, Any],
    field: str,
    by: str,
) -> None:
    before = register(registry, group_name, customer_metadata={"team": "growth"}, model_card_content=CARD)
    ref = (
        {"model_package_arn": before["ModelPackageArn"]}
        if by == "arn"
        else {"model_package_group": group_name, "model_package_version": "1"}
    )
    with pytest.raises(AirflowFailException, match=field.replace(".", r"\.")):
        update_op(moto_url, **ref, **kwargs).execute({})
    assert registry.describe_version(before["ModelPackageArn"]) == before


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        pytest.param({"model_package_group": "G"}, "model_package_arn", id="arn-and-group"),
        pytest.param({"model_package_version": 1}, "model_package_arn", id="arn-and-version"),
    ],
)
def test_arn_and_group_together_fail(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, ref: dict[str, Any], field: str
) -> None:
    before = register(registry, group_name)
    arn = before["ModelPackageArn"]
    with pytest.raises(AirflowFailException, match=f"{field}: give model_package_arn, or"):
        update_op(moto_url, model_package_arn=arn, **ref, approval_status="Approved").execute({})
    assert registry.describe_version(arn) == before


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        pytest.param({}, "model_package_group", id="nothing"),
        pytest.param({"model_package_version": 1}, "model_package_group", id="version-alone"),
        pytest.param({"model_package_group": "GROUP"}, "model_package_version", id="group-alone"),
        pytest.param(
            {"model_package_group": "GROUP", "model_package_version": "two"},
            "model_package_version",
            id="not-a-number",
        ),
        pytest.param({"model_package_arn": "churn/1"}, "model_package_arn", id="not-an-arn"),
    ],
)
def test_bad_reference_fails_naming_the_field(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, ref: dict[str, Any], field: str
) -> None:
    before = register(registry, group_name)
    ref = {k: (group_name if v == "GROUP" else v) for k, v in ref.items()}
    with pytest.raises(AirflowFailException, match=f"{field}: "):
        update_op(moto_url, **ref, approval_status="Approved").execute({})
    assert registry.describe_version(before["ModelPackageArn"]) == before


def test_a_version_number_not_in_the_group_fails(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    before = register(registry, group_name)
    with pytest.raises(AirflowFailException, match="has no version 7"):
        update_op(
            moto_url, model_package_group=group_name, model_package_version=7, approval_status="Approved"
        ).execute({})
    assert registry.describe_version(before["ModelPackageArn"]) == before


def test_an_archived_card_refuses_changes(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    arn = register(registry, group_name, customer_metadata={"team": "growth"}, model_card_content=CARD)[
        "ModelPackageArn"
    ]
    state = update_op(moto_url, model_package_arn=arn, model_card_status="Archived").execute({})
    assert state["model_card_status"] == "Archived"
    archived = registry.describe_version(arn)
    assert card_of(archived) == (CARD, "Archived")

    for change in (
        {"approval_status": "Approved", "approval_description": "late approval"},
        {"customer_metadata": {"team": "other"}},
        {"remove_metadata_keys": ["team"]},
        {"model_card_content": NEW_CARD},
        {"model_card_status": "Draft"},
    ):
        with pytest.raises(AirflowFailException, match="model_card_status: an archived model card"):
            update_op(moto_url, model_package_arn=arn, **change).execute({})
        assert registry.describe_version(arn) == archived


# ---- DeployModelPackageToMLSOperator -------------------------------------------------------------


def test_deploy_an_approved_version_by_arn(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    arn = register(
        registry,
        group_name,
        3,
        customer_metadata={"team": "growth", "auc": "0.91"},
        model_card_content=CARD,
    )["ModelPackageArn"]
    registry.update_version(arn, approval_status="Approved", approval_description="signed off by risk")

    model = deploy_op(
        moto_url,
        model_package_arn=arn,
        name=model_name,
        model_meta={"owner": "ml-platform"},
        description="churn model",
    ).execute({})

    stored = mls.get_manual_model(name=model_name, version="v1")
    assert model["id"] == stored["id"]
    assert stored["version"] == "v1"  # the version number, as v<number>
    assert stored["model_data"] == artifact(3)
    assert stored["description"] == "churn model"
    assert stored["model_meta"] == {
        "owner": "ml-platform",
        "team": "growth",
        "auc": "0.91",
        "model_card": CARD,
        "model_package": {
            "arn": arn,
            "group": group_name,
            "version": 1,
            "approval_description": "signed off by risk",
        },
    }
    assert json.loads(json.dumps(model)) == model  # XCom-safe


def test_deploy_by_group_and_version_with_an_explicit_mls_version(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    register(registry, group_name, 1, approval_status="Approved")
    second = register(registry, group_name, 2, approval_status="Approved")
    model = deploy_op(
        moto_url,
        model_package_group=group_name,
        model_package_version="2",
        name=model_name,
        version="2024-06",
    ).execute({})
    model = mls.get_model(model["id"])  # the task returned a summary
    assert model["version"] == "2024-06"
    assert model["model_data"] == artifact(2)
    assert model["model_meta"] == {
        "model_package": {
            "arn": second["ModelPackageArn"],
            "group": group_name,
            "version": 2,
            "approval_description": None,
        }
    }  # no card, no customer metadata: only the model package
    with pytest.raises(MLSNotFoundError):
        mls.get_manual_model(name=model_name, version="v2")


def test_deploy_by_group_alone_takes_the_newest_approved_version(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    versions = [
        register(registry, group_name, n, customer_metadata={"n": str(n)})["ModelPackageArn"]
        for n in (1, 2, 3)
    ]
    registry.update_version(versions[0], approval_status="Approved", approval_description="first")
    registry.update_version(versions[1], approval_status="Approved", approval_description="second")

    model = mls.get_model(
        deploy_op(moto_url, model_package_group=group_name, name=model_name).execute({})["id"]
    )
    assert model["version"] == "v2"
    assert model["model_data"] == artifact(2)
    assert model["model_meta"]["n"] == "2"
    assert model["model_meta"]["model_package"] == {
        "arn": versions[1],
        "group": group_name,
        "version": 2,
        "approval_description": "second",
    }
    assert [m["version"] for m in mls.list_all_manual_models(name=model_name)] == ["v2"]


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
@pytest.mark.parametrize("by", ["arn", "group"])
def test_a_version_not_approved_is_refused(
    registry: SageMakerModelRegistryHook,
    moto_url: str,
    group_name: str,
    mls: MLSHook,
    model_name: str,
    status: str,
    by: str,
) -> None:
    arn = register(registry, group_name)["ModelPackageArn"]
    if status == "Rejected":
        registry.update_version(arn, approval_status="Rejected", approval_description="too slow")
    ref = (
        {"model_package_arn": arn}
        if by == "arn"
        else {"model_package_group": group_name, "model_package_version": 1}
    )
    with pytest.raises(AirflowFailException, match=f"model_package_arn: .* is {status}, not Approved"):
        deploy_op(moto_url, **ref, name=model_name).execute({})
    assert mls.list_all_manual_models(name=model_name) == []


def test_a_group_without_an_approved_version_fails(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    first = register(registry, group_name, 1)["ModelPackageArn"]
    register(registry, group_name, 2)
    registry.update_version(first, approval_status="Rejected")
    with pytest.raises(
        AirflowFailException, match=f"model_package_group: group '{group_name}' has no approved"
    ):
        deploy_op(moto_url, model_package_group=group_name, name=model_name).execute({})
    assert mls.list_all_manual_models(name=model_name) == []


def test_if_exists_update_redeploys_in_place(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    arn = register(registry, group_name, customer_metadata={"auc": "0.88"}, model_card_content=CARD)[
        "ModelPackageArn"
    ]
    registry.update_version(arn, approval_status="Approved", approval_description="first review")
    created = deploy_op(moto_url, model_package_arn=arn, name=model_name, if_exists="update").execute({})
    created = mls.get_model(created["id"])

    update_op(
        moto_url,
        model_package_arn=arn,
        approval_description="second review",
        customer_metadata={"auc": "0.91"},
        model_card_content=NEW_CARD,
    ).execute({})

    # The default if_exists=fail refuses the re-run and leaves the model alone.
    with pytest.raises(AirflowFailException, match="MLSConflictError"):
        deploy_op(moto_url, model_package_arn=arn, name=model_name).execute({})
    assert mls.get_manual_model(id=created["id"])["model_meta"] == created["model_meta"]

    summary = deploy_op(moto_url, model_package_arn=arn, name=model_name, if_exists="update").execute({})
    assert "model_meta" not in summary  # a small XCom
    updated = mls.get_model(summary["id"])
    assert updated["id"] == created["id"]
    assert updated["version"] == "v1"
    assert updated["model_meta"]["auc"] == "0.91"
    assert updated["model_meta"]["model_card"] == NEW_CARD
    assert updated["model_meta"]["model_package"]["approval_description"] == "second review"
    assert len(mls.list_all_manual_models(name=model_name)) == 1


def test_deploy_with_bad_package_reference_creates_nothing(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, mls: MLSHook, model_name: str
) -> None:
    arn = register(registry, group_name, approval_status="Approved")["ModelPackageArn"]
    with pytest.raises(AirflowFailException, match="model_package_arn: give model_package_arn, or"):
        deploy_op(moto_url, model_package_arn=arn, model_package_group=group_name, name=model_name).execute(
            {}
        )
    with pytest.raises(AirflowFailException, match="has no version 5"):
        deploy_op(moto_url, model_package_group=group_name, model_package_version=5, name=model_name).execute(
            {}
        )
    assert mls.list_all_manual_models(name=model_name) == []


# ---- known bugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "by",
    [
        "arn",
        "group",
    ],
)
def test_bad_input_is_refused_before_any_aws_call(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, by: str
) -> None:
    arn = register(registry, group_name)["ModelPackageArn"]
    ref = (
        {"model_package_arn": arn}
        if by == "arn"
        else {"model_package_group": group_name, "model_package_version": 1}
    )
    op = update_op(moto_url, **ref, approval_status="approved")
    calls: list[str] = []
    op.registry.get_conn().meta.events.register(
        "provide-client-params.sagemaker.*", lambda event_name, **_: calls.append(event_name.split(".")[-1])
    )
    with pytest.raises(AirflowFailException, match="approval_status"):
        op.execute({})
    assert calls == []


def test_bad_input_on_a_missing_version_names_the_bad_field(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str
) -> None:
    register(registry, group_name)
    with pytest.raises(AirflowFailException, match="approval_status"):
        update_op(
            moto_url, model_package_group=group_name, model_package_version=7, approval_status="approved"
        ).execute({})


@pytest.mark.parametrize("number", [0, "0"], ids=["int", "str"])
@pytest.mark.parametrize("operator", ["update", "deploy"])
def test_version_number_zero_names_model_package_version(
    registry: SageMakerModelRegistryHook, moto_url: str, group_name: str, number: Any, operator: str
) -> None:
    register(registry, group_name, approval_status="Approved")
    ref = {"model_package_group": group_name, "model_package_version": number}
    op = (
        update_op(moto_url, **ref, approval_status="Approved")
        if operator == "update"
        else deploy_op(moto_url, **ref, name="never-created")
    )
    with pytest.raises(AirflowFailException, match="model_package_version: "):
        op.execute({})
