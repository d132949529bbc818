"""The model card and the exact requests, with botocore's Stubber on the hook's own client.

moto 5.2 drops ``ModelCard`` on ``create_model_package`` and ``update_model_package`` and never
returns it from ``describe_model_package``, so everything about the card (what is sent, the refusal
of an archived card) is checked here against the request botocore would send, validated against
the installed botocore service model, with responses shaped as SageMaker documents them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

if TYPE_CHECKING:
    from collections.abc import Iterator

GROUP = "churn"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
GROUP_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/churn"
ARTIFACT = "s3://models/churn/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
CARD = {
    "model_overview": {"model_creator": "growth team", "model_artifact": [ARTIFACT]},
    "intended_uses": {"purpose_of_model": "churn risk", "risk_rating": "Low"},
    "evaluation_details": [
        {
            "name": "holdout",
            "metric_groups": [
                {"name": "main", "metric_data": [{"name": "auc", "type": "number", "value": 0.91}]}
            ],
        }
    ],
}
CARD_JSON = json.dumps(CARD, separators=(",", ":"), ensure_ascii=False)


def _described(card_status: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``describe_model_package`` response as SageMaker sends it."""
    response: dict[str, Any] = {
        "ModelPackageName": GROUP,
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 3,
        "ModelPackageArn": ARN,
        "CreationTime": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {"team": "growth"},
        **extra,
    }
    if card_status is not None:
        response["ModelCard"] = {"ModelCardContent": CARD_JSON, "ModelCardStatus": card_status}
    return response


@pytest.fixture
def hook(aws_env: None) -> SageMakerModelRegistryHook:
    # Nothing listens on port 9: a request that escaped the Stubber would fail loudly.
    return SageMakerModelRegistryHook(
        aws_conn_id=None, region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
    )


@pytest.fixture
def stub(hook: SageMakerModelRegistryHook) -> Iterator[Stubber]:
    with Stubber(hook.get_conn()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _expect_describe(stub: Stubber, response: dict[str, Any]) -> None:
    stub.add_response("describe_model_package", response, {"ModelPackageName": ARN})


# ---- register ----------------------------------------------------------------------------------


def test_register_sends_the_model_card(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    stub.add_response(
        "create_model_package",
        {"ModelPackageArn": ARN},
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "PendingManualApproval",
            "ModelPackageDescription": "weekly retrain",
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE, "ModelDataUrl": ARTIFACT}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "CustomerMetadataProperties": {"team": "growth"},
            "ModelCard": {"ModelCardContent": CARD_JSON, "ModelCardStatus": "PendingReview"},
            "ClientToken": "run-2026-11-01",
        },
    )
    _expect_describe(stub, _described("PendingReview"))
    version = hook.register_version(
        GROUP,
        model_data_url=ARTIFACT,
        image=IMAGE,
        description="weekly retrain",
        customer_metadata={"team": "growth"},
        model_card_content=CARD,
        model_card_status="PendingReview",
        client_token="run-2026-11-01",
    )
    assert version["ModelCard"] == {"ModelCardContent": CARD_JSON, "ModelCardStatus": "PendingReview"}
    assert version["CreationTime"] == "2026-11-01T12:00:00+00:00"
    assert json.loads(json.dumps(version)) == version


def test_register_without_a_card_sends_none(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    stub.add_response(
        "create_model_package",
        {"ModelPackageArn": ARN},
        {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": ANY,
        },
    )
    _expect_describe(stub, _described(ModelApprovalStatus="Approved"))
    hook.register_version(
        GROUP, model_data_url=ARTIFACT, image=IMAGE, approval_status="Approved", model_card_status="Approved"
    )


# ---- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({"approval_status": "Approved"}, {"ModelApprovalStatus": "Approved"}),
        ({"approval_description": "ok"}, {"ApprovalDescription": "ok"}),
        (
            {"model_card_content": CARD, "model_card_status": "PendingReview"},
            {"ModelCard": {"ModelCardContent": CARD_JSON, "ModelCardStatus": "PendingReview"}},
        ),
        ({"model_card_content": json.dumps(CARD)}, {"ModelCard": {"ModelCardContent": CARD_JSON}}),
        ({"model_card_status": "Archived"}, {"ModelCard": {"ModelCardStatus": "Archived"}}),
        (
            {
                "approval_status": "Rejected",
                "approval_description": "drift",
                "customer_metadata": {"reason": "drift"},
                "remove_metadata_keys": ["team"],
                "model_card_status": "Approved",
            },
            {
                "ModelApprovalStatus": "Rejected",
                "ApprovalDescription": "drift",
                "CustomerMetadataProperties": {"reason": "drift"},
                "CustomerMetadataPropertiesToRemove": ["team"],
                "ModelCard": {"ModelCardStatus": "Approved"},
            },
        ),
    ],
)
def test_update_sends_only_what_is_given(
    hook: SageMakerModelRegistryHook, stub: Stubber, kwargs: dict[str, Any], sent: dict[str, Any]
) -> None:
    _expect_describe(stub, _described("Draft"))
    stub.add_response("update_model_package", {"ModelPackageArn": ARN}, {"ModelPackageArn": ARN, **sent})
    _expect_describe(stub, _described("Draft", ApprovalDescription="after"))
    assert hook.update_version(ARN, **kwargs)["ApprovalDescription"] == "after"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"approval_status": "Approved"},
        {"customer_metadata": {"stage": "prod"}},
        {"remove_metadata_keys": ["team"]},
        {"model_card_content": CARD},
        {"model_card_status": "Draft"},
    ],
)
def test_an_archived_card_refuses_changes(
    hook: SageMakerModelRegistryHook, stub: Stubber, kwargs: dict[str, Any]
) -> None:
    _expect_describe(stub, _described("Archived"))  # and no update_model_package
    with pytest.raises(MLSValidationError) as caught:
        hook.update_version(ARN, **kwargs)
    assert caught.value.field == "model_card_status"
    assert "an archived model card refuses changes" in str(caught.value)


def test_an_archived_card_with_nothing_to_change(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    _expect_describe(stub, _described("Archived"))
    assert hook.update_version(ARN)["ModelCard"]["ModelCardStatus"] == "Archived"


def test_a_version_without_a_card_takes_one(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    _expect_describe(stub, _described())
    stub.add_response(
        "update_model_package",
        {"ModelPackageArn": ARN},
        {"ModelPackageArn": ARN, "ModelCard": {"ModelCardContent": CARD_JSON, "ModelCardStatus": "Draft"}},
    )
    _expect_describe(stub, _described("Draft"))
    hook.update_version(ARN, model_card_content=CARD, model_card_status="Draft")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"intended_uses": {"risk_rating": "Extreme"}}, "model_card_content.intended_uses.risk_rating"),
        ({"model_overview": {"model_creator": 7}}, "model_card_content.model_overview.model_creator"),
        ({"not_a_section": {}}, "model_card_content.not_a_section"),
        ("{not json", "model_card_content"),
        (  # each value within the schema, the whole over ModelCardContent's 100000 characters
            {"additional_information": {"custom_details": {f"k{i}": "x" * 1024 for i in range(100)}}},
            "model_card_content",
        ),
    ],
)
def test_an_invalid_card_is_named_and_nothing_is_sent(
    hook: SageMakerModelRegistryHook, stub: Stubber, content: Any, field: str
) -> None:
    with pytest.raises(MLSValidationError) as caught:
        hook.update_version(ARN, model_card_content=content)
    assert caught.value.field == field
    with pytest.raises(MLSValidationError):
        hook.register_version(GROUP, model_data_url=ARTIFACT, image=IMAGE, model_card_content=content)


# ---- errors of the service ---------------------------------------------------------------------


def test_client_errors_pass_through(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    stub.add_client_error(
        "describe_model_package",
        service_error_code="ValidationException",
        service_message=f"Model Package {ARN} does not exist.",
        http_status_code=400,
        expected_params={"ModelPackageName": ARN},
    )
    with pytest.raises(ClientError) as caught:
        hook.approval(ARN)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def _groups(*names: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupSummaryList": [
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupArn": GROUP_ARN.replace("/churn", f"/{name}"),
                "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
                "ModelPackageGroupStatus": "Completed",
            }
            for name in names
        ]
    }


def test_ensure_group_after_losing_a_race(hook: SageMakerModelRegistryHook, stub: Stubber) -> None:
    listing = {"NameContains": GROUP, "MaxResults": 100}
    stub.add_response("list_model_package_groups", _groups("churn-v2"), listing)
    stub.add_client_error(
        "create_model_package_group",
        service_error_code="ValidationException",
        service_message="Model Package Group already exists",
        expected_params={"ModelPackageGroupName": GROUP},
    )
    stub.add_response("list_model_package_groups", _groups("churn-v2", GROUP), listing)
    assert hook.ensure_group(GROUP) == GROUP_ARN


def test_ensure_group_create_error_when_still_missing(
    hook: SageMakerModelRegistryHook, stub: Stubber
) -> None:
    listing = {"NameContains": GROUP, "MaxResults": 100}
    stub.add_response("list_model_package_groups", _groups(), listing)
    stub.add_client_error(
        "create_model_package_group", service_error_code="AccessDeniedException", http_status_code=403
    )
    stub.add_response("list_model_package_groups", _groups(), listing)
    with pytest.raises(ClientError):
        hook.ensure_group(GROUP)
