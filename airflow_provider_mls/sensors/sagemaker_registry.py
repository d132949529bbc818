"""Gate a DAG on SageMaker Model Registry approval: ``ModelPackageApprovedSensor``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls._registry_tasks import AWS_FIELDS, PACKAGE_REF_FIELDS, RegistryTaskMixin
from airflow_provider_mls._tasks import WaitingTask

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_mls.checks import Outcome

__all__ = ["ModelPackageApprovedSensor"]


class ModelPackageApprovedSensor(RegistryTaskMixin, WaitingTask):
    """Wait until a model package version is ``Approved``; ``Rejected`` fails at once with its description.

    The version by ``model_package_arn``, or by ``model_package_group`` and
    ``model_package_version``; resolved to its ARN once per execution, then each check is one
    ``describe_model_package``. ``poke``, ``reschedule`` and deferrable modes (see
    ``WaitingTask``); deferred, ``ModelPackageApprovalTrigger`` calls boto3 in worker threads so
    the triggerer's event loop never blocks. Returns ``{"arn", "status", "description"}``.
    """

    template_fields: tuple[str, ...] = (*PACKAGE_REF_FIELDS, *AWS_FIELDS)
    ui_color = "#ffe8cc"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._arn: str | None = None

    def _resolved_arn(self) -> str:
        if self._arn is None:
            arn, _, _ = self._package_ref()
            self._arn = arn if arn is not None else str(self._describe()["ModelPackageArn"])
        return self._arn

    def _step(self, context: Mapping[str, Any]) -> Outcome:
        from airflow_provider_mls.triggers.sagemaker_registry import approval_outcome

        return approval_outcome(self.registry.approval(self._resolved_arn()))

    def _describe_wait(self) -> str:
        return f"approval of {self._resolved_arn()}"

    def _trigger(self, deadline: float) -> Any:
        from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

        return ModelPackageApprovalTrigger(
            model_package_arn=self._resolved_arn(),
            **self.aws_hook_kwargs(),
            poke_interval=float(self.poke_interval),
            deadline=deadline,
        )
