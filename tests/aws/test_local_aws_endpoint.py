"""The embedded AWS endpoint behaves like SageMaker's model registry where moto alone does not."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

CARD = {"intended_uses": {"purpose_of_model": "churn", "risk_rating": "Low"}}


def test_the_model_card_is_kept_on_create_and_update(
    registry: SageMakerModelRegistryHook, group_name: str
) -> None:
    registry.ensure_group(group_name)
    version = registry.register_version(
        group_name, model_data_url="s3://b/m.joblib", image="img:1", model_card_content=CARD
    )
    assert json.loads(version["ModelCard"]["ModelCardContent"]) == CARD
    assert version["ModelCard"]["ModelCardStatus"] == "Draft"

    updated = registry.update_version(version["ModelPackageArn"], model_card_status="PendingReview")
    assert json.loads(updated["ModelCard"]["ModelCardContent"]) == CARD  # the content stays
    assert updated["ModelCard"]["ModelCardStatus"] == "PendingReview"


def test_an_update_leaves_unsent_fields_and_merges_metadata(
    registry: SageMakerModelRegistryHook, group_name: str
) -> None:
    registry.ensure_group(group_name)
    arn = registry.register_version(
        group_name, model_data_url="s3://b/m.joblib", image="img:1", customer_metadata={"team": "a"}
    )["ModelPackageArn"]
    registry.update_version(arn, approval_status="Approved", approval_description="looks good")
    after = registry.update_version(arn, customer_metadata={"reviewer": "b"})
    assert after["ModelApprovalStatus"] == "Approved"
    assert after["ApprovalDescription"] == "looks good"
    assert after["CustomerMetadataProperties"] == {"team": "a", "reviewer": "b"}


def test_env_points_boto3_at_the_endpoint(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_mls.local.aws import LocalAWSEndpoint

    with LocalAWSEndpoint() as endpoint:
        for name, value in endpoint.env().items():
            monkeypatch.setenv(name, value)
        import boto3

        client = boto3.client("sagemaker")
        assert client.meta.endpoint_url == endpoint.url
        client.create_model_package_group(ModelPackageGroupName="env-check")
        names = [
            g["ModelPackageGroupName"]
            for g in client.list_model_package_groups()["ModelPackageGroupSummaryList"]
        ]
        assert "env-check" in names
    with pytest.raises(RuntimeError, match="not started"):
        _ = endpoint.url
