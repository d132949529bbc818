"""Dynamic task mapping: one model per customer segment, deployed and awaited in one mapped group.

1. ``register`` (a mapped ``@task``, one per segment): a rule model for the segment, serialized with
   joblib in memory and put in the MLS model registry; returns the ``CreateManualModelOperator``
   arguments of that model (``name``, ``version``, ``model_data``, ``model_meta``).
2. ``deploy``: ``CreateManualModelOperator.partial(...).expand_kwargs(...)``, one deploy per segment;
   each returns the model's summary.
3. ``online_ready``: ``OnlinePredictionReadySensor.partial(deferrable=True).expand(model_id=...)``,
   one deferred wait per deployed model, all in the triggerer at once.
4. ``report``: every summary, collected.

``params.segments`` lists the segments (the number of mapped tasks follows it at run time);
``params.version`` the version. Re-running is safe (``overwrite`` in the registry,
``if_exists="update"`` in MLS). Runs green with ``airflow dags test mls_mapped_deploy`` against the
local MLS server and its AWS endpoint.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import CreateManualModelOperator
from airflow_provider_mls.sensors.mls import OnlinePredictionReadySensor

FEATURES = ["age", "monthly_charge", "tenure_months"]


@dag(
    dag_id="mls_mapped_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example", "mapping"],
    params={"segments": ["north", "south", "east"], "version": "v1", "prefix": "segment_churn"},
)
def mls_mapped_deploy() -> None:
    @task
    def segments(params: dict[str, Any] | None = None) -> list[str]:
        return [str(s) for s in (params or {})["segments"]]

    @task
    def register(segment: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Put this segment's model in the registry; return the arguments of its deploy."""
        import io

        import joblib

        from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

        name, version = f"{(params or {})['prefix']}_{segment}", str((params or {})["version"])
        buffer = io.BytesIO()
        joblib.dump({"kind": "rule", "segment": segment, "threshold": {"tenure_months": 12}}, buffer)
        put = MLSModelRegistryHook().put_version(
            name,
            version,
            buffer.getvalue(),
            model_lib="rule",
            model_lib_version="1",
            features=FEATURES,
            extra={"class": "churn", "model_info": {"segment": segment}},
            overwrite=True,
        )
        return {
            "name": name,
            "version": version,
            "model_data": put["model_data"],
            "model_meta": put["model_meta"],
        }

    registered = register.expand(segment=segments())

    deploy = CreateManualModelOperator.partial(
        task_id="deploy",
        model_lib="rule",
        features=FEATURES,
        description="one model per segment (mls_mapped_deploy)",
        if_exists="update",
    ).expand_kwargs(registered)

    ready = OnlinePredictionReadySensor.partial(
        task_id="online_ready", deferrable=True, poke_interval=5, timeout=600
    ).expand(model_id=deploy.output)

    @task
    def report(models: list[dict[str, Any]]) -> list[str]:
        deployed = sorted(f"{m['name']}/{m['version']} (id {m['model_id']})" for m in models)
        print(f"{len(deployed)} models deployed and serving: {', '.join(deployed)}")
        return deployed

    report(ready.output)


mls_mapped_deploy()
