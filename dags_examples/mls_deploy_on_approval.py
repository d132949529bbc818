"""Event-driven approval (Airflow 3): deploy each model package version the moment it is approved.

``mls_approval_gated_deploy`` holds a DAG run in ``ModelPackageApprovedSensor`` until a reviewer
decides, which can take days. Here nothing waits: the asset ``sagemaker_approvals_churn_model`` is
watched by ``ModelPackageApprovedEventTrigger`` in the triggerer, which lists the group's approved
versions every minute and fires once per newly approved version; each event starts a run of this
DAG, which deploys that version to MLS and waits until it serves online (its artifact in the MLS
registry, ``<MLS_NAME>/v<version number>/model.joblib``, as ``mls_approval_gated_deploy`` puts it
there before it registers the version).

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
        @task(multiple_outputs=True)
        def approved_version(params: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
            """The approved version of the triggering event (the newest), else ``params.model_package_arn``."""
            from airflow_provider_mls._compat import AirflowFailException

            events = context.get("triggering_asset_events") or {}
            payloads = [
                e.extra["payload"] for batch in events.values() for e in batch if "payload" in (e.extra or {})
            ]
            arn = payloads[-1]["arn"] if payloads else (params or {}).get("model_package_arn")
            if not arn:
                raise AirflowFailException("no approval event and no params.model_package_arn")
            number = str(arn).rsplit("/", 1)[-1]
            return {"arn": arn, "version": f"v{number}"}

        approved = approved_version()
        deploy = DeployModelPackageToMLSOperator(
            task_id="deploy_to_mls",
            model_package_arn=approved["arn"],
            name=MLS_NAME,
            version=approved["version"],
            model_lib="sklearn",
            if_exists="update",  # a re-run of the same approval updates the version in place
        )
        ready = OnlinePredictionReadySensor(
            task_id="online_ready",
            name=MLS_NAME,
            version=approved["version"],
            deferrable=True,
            poke_interval=5,
            timeout=3600,
        )
        deploy >> ready

    mls_deploy_on_approval()
