"""What the SageMaker Model Registry operators and sensor share: the AWS hook and the version reference."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._tasks import coerce_id
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

PACKAGE_REF_FIELDS = ("model_package_arn", "model_package_group", "model_package_version")
AWS_FIELDS = ("aws_conn_id", "region_name", "endpoint_url")


class AwsTaskMixin:
    """``aws_conn_id`` / ``region_name`` / ``endpoint_url`` of a task whose hooks are AWS hooks."""

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    def aws_hook_kwargs(self) -> dict[str, Any]:
        """The (rendered) AWS fields, as an ``AwsServiceHook`` takes them."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "endpoint_url": self.endpoint_url,
        }


class RegistryTaskMixin(AwsTaskMixin):
    """The AWS fields and a model package version given by ``model_package_arn``, or by
    ``model_package_group`` and ``model_package_version`` (its number).
    """

    def __init__(
        self,
        *,
        model_package_arn: str | None = None,
        model_package_group: str | None = None,
        model_package_version: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.model_package_group = model_package_group
        self.model_package_version = model_package_version

    @cached_property
    def registry(self) -> SageMakerModelRegistryHook:
        from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

        return SageMakerModelRegistryHook(**self.aws_hook_kwargs())

    def _package_ref(self) -> tuple[str | None, str | None, int | None]:
        """(arn, None, None) or (None, group, version number); bad or missing input names the field."""
        arn, group, version = self.model_package_arn, self.model_package_group, self.model_package_version
        if arn is not None:
            if group is not None or version is not None:
                raise MLSValidationError(
                    "model_package_arn",
                    "give model_package_arn, or model_package_group and model_package_version, not both",
                )
            if not isinstance(arn, str) or ":model-package/" not in arn:
                raise MLSValidationError("model_package_arn", f"expected a model package ARN, got {arn!r}")
            return arn, None, None
        if not isinstance(group, str) or not group.strip():
            raise MLSValidationError(
                "model_package_group",
                f"give model_package_arn, or model_package_group and model_package_version (got {group!r})",
            )
        if version is None:
            raise MLSValidationError("model_package_version", "give the version number within the group")
        try:
            number = coerce_id(version, "model_package_version")
        except MLSValidationError:
            number = 0
        if number < 1:
            raise MLSValidationError(
                "model_package_version", f"expected a version number >= 1, got {version!r}"
            )
        return None, group, number

    def _describe(self) -> dict[str, Any]:
        """The version, described (1 call by ARN; by group and number, the group's listing then 1 call)."""
        arn, group, version = self._package_ref()
        if arn is not None:
            return self.registry.describe_version(arn)
        return self.registry.describe_version(group=group, version=version)
