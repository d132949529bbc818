"""Event-driven approval (Airflow 3): deploy each model package version the moment it is approved.

``mls_approval_gated_deploy`` holds a DAG run in ``ModelPackageApprovedSensor`` until a reviewer
decides, which can take days. Here nothing waits: the asset ``sagemaker_approvals_churn_model`` is
watched by ``ModelPackageApprovedEventTrigger`` in the triggerer, which lists the group's approved
versions every minute and fires once per newly approved version; the events start runs of this
DAG. One run may carry several events (two approvals seen in one listing, or events queued while a
run was going): the run deploys *every* approved version it carries, one mapped ``deploy_to_mls``
and ``online_ready`` per version (``expand_kwargs``), and waits until each serves online (its
artifact in the MLS registry, ``<MLS_NAME>/v<version number>/model.joblib``, as
``mls_approval_gated_deploy`` puts it there before it registers the version).

The event's extra is ``{"from_trigger": true, "payload": {"group", "arn", "version",
"approval_description", "model_data_url"}}``. A manual run (``airflow dags test``) deploys
``params.model_package_arn`` instead.

Airflow 2.11 has no event-driven scheduling: this file defines no DAG there; use the sensor path of
``mls_approval_gated_deploy``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mls.operators.sagemaker_registry import DeployModelPackageToMLSOperator
from airflow_provider_mls.sensors.mls import OnlinePredictionReadySensor
from airflow_provider_mls.triggers.model_package_events import ModelPackageApprovedEventTrigger

GROUP = "churn-model"  # the model package group of mls_approval_gated_deploy
MLS_NAME = "churn_model"

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import Asset, AssetWatcher

    approvals = Asset(
        "sagemaker_approvals_churn_model",
        watchers=[
            AssetWatcher(
                name="churn_model_approved",
                trigger=ModelPackageApprovedEventTrigger(model_package_group=GROUP, poke_interval=60),
            )
        ],
    )

    @dag(
        dag_id="mls_deploy_on_approval",
        schedule=[approvals],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["mls", "example", "sagemaker", "assets"],
        params={"model_package_arn": ""},
    )
    def mls_deploy_on_approval() -> None:
        @task
        def approved_versions(params: dict[str, Any] | None = None, **context: Any) -> list[dict[str, Any]]:
            """Every approved version the run's events carry (each once, in order), else
            ``params.model_package_arn``: one ``{"model_package_arn", "version"}`` per deploy."""
            from airflow_provider_mls._compat import AirflowFailException

            events = context.get("triggering_asset_events") or {}
            arns = [
                e.extra["payload"]["arn"]
                for batch in events.values()
                for e in batch
                if "payload" in (e.extra or {})
            ]
            given = (params or {}).get("model_package_arn")
            if not arns and given:
                arns = [given]
            if not arns:
                raise AirflowFailException("no approval event and no params.model_package_arn")
            unique = list(dict.fromkeys(str(arn) for arn in arns))
            return [{"model_package_arn": arn, "version": f"v{arn.rsplit('/', 1)[-1]}"} for arn in unique]

        # One deploy and one wait per approved version.
        deploy = DeployModelPackageToMLSOperator.partial(
            task_id="deploy_to_mls",
            name=MLS_NAME,
            model_lib="sklearn",
            if_exists="update",  # a re-run of the same approval updates the version in place
        ).expand_kwargs(approved_versions())
        OnlinePredictionReadySensor.partial(
            task_id="online_ready", deferrable=True, poke_interval=5, timeout=3600
        ).expand(model_id=deploy.output)

    mls_deploy_on_approval()
