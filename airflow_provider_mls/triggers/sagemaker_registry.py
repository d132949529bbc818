"""The trigger of ``ModelPackageApprovedSensor``: a model package version's approval, polled off the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseTrigger
from airflow_provider_mls.bases import PollingTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.checks import Outcome


def approval_outcome(approval: dict[str, Any]) -> Outcome:
    """``Approved`` -> done, ``Rejected`` -> failed (with the approval description), else waiting."""
    from airflow_provider_mls.checks import Outcome

    arn, status = approval.get("arn"), approval.get("status")
    description = approval.get("description") or "no approval description"
    if status == "Approved":
        return Outcome("done", f"model package {arn} is Approved ({description})", approval)
    if status == "Rejected":
        return Outcome("failed", f"model package {arn} was Rejected: {description}")
    return Outcome("waiting", f"model package {arn} is {status}; waiting for Approved or Rejected")


class ModelPackageApprovalTrigger(PollingTrigger, BaseTrigger):
    """Wait until a SageMaker model package version is ``Approved`` (success) or ``Rejected`` (failed).

    boto3 is synchronous: the client is built and each ``describe_model_package`` runs in a worker
    thread (``asyncio.to_thread``), so the triggerer's event loop never blocks on AWS. The AWS
    connection (when the amazon provider is installed) is read in that thread too.

    :param model_package_arn: the version's ARN.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (moto, LocalStack).
    :param poke_interval: seconds between checks.
    :param deadline: Unix time after which the trigger reports ``timeout`` (None: no deadline).
    :param carry: JSON facts of the deferring task, returned in the event (see ``PollingTrigger``).
    """

    label = "SageMaker approval check"

    def __init__(
        self,
        model_package_arn: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        poke_interval: float = 60.0,
        deadline: float | None = None,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(poke_interval=poke_interval, deadline=deadline, carry=carry)
        self.model_package_arn = model_package_arn
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialized(
            {
                "model_package_arn": self.model_package_arn,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "endpoint_url": self.endpoint_url,
            }
        )

    def _event_extra(self) -> dict[str, Any]:
        return {"model_package_arn": self.model_package_arn}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

        hook = SageMakerModelRegistryHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, endpoint_url=self.endpoint_url
        )
        try:
            await asyncio.to_thread(hook.get_conn)
        except Exception as exc:
            yield self._setup_failed(exc)
            return

        async def check_once() -> Outcome:
            return approval_outcome(await asyncio.to_thread(hook.approval, self.model_package_arn))

        async for event in self._poll(f"approval of {self.model_package_arn}", check_once):
            yield event
