"""Gate a DAG on SageMaker Model Registry approval: ``ModelPackageApprovedSensor``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import AWS_FIELDS, MLSAwsBaseSensor, aws_hook_kwargs
from airflow_provider_mls.links import SageMakerModelPackageLink, model_package_url
from airflow_provider_mls.refs import PACKAGE_REF_FIELDS, PackageRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.checks import Outcome

__all__ = ["ModelPackageApprovedSensor"]


class ModelPackageApprovedSensor(MLSAwsBaseSensor):
    """Wait until a model package version is ``Approved``; ``Rejected`` fails at once with its description.

    The version by ``model_package_arn``, or by ``model_package_group`` and
    ``model_package_version``; resolved to its ARN once per execution, then each check is one
    ``describe_model_package``. ``poke``, ``reschedule`` and deferrable modes (see
    ``WaitSensor``); deferred, ``ModelPackageApprovalTrigger`` calls boto3 in worker threads
    so the triggerer's event loop never blocks. Returns ``{"arn", "status", "description"}``.

    :param model_package_arn: the version's ARN.
    :param model_package_group: or the model package group (with ``model_package_version``).
    :param model_package_version: the version number within the group.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = (*PACKAGE_REF_FIELDS, *AWS_FIELDS)
    operator_extra_links = (SageMakerModelPackageLink(),)

    def __init__(
        self,
        *,
        model_package_arn: str | None = None,
        model_package_group: str | None = None,
        model_package_version: int | str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            endpoint_url=endpoint_url,
            deferrable=deferrable,
            **kwargs,
        )
        self.model_package_arn = model_package_arn
        self.model_package_group = model_package_group
        self.model_package_version = model_package_version
        self._arn: str | None = None

    def _resolved_arn(self) -> str:
        if self._arn is None:
            ref = PackageRef(self.model_package_arn, self.model_package_group, self.model_package_version)
            arn, _, _ = ref.validate()
            self._arn = arn if arn is not None else str(ref.describe(self.registry)["ModelPackageArn"])
        return self._arn

    def _outcome(self, context: Any) -> Outcome:
        from airflow_provider_mls.triggers.sagemaker_registry import approval_outcome

        arn = self._resolved_arn()
        if not getattr(self, "_link_persisted", False):  # once, before the wait
            SageMakerModelPackageLink.persist(context, model_package_url(arn))
            self._link_persisted = True
        return approval_outcome(self.registry.approval(arn))

    def _describe_wait(self) -> str:
        return f"approval of {self._resolved_arn()}"

    def _trigger(self, deadline: float, carry: dict[str, Any] | None) -> Any:
        from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

        return ModelPackageApprovalTrigger(
            model_package_arn=self._resolved_arn(),
            **aws_hook_kwargs(self),
            poke_interval=float(self.poke_interval),
            deadline=deadline,
            carry=carry,
        )
