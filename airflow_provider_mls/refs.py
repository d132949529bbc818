"""What a task acts on: an MLS model (``ModelSelector``), a SageMaker model package version (``PackageRef``).

Each validates its arguments first (errors name the field) and is then resolved by its hook:
by id or ARN without a request where it can be. Cheap to import: the hooks are passed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSValidationError
from airflow_provider_mls.rules import check_arn, check_group, check_version_number, coerce_id

if TYPE_CHECKING:
    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

MODEL_REF_FIELDS = ("model_id", "name", "version")
PACKAGE_REF_FIELDS = ("model_package_arn", "model_package_group", "model_package_version")


class ModelSelector:
    """A model given by ``id`` (an int, ``"12"``, or a model dict) or by ``name`` and ``version``."""

    def __init__(self, id: object, name: object, version: object, *, prefix: str = "") -> None:
        self.id, self.name, self.version, self.prefix = id, name, version, prefix

    def field(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def given(self) -> bool:
        return self.id is not None or self.name is not None or self.version is not None

    def validate(self) -> tuple[int | None, str | None, str | None]:
        """(id, None, None) or (None, name, version); bad or missing input names the field."""
        if self.id is not None:
            if self.name is not None or self.version is not None:
                raise MLSValidationError(
                    self.field("model_id"),
                    f"give either {self.field('model_id')} or {self.field('name')} and "
                    f"{self.field('version')}, not both",
                )
            return coerce_id(self.id, self.field("model_id")), None, None
        for key, value in (("name", self.name), ("version", self.version)):
            if not isinstance(value, str) or not value.strip():
                raise MLSValidationError(
                    self.field(key if self.name is not None or self.version is not None else "model_id"),
                    f"give {self.field('model_id')}, or {self.field('name')} and {self.field('version')} "
                    f"(got {key}={value!r})",
                )
        return None, str(self.name), str(self.version)

    def resolve(self, hook: MLSHook, model_type: ModelType | None = None) -> dict[str, Any]:
        """The model (1 request; 2 for a (name, version) of unknown type). Missing: ``MLSNotFoundError``."""
        id, name, version = self.validate()
        if id is not None:
            if model_type is ModelType.MANUAL:
                return hook.get_manual_model(id=id)
            if model_type is ModelType.AUTOML:
                return hook.get_automl_model(id=id)
            return hook.get_model(id)
        assert name is not None and version is not None
        if model_type is ModelType.AUTOML:
            return hook.get_automl_model(name=name, version=version)
        if model_type is ModelType.MANUAL:
            return hook.get_manual_model(name=name, version=version)
        try:
            return hook.get_manual_model(name=name, version=version)
        except MLSNotFoundError:
            try:
                return hook.get_automl_model(name=name, version=version)
            except MLSNotFoundError:
                raise MLSNotFoundError(
                    f"no model named {name!r} with version {version!r}", code=404
                ) from None

    def target(self, hook: MLSHook, model_type: ModelType | None = None) -> int | dict[str, Any]:
        """The model's id when given (no request), else the model looked up by (name, version)."""
        id, _, _ = self.validate()
        return id if id is not None else self.resolve(hook, model_type)

    def target_id(self, hook: MLSHook, model_type: ModelType | None = None) -> int:
        target = self.target(hook, model_type)
        return target if isinstance(target, int) else int(target["id"])


class PackageRef:
    """A SageMaker model package version: by ``arn``, or by ``group`` and ``version`` (its number)."""

    def __init__(self, arn: object, group: object, version: object) -> None:
        self.arn, self.group, self.version = arn, group, version

    def validate(self) -> tuple[str | None, str | None, int | None]:
        """(arn, None, None) or (None, group, version number); bad or missing input names the field."""
        arn, group, version = self.arn, self.group, self.version
        if arn is not None:
            if group is not None or version is not None:
                raise MLSValidationError(
                    "model_package_arn",
                    "give model_package_arn, or model_package_group and model_package_version, not both",
                )
            return check_arn(arn, "model_package_arn"), None, None
        if not isinstance(group, str) or not group.strip():
            raise MLSValidationError(
                "model_package_group",
                f"give model_package_arn, or model_package_group and model_package_version (got {group!r})",
            )
        if version is None:
            raise MLSValidationError("model_package_version", "give the version number within the group")
        try:  # a rendered "3" too; the error names the value as given
            number = check_version_number(
                coerce_id(version, "model_package_version"), "model_package_version"
            )
        except MLSValidationError:
            raise MLSValidationError(
                "model_package_version", f"expected a version number >= 1, got {version!r}"
            ) from None
        return None, check_group(group, "model_package_group"), number

    def describe(self, registry: SageMakerModelRegistryHook) -> dict[str, Any]:
        """The version, described (1 call by ARN; by group and number, the group's listing then 1 call)."""
        arn, group, version = self.validate()
        if arn is not None:
            return registry.describe_version(arn)
        return registry.describe_version(group=group, version=version)
