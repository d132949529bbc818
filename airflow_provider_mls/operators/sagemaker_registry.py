"""Operators on the SageMaker Model Registry, and the deploy of an approved version to MLS.

``UpdateModelPackageOperator`` updates a model package version's approval, customer metadata and
model card in one task (the amazon provider registers versions but cannot update them).
``DeployModelPackageToMLSOperator`` deploys only what was approved there: the version's model data
URL, card and customer metadata become an MLS manual model's ``model_data`` and ``model_meta``.
Cheap to import: boto3 and requests are imported when a task runs.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import AWS_FIELDS, MLSAwsBaseOperator, registry_hook
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.links import MLSModelLink, SageMakerModelPackageLink
from airflow_provider_mls.operators.models import CreateManualModelOperator
from airflow_provider_mls.refs import PACKAGE_REF_FIELDS, PackageRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

__all__ = ["DeployModelPackageToMLSOperator", "UpdateModelPackageOperator"]


def _card(description: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(content as a dict, status) of a described version's model card, or (None, None)."""
    card = description.get("ModelCard") or {}
    content = card.get("ModelCardContent")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            content = {"raw": content}
    return (content if isinstance(content, dict) else None), card.get("ModelCardStatus")


def version_state(description: dict[str, Any]) -> dict[str, Any]:
    """The small, JSON-serializable state of a described version, for XCom."""
    content, card_status = _card(description)
    return {
        "arn": description.get("ModelPackageArn"),
        "group": description.get("ModelPackageGroupName"),
        "version": description.get("ModelPackageVersion"),
        "approval_status": description.get("ModelApprovalStatus"),
        "approval_description": description.get("ApprovalDescription"),
        "customer_metadata": dict(description.get("CustomerMetadataProperties") or {}),
        "model_card_status": card_status,
        "model_card_sections": sorted(content) if content else [],
    }


class UpdateModelPackageOperator(MLSAwsBaseOperator):
    """Update a SageMaker model package version: approval, description, metadata and card in one task.

    The version by ``model_package_arn``, or ``model_package_group`` and ``model_package_version``.
    Everything is validated before any call: ``approval_status`` (``Approved``, ``Rejected``,
    ``PendingManualApproval``) with ``approval_description``; ``customer_metadata`` merged in and
    ``remove_metadata_keys`` removed; ``model_card_content`` (the whole content, replaced; checked
    against the model package model card schema and its 100,000-character limit, errors name the
    path in the card) and ``model_card_status`` (``Draft``, ``PendingReview``, ``Approved``,
    ``Archived``; an archived card refuses changes). Returns the version's ARN and new state.

    :param model_package_arn: the version's ARN.
    :param model_package_group: or the model package group (with ``model_package_version``).
    :param model_package_version: the version number within the group.
    :param approval_status: ``Approved``, ``Rejected`` or ``PendingManualApproval``.
    :param approval_description: why.
    :param customer_metadata: metadata to merge in (string values).
    :param remove_metadata_keys: metadata keys to remove.
    :param model_card_content: the whole model card content (a dict or its JSON string).
    :param model_card_status: ``Draft``, ``PendingReview``, ``Approved`` or ``Archived``.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = (
        *PACKAGE_REF_FIELDS,
        *AWS_FIELDS,
        "approval_status",
        "approval_description",
        "customer_metadata",
        "remove_metadata_keys",
        "model_card_content",
        "model_card_status",
    )
    template_fields_renderers = {"customer_metadata": "json", "model_card_content": "json"}
    ui_color = "#ffe8cc"
    operator_extra_links = (SageMakerModelPackageLink(),)

    def __init__(
        self,
        *,
        model_package_arn: str | None = None,
        model_package_group: str | None = None,
        model_package_version: int | str | None = None,
        approval_status: str | None = None,
        approval_description: str | None = None,
        customer_metadata: dict[str, str] | None = None,
        remove_metadata_keys: list[str] | None = None,
        model_card_content: dict[str, Any] | str | None = None,
        model_card_status: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id, region_name=region_name, endpoint_url=endpoint_url, **kwargs
        )
        self.model_package_arn = model_package_arn
        self.model_package_group = model_package_group
        self.model_package_version = model_package_version
        self.approval_status = approval_status
        self.approval_description = approval_description
        self.customer_metadata = customer_metadata
        self.remove_metadata_keys = remove_metadata_keys
        self.model_card_content = model_card_content
        self.model_card_status = model_card_status

    @cached_property
    def registry(self) -> SageMakerModelRegistryHook:
        return registry_hook(self)

    def _execute(self, context: Any) -> dict[str, Any]:
        ref = PackageRef(self.model_package_arn, self.model_package_group, self.model_package_version)
        arn, _, _ = ref.validate()
        changes: dict[str, Any] = {
            "approval_status": self.approval_status,
            "approval_description": self.approval_description,
            "customer_metadata": self.customer_metadata,
            "model_card_content": self.model_card_content,
            "model_card_status": self.model_card_status,
        }
        given = {k: v for k, v in changes.items() if v is not None}
        if not given and not self.remove_metadata_keys:
            raise MLSValidationError("approval_status", "nothing to update: give at least one change")
        # Every input is checked before any AWS call, also when the version is found by number.
        self.registry.validate_update(remove_metadata_keys=tuple(self.remove_metadata_keys or ()), **given)
        if arn is None:
            arn = str(ref.describe(self.registry)["ModelPackageArn"])
        self.persist_links(context, model_package_arn=arn)
        described = self.registry.update_version(
            arn, remove_metadata_keys=tuple(self.remove_metadata_keys or ()), **given
        )
        state = version_state(described)
        self.log.info(
            "Updated model package %s: %s; approval %s, card %s",
            arn,
            ", ".join(sorted(given) + (["remove_metadata_keys"] if self.remove_metadata_keys else [])),
            state["approval_status"],
            state["model_card_status"],
        )
        return state


class DeployModelPackageToMLSOperator(CreateManualModelOperator):
    """Deploy an approved SageMaker model package version to MLS as a manual model.

    The version by ``model_package_arn``, by ``model_package_group`` and
    ``model_package_version``, or the group's newest approved version (``model_package_group``
    alone). A version that is not ``Approved`` is refused (nothing is created). Its first
    container's ``ModelDataUrl`` becomes ``model_data``; ``model_meta`` is the given
    ``model_meta`` (if any) plus the customer metadata, ``model_card`` (the card's content) and
    ``model_package`` (ARN, group, version, approval description). ``name`` is the MLS model name;
    ``version`` defaults to ``v<version number>``. Every other field and ``if_exists`` as in
    ``CreateManualModelOperator``. Returns the MLS model's summary (see ``CreateManualModelOperator``).

    :param name: the MLS model's name.
    :param version: the MLS model's version (default ``v<version number>``).
    :param model_package_arn: the version's ARN.
    :param model_package_group: or the model package group (with ``model_package_version``, or
        alone for its newest approved version).
    :param model_package_version: the version number within the group.
    :param if_exists: ``fail``, ``skip`` or ``update`` when (name, version) exists in MLS.
    :param description: the MLS model's description.
    :param creator: who made it.
    :param model_lib: ``sklearn``, ``xgboost``, ``lightgbm``, ``catboost``, ``rule``, ``autogluon`` or ``etc``.
    :param model_data: overrides the version's ``ModelDataUrl``.
    :param model_meta: meta to add to the version's customer metadata, card and package keys.
    :param features: the features: a list, or a comma-separated string.
    :param table: its batch prediction table.
    :param components: its components, by name (or component dicts).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = (
        *CreateManualModelOperator.template_fields,
        *PACKAGE_REF_FIELDS,
        *AWS_FIELDS,
    )
    ui_color = "#ffe8cc"
    operator_extra_links = (MLSModelLink(), SageMakerModelPackageLink())

    def __init__(
        self,
        *,
        name: str,
        version: str | None = None,
        model_package_arn: str | None = None,
        model_package_group: str | None = None,
        model_package_version: int | str | None = None,
        if_exists: str = "fail",
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: dict[str, Any] | None = None,
        features: str | list[str] | None = None,
        table: str | None = None,
        components: list[str] | None = None,
        mls_conn_id: str = "mls_default",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            version=version or "",
            if_exists=if_exists,
            description=description,
            creator=creator,
            model_lib=model_lib,
            model_data=model_data,
            model_meta=model_meta,
            features=features,
            table=table,
            components=components,
            mls_conn_id=mls_conn_id,
            **kwargs,
        )
        self.model_package_arn = model_package_arn
        self.model_package_group = model_package_group
        self.model_package_version = model_package_version
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    @cached_property
    def registry(self) -> SageMakerModelRegistryHook:
        return registry_hook(self)

    def _resolve_version(self) -> dict[str, Any]:
        if (
            self.model_package_arn is None
            and self.model_package_version is None
            and isinstance(self.model_package_group, str)
        ):
            latest = self.registry.latest_approved_version(self.model_package_group)
            if latest is None:
                raise MLSValidationError(
                    "model_package_group", f"group {self.model_package_group!r} has no approved version"
                )
            return self.registry.describe_version(str(latest["ModelPackageArn"]))
        return PackageRef(
            self.model_package_arn, self.model_package_group, self.model_package_version
        ).describe(self.registry)

    def _execute(self, context: Any) -> dict[str, Any]:
        described = self._resolve_version()
        state = version_state(described)
        self.persist_links(context, model_package_arn=state["arn"])
        if state["approval_status"] != "Approved":
            raise MLSValidationError(
                "model_package_arn",
                f"model package {state['arn']} is {state['approval_status']}, not Approved: not deployed",
            )
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
        model_data = next((c.get("ModelDataUrl") for c in containers if c.get("ModelDataUrl")), None)
        if self.model_data is None:
            if model_data is None:
                raise MLSValidationError("model_data", f"model package {state['arn']} has no ModelDataUrl")
            self.model_data = model_data
        content, _ = _card(described)
        meta = dict(self.model_meta or {})
        meta.update(state["customer_metadata"])
        if content is not None:
            meta["model_card"] = content
        meta["model_package"] = {
            "arn": state["arn"],
            "group": state["group"],
            "version": state["version"],
            "approval_description": state["approval_description"],
        }
        self.model_meta = meta
        if not self.version:
            self.version = f"v{state['version']}"
        self.log.info(
            "Deploying approved model package %s (%s) to MLS as %s/%s with model_data %s",
            state["arn"],
            state["approval_description"] or "no approval description",
            self.name,
            self.version,
            self.model_data,
        )
        return super()._execute(context)
