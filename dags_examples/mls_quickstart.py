"""Quickstart: deploy a model to MLS, record its evaluation metrics, and check its readiness.

Runs unchanged against the local MLS server (``make demo``) and a real MLS: point the
``mls_default`` connection at either. Re-running it is safe: an existing (name, version) is reused.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

MODEL_NAME = "quickstart_model"
MODEL_VERSION = "v1"


@dag(
    dag_id="mls_quickstart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example"],
    params={"model_name": MODEL_NAME, "model_version": MODEL_VERSION},
)
def mls_quickstart() -> None:
    @task
    def deploy_model(name: str, version: str) -> dict[str, Any]:
        """Create the model deployment, or reuse it when this (name, version) exists already."""
        from airflow_provider_mls.exceptions import MLSNotFoundError
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        try:
            model = hook.get_manual_model(name=name, version=version)
        except MLSNotFoundError:
            features = ["age", "app_use_traffic_youtube", "svc_scrb_period"]
            model = hook.create_manual_model(
                name=name,
                version=version,
                description="quickstart model deployed by Airflow",
                creator="airflow",
                model_lib="sklearn",
                model_data=f"/models/{name}/{version}/model.joblib",
                model_meta={
                    "name": name,
                    "version": version,
                    "model_lib": "sklearn",
                    "model_lib_version": "1.5.2",
                    "model_data": f"/models/{name}/{version}/model.joblib",
                    "features": features,
                },
                features=",".join(features),
            )
        return {"id": model["id"], "name": model["name"], "version": model["version"]}

    @task
    def record_metrics(model: dict[str, Any]) -> dict[str, Any]:
        """Merge evaluation metrics into the stored model.json meta (other keys are kept)."""
        from airflow_provider_mls.hooks.mls import MLSHook

        updated = MLSHook().update_manual_model_meta(
            model["id"], {"performance": {"auc": 0.91, "logloss": 0.32}}, partial_update=True
        )
        return dict(updated["model_meta"])

    @task
    def check_readiness(model: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        """Report online readiness (the artifact is in the registry) and confirm the meta landed."""
        from airflow_provider_mls.hooks.mls import MLSHook

        if "performance" not in meta:
            raise ValueError("model_meta: the metrics were not stored")
        hook = MLSHook()
        current = hook.get_manual_model(id=model["id"])
        return {
            "id": current["id"],
            "status": current["status"],
            "online_prediction_ready": hook.is_online_prediction_ready(current),
            "meta_keys": sorted(current["model_meta"]),
        }

    model = deploy_model("{{ params.model_name }}", "{{ params.model_version }}")
    check_readiness(model, record_metrics(model))


mls_quickstart()
