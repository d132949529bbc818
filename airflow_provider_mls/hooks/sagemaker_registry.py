"""The SageMaker Model Registry hook: model package groups, their versions, approval, metadata and model card."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.aws.hook import AwsServiceHook, jsonable
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSValidationError
from airflow_provider_mls.model_card import MODEL_CARD_STATUSES
from airflow_provider_mls.rules import (
    MAX_DESCRIPTION_LENGTH as MAX_DESCRIPTION_LENGTH,  # re-exported: operators/approval.py imports it here
)
from airflow_provider_mls.rules import (
    MAX_METADATA_KEYS,
    MAX_PAGE_SIZE,
    check_arn,
    check_choice,
    check_client_token,
    check_group,
    check_image,
    check_metadata,
    check_metadata_keys,
    check_model_data_url,
    check_page_size,
    check_text,
    check_version_number,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
CONTENT_TYPES = ("application/json",)


def _model_card(content: Mapping[str, Any] | None, status: str | None) -> dict[str, str]:
    """The ``ModelCard`` request member; the content checked against the model package card schema."""
    card: dict[str, str] = {}
    if content is not None:
        from airflow_provider_mls.model_card import model_card_json, validate_model_card

        # validate_model_card also checks the size limit, measured on model_card_json's string.
        card["ModelCardContent"] = model_card_json(validate_model_card(content, "model_card_content"))
    if status is not None:
        card["ModelCardStatus"] = check_choice(status, "model_card_status", MODEL_CARD_STATUSES)
    return card


class SageMakerModelRegistryHook(AwsServiceHook):
    """The SageMaker Model Registry: model package groups and their numbered versions.

    Every method returns plain JSON values (datetimes as ISO strings, no ``ResponseMetadata``), safe
    to push to XCom. Input is checked before any request; a bad value raises ``MLSValidationError``
    naming the argument.

    Errors of the service stay botocore ``ClientError``s: SageMaker reports a missing model package
    and bad input alike as ``ValidationException``, told apart only by the message text, so mapping
    them onto the MLS error classes would be a guess. The hook raises ``MLSNotFoundError`` only
    where it decides itself that something is missing (a version number not in its group).

    :param aws_conn_id: the AWS connection (used through the amazon provider when it is installed;
        None, or no amazon provider, means boto3's default credential chain).
    :param region_name: the AWS region; default: the connection's, else boto3's.
    :param endpoint_url: another endpoint (a VPC endpoint, a test server); default: the connection's
        ``endpoint_url`` extra or the ``AWS_ENDPOINT_URL[_SAGEMAKER]`` environment variable.
    :param page_size: ``MaxResults`` of each list request (1-100).
    """

    hook_name = "SageMaker Model Registry"
    service = "sagemaker"

    def __init__(
        self,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        super().__init__(aws_conn_id, region_name, endpoint_url)
        self.page_size = check_page_size(page_size)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (a page of one model package group)."""
        try:
            self.get_conn().list_model_package_groups(MaxResults=1)
        except Exception as exc:
            return False, f"SageMaker connection failed: {exc}"
        return True, "Connected to the SageMaker Model Registry"

    def _paginate(
        self, operation: str, result_key: str, *, max_items: int | None = None, **params: Any
    ) -> list[Any]:
        config: dict[str, int] = {"PageSize": self.page_size}
        if max_items is not None:
            config["MaxItems"] = max_items
        items: list[Any] = []
        for page in self.get_conn().get_paginator(operation).paginate(**params, PaginationConfig=config):
            items.extend(page.get(result_key, []))
        return items

    # ---- groups -----------------------------------------------------------------------------

    def _group_arn(self, group: str) -> str | None:
        # Listing tells "missing" from "bad input" without parsing a ValidationException's text.
        for summary in self._paginate(
            "list_model_package_groups", "ModelPackageGroupSummaryList", NameContains=group
        ):
            if summary.get("ModelPackageGroupName") == group:
                return str(summary["ModelPackageGroupArn"])
        return None

    def ensure_group(self, group: str, description: str = "") -> str:
        """The ARN of the model package group ``group``, created (with ``description``) if missing."""
        from botocore.exceptions import ClientError

        group = check_group(group)
        description = check_text(description, "description", MAX_DESCRIPTION_LENGTH)
        arn = self._group_arn(group)
        if arn is not None:
            return arn
        request: dict[str, Any] = {"ModelPackageGroupName": group}
        if description:
            request["ModelPackageGroupDescription"] = description
        try:
            response = self.get_conn().create_model_package_group(**request)
        except ClientError:
            # Lost a race with another writer: fine if the group is there now.
            arn = self._group_arn(group)
            if arn is None:
                raise
            return arn
        self.log.info("Created model package group %s", group)
        return str(response["ModelPackageGroupArn"])

    # ---- versions ---------------------------------------------------------------------------

    def register_version(
        self,
        group: str,
        *,
        model_data_url: str,
        image: str,
        approval_status: str = "PendingManualApproval",
        description: str | None = None,
        customer_metadata: Mapping[str, str] | None = None,
        model_card_content: Mapping[str, Any] | None = None,
        model_card_status: str = "Draft",
        client_token: str | None = None,
    ) -> dict[str, Any]:
        """Register a new version in ``group`` (which must exist: see ``ensure_group``); its description.

        One inference container (``image`` with the artifact ``model_data_url``, an ``s3://`` or
        ``https://`` URL), JSON in and out. The model card is sent only with ``model_card_content``.

        :param client_token: makes a repeated call (a retried task) return the same version
            instead of registering another one (1-36 letters, digits, hyphens; e.g. a run id hash).
        """
        group = check_group(group)
        check_model_data_url(model_data_url)
        check_image(image)
        approval_status = check_choice(approval_status, "approval_status", APPROVAL_STATUSES)
        if description is not None:
            check_text(description, "description", MAX_DESCRIPTION_LENGTH)
        metadata = check_metadata(customer_metadata, "customer_metadata")
        check_client_token(client_token)
        model_card_status = check_choice(model_card_status, "model_card_status", MODEL_CARD_STATUSES)
        card = _model_card(model_card_content, model_card_status) if model_card_content is not None else {}

        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": approval_status,
            "InferenceSpecification": {
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": list(CONTENT_TYPES),
                "SupportedResponseMIMETypes": list(CONTENT_TYPES),
            },
        }
        if description:
            request["ModelPackageDescription"] = description
        if metadata:
            request["CustomerMetadataProperties"] = metadata
        if card:
            request["ModelCard"] = card
        if client_token is not None:
            request["ClientToken"] = client_token
        arn = str(self.get_conn().create_model_package(**request)["ModelPackageArn"])
        self.log.info("Registered model package %s", arn)
        return self.describe_version(arn)

    def _list_versions(
        self, group: str, approval_status: str | None, max_items: int | None = None
    ) -> list[dict[str, Any]]:
        if not isinstance(group, str) or not group.startswith("arn:"):
            group = check_group(group)
        params: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if approval_status is not None:
            params["ModelApprovalStatus"] = check_choice(
                approval_status, "approval_status", APPROVAL_STATUSES
            )
        summaries = self._paginate(
            "list_model_packages", "ModelPackageSummaryList", max_items=max_items, **params
        )
        return [jsonable(summary) for summary in summaries]

    def list_versions(self, group: str, *, approval_status: str | None = None) -> list[dict[str, Any]]:
        """The version summaries of ``group`` (a name or the group's ARN), newest first, every page.

        ``list_model_packages`` needs the group here: without ``ModelPackageGroupName`` (or
        ``ModelPackageType``) SageMaker lists only unversioned model packages, never a group's
        versions.

        :param approval_status: only versions in this state (Approved, Rejected, PendingManualApproval).
        """
        return self._list_versions(group, approval_status)

    def describe_version(
        self, arn: str | None = None, *, group: str | None = None, version: int | None = None
    ) -> dict[str, Any]:
        """A version's full description, by ``arn`` or by ``group`` and ``version`` number.

        By number the group's versions are listed to find the ARN; a number that is not there
        raises ``MLSNotFoundError``.
        """
        if arn is not None and (group is not None or version is not None):
            raise MLSValidationError("arn", "give either arn, or group and version, not both")
        if arn is None:
            if group is None or version is None:
                raise MLSValidationError("arn", "give either arn, or both group and version")
            check_version_number(version)
            for summary in self._list_versions(group, None):
                if summary.get("ModelPackageVersion") == version:
                    arn = str(summary["ModelPackageArn"])
                    break
            else:
                raise MLSNotFoundError(f"model package group {group!r} has no version {version}", code=404)
        arn = check_arn(arn)
        return dict(jsonable(self.get_conn().describe_model_package(ModelPackageName=arn)))

    def latest_approved_version(self, group: str) -> dict[str, Any] | None:
        """The description of the newest Approved version of ``group``, or None when none is approved."""
        newest = self._list_versions(group, "Approved", max_items=1)
        return self.describe_version(newest[0]["ModelPackageArn"]) if newest else None

    def approval(self, arn: str) -> dict[str, Any]:
        """``{"arn", "status", "description"}``: the version's approval status and its description."""
        described = self.describe_version(check_arn(arn))
        return {
            "arn": described["ModelPackageArn"],
            "status": described.get("ModelApprovalStatus"),
            "description": described.get("ApprovalDescription"),
        }

    def validate_update(
        self,
        *,
        approval_status: str | None = None,
        approval_description: str | None = None,
        customer_metadata: Mapping[str, str] | None = None,
        remove_metadata_keys: Sequence[str] = (),
        model_card_content: Mapping[str, Any] | None = None,
        model_card_status: str | None = None,
    ) -> dict[str, Any]:
        """The ``update_model_package`` request for these changes (without the ARN); no call is made.

        Raises ``MLSValidationError`` naming the field (or the path in the model card) on bad input.
        """
        if approval_status is not None:
            approval_status = check_choice(approval_status, "approval_status", APPROVAL_STATUSES)
        if approval_description is not None:
            check_text(approval_description, "approval_description", MAX_DESCRIPTION_LENGTH)
        metadata = check_metadata(customer_metadata, "customer_metadata")
        remove = check_metadata_keys(remove_metadata_keys, "remove_metadata_keys")
        both = sorted(set(metadata) & set(remove))
        if both:
            raise MLSValidationError("remove_metadata_keys", f"key {both[0]!r} is both set and removed")
        card = _model_card(model_card_content, model_card_status)

        request: dict[str, Any] = {}
        if approval_status is not None:
            request["ModelApprovalStatus"] = approval_status
        if approval_description is not None:
            request["ApprovalDescription"] = approval_description
        if metadata:
            request["CustomerMetadataProperties"] = metadata
        if remove:
            request["CustomerMetadataPropertiesToRemove"] = remove
        if card:
            request["ModelCard"] = card

        return request

    def update_version(
        self,
        arn: str,
        *,
        approval_status: str | None = None,
        approval_description: str | None = None,
        customer_metadata: Mapping[str, str] | None = None,
        remove_metadata_keys: Sequence[str] = (),
        model_card_content: Mapping[str, Any] | None = None,
        model_card_status: str | None = None,
    ) -> dict[str, Any]:
        """Change a version with one ``update_model_package`` carrying only what is given; its description after.

        SageMaker adds or overwrites the ``customer_metadata`` keys and keeps the others;
        ``remove_metadata_keys`` deletes keys. ``model_card_content`` replaces the card's content
        (checked against the model package card schema first). A version whose model card is
        ``Archived`` takes no change at all. With nothing to change, no update is sent.

        The current version is read first (the archived check, the 50-key limit after the merge),
        so input errors found there are raised before the update too.
        """
        arn = check_arn(arn)
        request = self.validate_update(
            approval_status=approval_status,
            approval_description=approval_description,
            customer_metadata=customer_metadata,
            remove_metadata_keys=remove_metadata_keys,
            model_card_content=model_card_content,
            model_card_status=model_card_status,
        )
        metadata = request.get("CustomerMetadataProperties") or {}
        remove = request.get("CustomerMetadataPropertiesToRemove") or []

        current = self.describe_version(arn)
        if not request:
            return current
        if (current.get("ModelCard") or {}).get("ModelCardStatus") == "Archived":
            raise MLSValidationError("model_card_status", "an archived model card refuses changes")
        keys_after = (set(current.get("CustomerMetadataProperties") or {}) | set(metadata)) - set(remove)
        if len(keys_after) > MAX_METADATA_KEYS:
            raise MLSValidationError(
                "customer_metadata",
                f"the version would have {len(keys_after)} metadata keys, at most {MAX_METADATA_KEYS}",
            )
        self.get_conn().update_model_package(ModelPackageArn=arn, **request)
        self.log.info("Updated model package %s: %s", arn, ", ".join(sorted(request)))
        return self.describe_version(arn)
