"""An event trigger for ``AssetWatcher``: a SageMaker model package version of a group became Approved.

Airflow 3 only (event-driven scheduling). A DAG scheduled on an asset watched by this trigger runs
once per newly approved version, instead of holding a DAG run in ``ModelPackageApprovedSensor`` for
days; the sensor remains the way on Airflow 2.11::

    from airflow.sdk import Asset, AssetWatcher, DAG

    approvals = Asset(
        "sagemaker-approvals-churn",
        watchers=[AssetWatcher("churn_approved", ModelPackageApprovedEventTrigger("churn-models"))],
    )
    with DAG("deploy_on_approval", schedule=[approvals]): ...

The asset event's extra carries the payload ``{"group", "arn", "version", "approval_description",
"model_data_url"}`` (``triggering_asset_events`` in the DAG run, under ``extra["payload"]``).

What "newly" means: the versions approved when the watch first started are the baseline and never
fire; each version approved after that fires once. The versions already reported are kept in the
watched asset's state store (Airflow 3.3+), so a triggerer restart neither repeats an event nor
loses an approval that happened while it was down; where there is no state store, the baseline is
taken again at each start.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseEventTrigger, TriggerEvent
from airflow_provider_mls.exceptions import describe_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ModelPackageApprovedEventTrigger"]

STATE_KEY = "mls_approved_versions"


class ModelPackageApprovedEventTrigger(BaseEventTrigger):  # type: ignore[misc]
    """Fire an event each time a version of ``model_package_group`` becomes ``Approved``.

    Every ``poke_interval`` seconds one ``ListModelPackages`` of the group's approved versions (in a
    worker thread: boto3 is synchronous, the triggerer's loop never blocks). Versions are reported
    oldest first, one event each. A failed listing (throttling, an unreachable endpoint) is logged
    and retried at the next interval: a watcher runs for as long as its DAG is active.

    :param model_package_group: the model package group's name (or ARN).
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (moto, LocalStack).
    :param poke_interval: seconds between listings.
    """

    def __init__(
        self,
        model_package_group: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not isinstance(model_package_group, str) or not model_package_group.strip():
            raise ValueError(f"model_package_group: expected a group name, got {model_package_group!r}")
        if float(poke_interval) <= 0:
            raise ValueError(f"poke_interval: expected seconds > 0, got {poke_interval!r}")
        self.model_package_group = model_package_group
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_package_group": self.model_package_group,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "endpoint_url": self.endpoint_url,
                "poke_interval": self.poke_interval,
            },
        )

    def _store(self) -> Any:
        """The watched asset's state store (Airflow 3.3+, one asset), else None."""
        store = getattr(self, "asset_state_store", None)
        return store if store is not None and hasattr(store, "aget") else None

    async def _load_seen(self) -> set[str] | None:
        store = self._store()
        if store is None:
            return None
        try:
            value = await store.aget(STATE_KEY)
        except Exception as exc:  # e.g. several watched assets: no single store to use
            self.log.warning("No state store for %s: %s", self.model_package_group, describe_error(exc))
            return None
        return {str(arn) for arn in value} if isinstance(value, list) else None

    async def _save_seen(self, seen: set[str]) -> None:
        store = self._store()
        if store is not None:
            try:
                await store.aset(STATE_KEY, sorted(seen))
            except Exception as exc:
                self.log.warning(
                    "Could not keep the reported versions of %s: %s",
                    self.model_package_group,
                    describe_error(exc),
                )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

        hook = SageMakerModelRegistryHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, endpoint_url=self.endpoint_url
        )
        group = self.model_package_group
        seen = await self._load_seen()
        while True:
            try:
                approved = await asyncio.to_thread(hook.list_versions, group, approval_status="Approved")
            except Exception as exc:
                self.log.warning(
                    "Listing the approved versions of %s failed: %s; next try in %.1fs",
                    group,
                    describe_error(exc),
                    self.poke_interval,
                )
                await asyncio.sleep(self.poke_interval)
                continue
            arns = {str(v["ModelPackageArn"]) for v in approved}
            if seen is None:  # the first listing ever: the baseline
                seen = arns
                await self._save_seen(seen)
                self.log.info("Watching %s for approvals; %d version(s) approved already", group, len(arns))
            new = sorted(
                (v for v in approved if str(v["ModelPackageArn"]) not in seen),
                key=lambda v: int(v.get("ModelPackageVersion") or 0),
            )
            for summary in new:
                arn = str(summary["ModelPackageArn"])
                try:
                    described = await asyncio.to_thread(hook.describe_version, arn)
                except Exception as exc:
                    self.log.warning("Describing %s failed: %s; retried", arn, describe_error(exc))
                    break
                if described.get("ModelApprovalStatus") != "Approved":  # changed since the listing
                    continue
                seen.add(arn)
                await self._save_seen(seen)
                self.log.info("Model package %s is Approved", arn)
                yield TriggerEvent(self._payload(described))  # type: ignore[no-untyped-call]
            await asyncio.sleep(self.poke_interval)

    @staticmethod
    def _payload(described: dict[str, Any]) -> dict[str, Any]:
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
        return {
            "group": described.get("ModelPackageGroupName"),
            "arn": described.get("ModelPackageArn"),
            "version": described.get("ModelPackageVersion"),
            "approval_description": described.get("ApprovalDescription"),
            "model_data_url": next(
                (c.get("ModelDataUrl") for c in containers if c.get("ModelDataUrl")), None
            ),
        }
