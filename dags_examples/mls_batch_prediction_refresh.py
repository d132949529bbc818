"""A daily batch prediction refresh that never lets serving read a half-loaded table.

1. ``batch_model``: the batch model deployment (created on the first run, reused after).
2. ``create_table``: a new DynamoDB table for today, ``<table_prefix>_<ds_nodash>``.
3. ``load_predictions``: today's predictions, scored and written in the same task, streamed in
   batches (unprocessed items retried) by ``PredictionTableHook.load_rows``; the table carries the
   MLS loading marker until the last row is in. The rows never go through XCom (XCom lives in the
   metadata database and is meant for small values: ids, URIs, counts); a scoring job of yours that
   runs elsewhere would write its rows to object storage and this task would stream them from there.
4. ``batch_prediction_ready``: MLS says the table is active and not loading (deferrable).
5. ``point_model_at_new_table``: the deployment's ``table`` becomes today's table.
6. ``old_table`` and ``drop_old_table``: yesterday's table is dropped (skipped on the first run
   or when the model already pointed at today's table).

Re-running a day is safe: the table is reused (``if_exists="skip"``) and rows are overwritten by
key. Runs green with ``airflow dags test mls_batch_prediction_refresh`` against the local MLS
server and its AWS endpoint, and on a CeleryExecutor deployment with two workers
(``tests/e2e/test_celery_deployment.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import CreateManualModelOperator, UpdateManualModelOperator
from airflow_provider_mls.operators.prediction_table import (
    CreatePredictionTableOperator,
    DropPredictionTableOperator,
)
from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor

if TYPE_CHECKING:
    from collections.abc import Iterator

NEW_TABLE = "{{ params.table_prefix }}_{{ ds_nodash }}"
WAIT = {"deferrable": True, "poke_interval": 5, "timeout": 3600}


@dag(
    dag_id="mls_batch_prediction_refresh",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mls", "example", "pipeline"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "model_name": "churn_batch",
        "model_version": "v1",
        "table_prefix": "churn_batch_predictions",
        "users": 1000,
    },
)
def mls_batch_prediction_refresh() -> None:
    model = CreateManualModelOperator(
        task_id="batch_model",
        name="{{ params.model_name }}",
        version="{{ params.model_version }}",
        description="daily batch churn scores",
        creator="airflow",
        model_lib="etc",
        features=["age", "monthly_charge", "tenure_months", "support_calls"],
        if_exists="skip",
    )
    create_table = CreatePredictionTableOperator(
        task_id="create_table", table=NEW_TABLE, partition_key="user_id", if_exists="skip"
    )

    @task
    def load_predictions(
        table: str, ds_nodash: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Score today's users and stream the rows into the table; returns ``{"table", "rows"}``.

        ``scores()`` stands in for the batch job that scores your users (rows keyed by user_id).
        """
        import hashlib

        from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

        def scores() -> Iterator[dict[str, Any]]:
            for i in range(int((params or {}).get("users", 1000))):
                user = f"u{i:06d}"
                digest = hashlib.sha256(f"{user}:{ds_nodash}".encode()).digest()
                churn = round(int.from_bytes(digest[:4], "big") / 2**32, 6)
                yield {"user_id": user, "score": churn, "segment": "high" if churn > 0.8 else "normal"}

        rows = PredictionTableHook().load_rows(table, scores())
        print(f"loaded {rows} rows into {table}")
        return {"table": table, "rows": rows}

    load = load_predictions(NEW_TABLE)
    ready = BatchPredictionReadySensor(task_id="batch_prediction_ready", table=NEW_TABLE, **WAIT)
    switch = UpdateManualModelOperator(
        task_id="point_model_at_new_table",
        name="{{ params.model_name }}",
        version="{{ params.model_version }}",
        table=NEW_TABLE,
    )

    @task
    def old_table(
        model: dict[str, Any], ds_nodash: str | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The table the model served from before this run; skip when there is none to drop."""
        from airflow_provider_mls._compat import AirflowSkipException

        new = f"{(params or {})['table_prefix']}_{ds_nodash}"
        previous = model.get("table")
        if not previous or previous == new:
            raise AirflowSkipException(f"no previous table to drop (model table: {previous!r})")
        return str(previous)

    previous = old_table(model.output)
    drop = DropPredictionTableOperator(task_id="drop_old_table", table=previous, ignore_missing=True)
    model >> create_table >> load >> ready >> switch >> previous >> drop


mls_batch_prediction_refresh()
