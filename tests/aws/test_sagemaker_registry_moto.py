"""SageMakerModelRegistryHook against a real moto server over HTTP.

moto 5.2 neither keeps nor returns a model package's ``ModelCard`` (create or update): the model
card is covered with botocore's Stubber in ``test_sagemaker_registry_stubbed.py``. moto's
``update_model_package`` is given SageMaker's semantics for fields that are not sent (see
``conftest._aws_update_semantics``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_provider_mls.exceptions import MLSNotFoundError, MLSValidationError
from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

if TYPE_CHECKING:
    from collections.abc import Iterator

ARTIFACT = "s3://models/churn/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"


def _register(hook: SageMakerModelRegistryHook, group: str, **kwargs: Any) -> dict[str, Any]:
    return hook.register_version(group, model_data_url=ARTIFACT, image=IMAGE, **kwargs)


def _calls(hook: SageMakerModelRegistryHook, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call the hook's client makes from now on."""
    seen: list[dict[str, Any]] = []
    hook.get_conn().meta.events.register(
        f"provide-client-params.sagemaker.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


@pytest.fixture
def silent(registry: SageMakerModelRegistryHook) -> Iterator[SageMakerModelRegistryHook]:
    """The hook with a client that answers nothing: any request fails the test."""
    with Stubber(registry.get_conn()) as stubber:
        yield registry
        stubber.assert_no_pending_responses()


# ---- groups -------------------------------------------------------------------------------------


def test_ensure_group_creates_once(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    creates = _calls(registry, "CreateModelPackageGroup")
    arn = registry.ensure_group(group_name, "churn models")
    assert arn.endswith(f":model-package-group/{group_name}")
    assert registry.ensure_group(group_name, "another description") == arn
    assert creates == [{"ModelPackageGroupName": group_name, "ModelPackageGroupDescription": "churn models"}]
    group = registry.get_conn().describe_model_package_group(ModelPackageGroupName=group_name)
    assert group["ModelPackageGroupDescription"] == "churn models"


def test_ensure_group_finds_the_exact_name(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    longer = registry.ensure_group(f"{group_name}-2")
    assert registry.ensure_group(group_name) != longer


# ---- register, list, describe -------------------------------------------------------------------


def test_register_version(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    version = _register(
        registry, group_name, description="first", customer_metadata={"team": "growth", "auc": "0.91"}
    )
    assert version["ModelPackageVersion"] == 1
    assert version["ModelPackageGroupName"] == group_name
    assert version["ModelApprovalStatus"] == "PendingManualApproval"
    assert version["ModelPackageDescription"] == "first"
    assert version["CustomerMetadataProperties"] == {"team": "growth", "auc": "0.91"}
    assert version["InferenceSpecification"] == {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": ARTIFACT}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    assert isinstance(version["CreationTime"], str)
    assert "ResponseMetadata" not in version
    assert json.loads(json.dumps(version)) == version  # XCom-safe
    assert _register(registry, group_name, approval_status="Approved")["ModelPackageVersion"] == 2


def test_register_into_a_missing_group(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    with pytest.raises(ClientError) as caught:
        _register(registry, group_name)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_list_versions_newest_first_over_pages(moto_url: str, aws_env: None, group_name: str) -> None:
    hook = SageMakerModelRegistryHook(endpoint_url=moto_url, page_size=2)
    hook.ensure_group(group_name)
    for _ in range(5):
        _register(hook, group_name)
    lists = _calls(hook, "ListModelPackages")
    versions = hook.list_versions(group_name)
    assert [v["ModelPackageVersion"] for v in versions] == [5, 4, 3, 2, 1]
    assert len(lists) == 3  # pages of 2, 2 and 1
    assert all(call["MaxResults"] == 2 for call in lists)
    assert "NextToken" not in lists[0] and all("NextToken" in call for call in lists[1:])
    assert {k: lists[0][k] for k in ("ModelPackageGroupName", "SortBy", "SortOrder")} == {
        "ModelPackageGroupName": group_name,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    assert json.loads(json.dumps(versions)) == versions


def test_list_versions_by_group_arn(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    group_arn = registry.ensure_group(group_name)
    _register(registry, group_name)
    assert [v["ModelPackageVersion"] for v in registry.list_versions(group_arn)] == [1]


def test_list_versions_by_approval_status(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    for status in ("Approved", "Rejected", "Approved", "PendingManualApproval"):
        _register(registry, group_name, approval_status=status)
    assert [
        v["ModelPackageVersion"] for v in registry.list_versions(group_name, approval_status="Approved")
    ] == [
        3,
        1,
    ]
    assert [
        v["ModelPackageVersion"] for v in registry.list_versions(group_name, approval_status="Rejected")
    ] == [2]
    assert [v["ModelPackageVersion"] for v in registry.list_versions(group_name)] == [4, 3, 2, 1]


def test_describe_by_arn_and_by_group_and_version(
    registry: SageMakerModelRegistryHook, group_name: str
) -> None:
    registry.ensure_group(group_name)
    first = _register(registry, group_name)
    second = _register(registry, group_name)
    assert registry.describe_version(second["ModelPackageArn"]) == second
    assert registry.describe_version(group=group_name, version=1) == first
    assert registry.describe_version(group=group_name, version=2) == second


def test_describe_a_missing_version(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    _register(registry, group_name)
    with pytest.raises(MLSNotFoundError, match=rf"{group_name}.*no version 7"):
        registry.describe_version(group=group_name, version=7)


def test_describe_a_missing_arn_is_a_client_error(registry: SageMakerModelRegistryHook) -> None:
    with pytest.raises(ClientError):
        registry.describe_version("arn:aws:sagemaker:us-east-1:123456789012:model-package/nope/1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "arn"),
        ({"group": "g"}, "arn"),
        ({"version": 1}, "arn"),
        ({"arn": "arn:x", "group": "g", "version": 1}, "arn"),
        ({"arn": "arn:x", "version": 1}, "arn"),
        ({"arn": ""}, "arn"),
        ({"group": "g", "version": 0}, "version"),
        ({"group": "g", "version": "1"}, "version"),
        ({"group": "g", "version": True}, "version"),
        ({"group": "bad name", "version": 1}, "group"),
    ],
)
def test_describe_bad_arguments(
    silent: SageMakerModelRegistryHook, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(MLSValidationError) as caught:
        silent.describe_version(**kwargs)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


# ---- approval ----------------------------------------------------------------------------------


def test_latest_approved_version(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    assert registry.latest_approved_version(group_name) is None
    _register(registry, group_name, approval_status="Approved")
    second = _register(registry, group_name, approval_status="Approved")
    _register(registry, group_name, approval_status="Rejected")
    _register(registry, group_name)
    latest = registry.latest_approved_version(group_name)
    assert latest == second  # the full description
    assert latest is not None and latest["ModelPackageVersion"] == 2


def test_approve_and_reject(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    arn = _register(registry, group_name)["ModelPackageArn"]
    assert registry.approval(arn) == {"arn": arn, "status": "PendingManualApproval", "description": None}

    approved = registry.update_version(
        arn, approval_status="Approved", approval_description="AUC 0.91 >= 0.9"
    )
    assert approved["ModelApprovalStatus"] == "Approved"
    assert registry.approval(arn) == {"arn": arn, "status": "Approved", "description": "AUC 0.91 >= 0.9"}
    assert registry.latest_approved_version(group_name) == approved

    registry.update_version(arn, approval_status="Rejected", approval_description="drift")
    assert registry.approval(arn)["status"] == "Rejected"
    assert registry.latest_approved_version(group_name) is None


def test_metadata_merge_and_removal(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    arn = _register(
        registry, group_name, approval_status="Approved", customer_metadata={"team": "growth", "auc": "0.90"}
    )["ModelPackageArn"]
    updates = _calls(registry, "UpdateModelPackage")

    after = registry.update_version(arn, customer_metadata={"auc": "0.93", "owner": "kim"})
    assert after["CustomerMetadataProperties"] == {"team": "growth", "auc": "0.93", "owner": "kim"}
    after = registry.update_version(arn, remove_metadata_keys=["team"])
    assert after["CustomerMetadataProperties"] == {"auc": "0.93", "owner": "kim"}
    after = registry.update_version(arn, customer_metadata={"stage": "prod"}, remove_metadata_keys=("owner",))
    assert after["CustomerMetadataProperties"] == {"auc": "0.93", "stage": "prod"}
    assert after["ModelApprovalStatus"] == "Approved"  # untouched
    # Only what was given went out: no status, no full map.
    assert updates == [
        {"ModelPackageArn": arn, "CustomerMetadataProperties": {"auc": "0.93", "owner": "kim"}},
        {"ModelPackageArn": arn, "CustomerMetadataPropertiesToRemove": ["team"]},
        {
            "ModelPackageArn": arn,
            "CustomerMetadataProperties": {"stage": "prod"},
            "CustomerMetadataPropertiesToRemove": ["owner"],
        },
    ]


def test_update_with_nothing_to_change(registry: SageMakerModelRegistryHook, group_name: str) -> None:
    registry.ensure_group(group_name)
    version = _register(registry, group_name)
    updates = _calls(registry, "UpdateModelPackage")
    assert registry.update_version(version["ModelPackageArn"], customer_metadata={}) == version
    assert updates == []


def test_metadata_key_limit_counts_the_existing_keys(
    registry: SageMakerModelRegistryHook, group_name: str
) -> None:
    registry.ensure_group(group_name)
    full = {f"k{i}": "v" for i in range(50)}
    arn = _register(registry, group_name, customer_metadata=full)["ModelPackageArn"]
    updates = _calls(registry, "UpdateModelPackage")
    with pytest.raises(MLSValidationError) as caught:
        registry.update_version(arn, customer_metadata={"one_more": "v"})
    assert caught.value.field == "customer_metadata"
    assert "51" in str(caught.value)
    assert updates == []
    # Replacing one key keeps the count.
    after = registry.update_version(arn, customer_metadata={"one_more": "v"}, remove_metadata_keys=["k0"])
    assert len(after["CustomerMetadataProperties"]) == 50


# ---- bad input: the field is named and nothing is sent -------------------------------------------

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"approval_status": "Yes"}, "approval_status"),
        ({"approval_status": "approved"}, "approval_status"),
        ({"approval_description": "x" * 1025}, "approval_description"),
        ({"approval_description": 3}, "approval_description"),
        ({"customer_metadata": ["a"]}, "customer_metadata"),
        ({"customer_metadata": {"k": 1}}, "customer_metadata['k']"),
        ({"customer_metadata": {"k": ""}}, "customer_metadata['k']"),
        ({"customer_metadata": {"k": "v" * 257}}, "customer_metadata['k']"),
        ({"customer_metadata": {"k": "a#b"}}, "customer_metadata['k']"),
        ({"customer_metadata": {"k" * 129: "v"}}, "customer_metadata"),
        ({"customer_metadata": {"": "v"}}, "customer_metadata"),
        ({"customer_metadata": {1: "v"}}, "customer_metadata"),
        ({"customer_metadata": {"a;b": "v"}}, "customer_metadata"),
        ({"customer_metadata": {f"k{i}": "v" for i in range(51)}}, "customer_metadata"),
        ({"remove_metadata_keys": "team"}, "remove_metadata_keys"),
        ({"remove_metadata_keys": [""]}, "remove_metadata_keys"),
        ({"customer_metadata": {"a": "1"}, "remove_metadata_keys": ["a"]}, "remove_metadata_keys"),
        ({"model_card_status": "Done"}, "model_card_status"),
        ({"arn": ""}, "arn"),
        ({"arn": None}, "arn"),
    ],
)
def test_update_bad_input(silent: SageMakerModelRegistryHook, kwargs: dict[str, Any], field: str) -> None:
    arn = kwargs.pop("arn", ARN)
    with pytest.raises(MLSValidationError) as caught:
        silent.update_version(arn, **kwargs)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_metadata_allows_unicode_letters_and_the_listed_symbols(silent: SageMakerModelRegistryHook) -> None:
    from airflow_provider_mls.rules import check_metadata as _check_metadata

    metadata = {"팀 이름": "성장 팀", "path/to:key=v+1-2@x_y.z": "s3://bucket/key"}
    assert _check_metadata(metadata, "customer_metadata") == metadata


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"group": "bad name"}, "group"),
        ({"group": "-starts-with-hyphen"}, "group"),
        ({"group": "g" * 64}, "group"),
        ({"model_data_url": "ftp://host/model"}, "model_data_url"),
        ({"model_data_url": ""}, "model_data_url"),
        ({"image": ""}, "image"),
        ({"image": "repo/image: 1"}, "image"),
        ({"approval_status": "Ok"}, "approval_status"),
        ({"description": "d" * 1025}, "description"),
        ({"customer_metadata": {"k": 2}}, "customer_metadata['k']"),
        ({"client_token": "has space"}, "client_token"),
        ({"client_token": "x" * 37}, "client_token"),
        ({"model_card_content": {"model_overview": {}}, "model_card_status": "Done"}, "model_card_status"),
        ({"model_card_status": "Done"}, "model_card_status"),
    ],
)
def test_register_bad_input(silent: SageMakerModelRegistryHook, kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"group": "g", "model_data_url": ARTIFACT, "image": IMAGE, **kwargs}
    with pytest.raises(MLSValidationError) as caught:
        silent.register_version(arguments.pop("group"), **arguments)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.ensure_group("bad_name"), "group"),
        (lambda h: h.ensure_group("g", description=None), "description"),
        (lambda h: h.list_versions("g", approval_status="approved"), "approval_status"),
        (lambda h: h.list_versions(""), "group"),
        (lambda h: h.latest_approved_version("a b"), "group"),
        (lambda h: h.approval(""), "arn"),
    ],
)
def test_other_bad_input(silent: SageMakerModelRegistryHook, call: Any, field: str) -> None:
    with pytest.raises(MLSValidationError) as caught:
        call(silent)
    assert caught.value.field == field


@pytest.mark.parametrize("page_size", [0, 101, "10", True])
def test_bad_page_size(page_size: Any) -> None:
    with pytest.raises(MLSValidationError) as caught:
        SageMakerModelRegistryHook(page_size=page_size)
    assert caught.value.field == "page_size"


def test_constructor_and_test_connection(registry: SageMakerModelRegistryHook, moto_url: str) -> None:
    hook = SageMakerModelRegistryHook()
    assert (hook.aws_conn_id, hook.region_name, hook.endpoint_url, hook._client) == (
        "aws_default",
        None,
        None,
        None,
    )
    assert registry.get_conn() is registry.get_conn()
    assert registry.test_connection() == (True, "Connected to the SageMaker Model Registry")
    assert (SageMakerModelRegistryHook.conn_name_attr, SageMakerModelRegistryHook.default_conn_name) == (
        "aws_conn_id",
        "aws_default",
    )
    assert SageMakerModelRegistryHook.hook_name == "SageMaker Model Registry"
