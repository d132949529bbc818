"""The batch prediction refresh, run when a new version of a model is deployed instead of ``@daily``.

A second variant of ``mls_batch_prediction_refresh``: scheduled on the asset of the MLS model
``churn_lr`` (``mls://<env>/churn_lr``), which ``CreateManualModelOperator`` and
``UpdateManualModelOperator`` announce whenever they write a new version (for example
``mls_train_to_deploy``). Each run scores with the version the event names:

1. ``new_version``: the version from the triggering event's extra (``{"name", "version",
   "model_id", "env"}``); on a manual run, ``params.model_version``.
2. ``create_table``: a table for that version, ``<table_prefix>_<version>_<ds_nodash>``.
3. ``load_predictions``: the scores, streamed into the table (marked loading until the last row).
4. ``batch_prediction_ready``: MLS says the table is active and not loading (deferrable).
5. ``point_version_at_table``: the new version's ``table`` becomes this table. (A new table is not
   a new version: this update sends no asset event, so the DAG does not trigger itself.)

Airflow 3 (assets). On Airflow 2.11 the file parses (a dataset schedule), but the provider's tasks
send no dataset events there, so it runs only when triggered by hand. ``ENV`` is the ``env`` of
your ``mls_default`` connection.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.assets import model_asset
from airflow_provider_mls.operators.mls import UpdateManualModelOperator
from airflow_provider_mls.operators.prediction_table import CreatePredictionTableOperator
from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor

if TYPE_CHECKING:
    from collections.abc import Iterator

ENV = "local"  # the env of the mls_default connection (the local server's here)
MODEL = "churn_lr"  # the model mls_train_to_deploy deploys
WAIT = {"deferrable": True, "poke_interval": 5, "timeout": 3600}


@dag(
    dag_id="mls_batch_prediction_on_new_version",
    schedule=[model_asset(MODEL, env=ENV)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mls", "example", "pipeline", "assets"],
    params={"model_version": "", "table_prefix": "churn_lr_predictions", "users": 200},
)
def mls_batch_prediction_on_new_version() -> None:
    @task(multiple_outputs=True)
    def new_version(
        ds_nodash: str | None = None, params: dict[str, Any] | None = None, **context: Any
    ) -> dict[str, Any]:
        """The version to score with: the newest triggering event's, else ``params.model_version``."""
        from airflow_provider_mls._compat import AirflowFailException

        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        extras = [e.extra for batch in events.values() for e in batch if (e.extra or {}).get("version")]
        if extras:
            name, version = str(extras[-1]["name"]), str(extras[-1]["version"])
        elif (params or {}).get("model_version"):
            name, version = MODEL, str((params or {})["model_version"])
        else:
            raise AirflowFailException("no triggering model version event and no params.model_version")
        safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", version)
        # An asset-triggered run on Airflow 3 has no logical date (so no ds_nodash): date it by run_after.
        dag_run = context.get("dag_run")
        when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
        day = ds_nodash or (when.strftime("%Y%m%d") if when else "manual")
        table = f"{(params or {})['table_prefix']}_{safe}_{day}"
        return {"name": name, "version": version, "table": table}

    @task
    def load_predictions(table: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Score the users and stream the rows into the table (``scores()`` stands in for your job)."""
        import hashlib

        from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

        def scores() -> Iterator[dict[str, Any]]:
            for i in range(int((params or {}).get("users", 200))):
                user = f"u{i:06d}"
                churn = round(
                    int.from_bytes(hashlib.sha256(f"{user}:{table}".encode()).digest()[:4]) / 2**32, 6
                )
                yield {"user_id": user, "score": churn}

        rows = PredictionTableHook().load_rows(table, scores())
        return {"table": table, "rows": rows}

    version = new_version()
    create_table = CreatePredictionTableOperator(
        task_id="create_table", table=version["table"], partition_key="user_id", if_exists="skip"
    )
    load = load_predictions(version["table"])
    ready = BatchPredictionReadySensor(task_id="batch_prediction_ready", table=version["table"], **WAIT)
    point = UpdateManualModelOperator(
        task_id="point_version_at_table",
        name=version["name"],
        version=version["version"],
        table=version["table"],
    )
    create_table >> load >> ready >> point


mls_batch_prediction_on_new_version()
