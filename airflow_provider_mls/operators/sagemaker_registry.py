"""Operators on the SageMaker Model Registry, and the deploy of an approved version to MLS.

``UpdateModelPackageOperator`` updates a model package version's approval, customer metadata and
model card in one task (the amazon provider registers versions but cannot update them).
``DeployModelPackageToMLSOperator`` deploys only what was approved there: the version's model data
URL, card and customer metadata become an MLS manual model's ``model_data`` and ``model_meta``.
Cheap to import: boto3 and requests are imported when a task runs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._registry_tasks import AWS_FIELDS, PACKAGE_REF_FIELDS, RegistryTaskMixin
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.operators.mls import CreateManualModelOperator, MLSBaseOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

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


class UpdateModelPackageOperator(RegistryTaskMixin, MLSBaseOperator):
    """Update a SageMaker model package version: approval, description, metadata and card in one task.

    The version by ``model_package_arn``, or ``model_package_group`` and ``model_package_version``.
    Everything is validated before any call: ``approval_status`` (``Approved``, ``Rejected``,
    ``PendingManualApproval``) with ``approval_description``; ``customer_metadata`` merged in and
    ``remove_metadata_keys`` removed; ``model_card_content`` (the whole content, replaced; checked
    against the model package model card schema and its 100,000-character limit, errors name the
    path in the card) and ``model_card_status`` (``Draft``, ``PendingReview``, ``Approved``,
    ``Archived``; an archived card refuses changes). Returns the version's ARN and new state.
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

    def __init__(
        self,
        *,
        approval_status: str | None = None,
        approval_description: str | None = None,
        customer_metadata: dict[str, str] | None = None,
        remove_metadata_keys: list[str] | None = None,
        model_card_content: dict[str, Any] | str | None = None,
        model_card_status: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.approval_status = approval_status
        self.approval_description = approval_description
        self.customer_metadata = customer_metadata
        self.remove_metadata_keys = remove_metadata_keys
        self.model_card_content = model_card_content
        self.model_card_status = model_card_status

    def _execute(self, context: Any) -> dict[str, Any]:
        arn, _, _ = self._package_ref()
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
            arn = str(self._describe()["ModelPackageArn"])
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


class DeployModelPackageToMLSOperator(RegistryTaskMixin, CreateManualModelOperator):
    """Deploy an approved SageMaker model package version to MLS as a manual model.

    The version by ``model_package_arn``, by ``model_package_group`` and
    ``model_package_version``, or the group's newest approved version (``model_package_group``
    alone). A version that is not ``Approved`` is refused (nothing is created). Its first
    container's ``ModelDataUrl`` becomes ``model_data``; ``model_meta`` is the given
    ``model_meta`` (if any) plus the customer metadata, ``model_card`` (the card's content) and
    ``model_package`` (ARN, group, version, approval description). ``name`` is the MLS model name;
    ``version`` defaults to ``v<version number>``. Every other field and ``if_exists`` as in
    ``CreateManualModelOperator``. Returns the MLS model.
    """

    template_fields: Sequence[str] = (
        *CreateManualModelOperator.template_fields,
        *PACKAGE_REF_FIELDS,
        *AWS_FIELDS,
    )
    ui_color = "#ffe8cc"

    def __init__(self, *, name: str, version: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, version=version or "", **kwargs)

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
        return self._describe()

    def _execute(self, context: Any) -> dict[str, Any]:
        described = self._resolve_version()
        state = version_state(described)
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
