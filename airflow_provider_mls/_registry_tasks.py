"""The bases of the AWS tasks (registry upload, prediction tables, SageMaker Model Registry) and the
model package reference.

``MLSAwsBaseOperator`` and ``MLSAwsBaseSensor`` carry ``aws_conn_id`` / ``region_name`` /
``endpoint_url`` and the same fail-fast errors, soft-fail and deferral rules as the MLS bases
(``_tasks.py``). Cheap to import: boto3 is imported by the hooks, when a task runs.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseOperator
from airflow_provider_mls._integration import lineage_of, persist_aws_links
from airflow_provider_mls._tasks import WaitSensor, coerce_id, fail_fast
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

PACKAGE_REF_FIELDS = ("model_package_arn", "model_package_group", "model_package_version")
AWS_FIELDS = ("aws_conn_id", "region_name", "endpoint_url")


def aws_hook_kwargs(task: Any) -> dict[str, Any]:
    """The (rendered) AWS fields of a task, as an ``AwsServiceHook`` takes them."""
    return {
        "aws_conn_id": task.aws_conn_id,
        "region_name": task.region_name,
        "endpoint_url": task.endpoint_url,
    }


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

    def describe(self, registry: SageMakerModelRegistryHook) -> dict[str, Any]:
        """The version, described (1 call by ARN; by group and number, the group's listing then 1 call)."""
        arn, group, version = self.validate()
        if arn is not None:
            return registry.describe_version(arn)
        return registry.describe_version(group=group, version=version)


def registry_hook(task: Any) -> SageMakerModelRegistryHook:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    return SageMakerModelRegistryHook(**aws_hook_kwargs(task))


class MLSAwsBaseOperator(BaseOperator):
    """Base of the operators on AWS (the MLS model registry, prediction tables, SageMaker Model Registry).

    A subclass names every argument in its own ``__init__`` and implements ``_execute(context)``,
    which returns a small JSON value. Bad input (the error names the field), a missing resource and
    a conflict fail the task at once (``AirflowFailException``, no retries); transient AWS errors
    fail the try, so Airflow's ``retries`` apply. Credentials as Airflow users expect:
    ``aws_conn_id`` through the amazon provider when it is installed, boto3's default chain
    otherwise.

    Extension point: ``persist_links(context, **refs)`` is called with what the task acts on
    (``table=...``, ``model_package_arn=...``) as soon as it is known.

    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = AWS_FIELDS
    ui_color = "#fff3e0"

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

    def execute(self, context: Any) -> Any:
        with fail_fast(self):
            return self._execute(context)

    def _execute(self, context: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def persist_links(self, context: Any, **refs: Any) -> None:
        """Store what the task acts on for its extra links, before any wait (``_integration``)."""
        persist_aws_links(self, context, refs)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The OpenLineage datasets this run read and wrote (see ``airflow_provider_mls.lineage``)."""
        from airflow_provider_mls.lineage import operator_lineage

        return operator_lineage(lineage_of(self))


class MLSAwsBaseSensor(WaitSensor):
    """Base of the sensors on AWS: ``_outcome()`` is one check, ``_trigger(deadline, carry)`` repeats it deferred.

    The wait is ``WaitSensor``'s, as for the MLS sensors: ``poke`` runs the check; with
    ``deferrable=True`` ``execute`` checks once, then defers; ``execute_complete`` reads the
    trigger's one event and fails loudly on anything but success; ``soft_fail`` skips a terminal
    failure or a timeout, with the reason in the log.

    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = AWS_FIELDS
    ui_color = "#ffe8cc"

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    @cached_property
    def registry(self) -> SageMakerModelRegistryHook:
        return registry_hook(self)
