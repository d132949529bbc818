"""Upgrade an AutoML deployment: the SDK's upgrade routine as Airflow tasks, every wait deferred.

The reference SDK upgrades in one process with ``time.sleep``: make sure the new model has a
handler (the old one's if it has none), start its server, wait while it is STARTING, fail on
FAILED/UNKNOWN, move the old model's buckets to it and stop the old model's server. Here:

0. ``previous_model``: the version being replaced (it must exist).
1. ``create_model`` and ``training_done``: a new AutoML model version trained on the dataset
   (``AutoMLTrainingDoneSensor``, deferrable; a failed training fails the run).
2. ``copy_handler``: the previous version's handler, only if the new model has none.
3. ``start_server``: ``StartAutoMLServerOperator`` waits for RUNNING in the triggerer and fails
   on FAILED or UNKNOWN.
4. ``move_buckets``: every bucket that served the previous version now serves the new one.
5. ``stop_previous_server``: the previous version's server is stopped (waiting for STOPPED).

``params``: ``model_name``, ``previous_version`` (must exist and have a handler), ``version``
(default ``v<ds_nodash>``) and ``dataset_name``. Runs green with
``airflow dags test mls_automl_upgrade`` against the local MLS server once a previous version
is deployed (``make demo`` deploys one first).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    MigrateBucketsOperator,
    StartAutoMLServerOperator,
    StopAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
)
from airflow_provider_mls.sensors.mls import AutoMLTrainingDoneSensor

NEW_VERSION = "{{ params.version or 'v' ~ ds_nodash }}"
WAIT = {"deferrable": True, "poke_interval": 5}


@dag(
    dag_id="mls_automl_upgrade",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example", "pipeline"],
    default_args={"retries": 0},
    params={
        "model_name": "churn_automl",
        "previous_version": "v1",
        "version": "",
        "dataset_name": "churn_automl_dataset",
    },
)
def mls_automl_upgrade() -> None:
    @task
    def previous_model(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The AutoML model version being replaced (an MLSNotFoundError fails the run if it is not there)."""
        from airflow_provider_mls.hooks.mls import MLSHook

        p = params or {}
        return MLSHook().get_automl_model(name=p["model_name"], version=p["previous_version"])

    previous = previous_model()
    create = CreateAutoMLModelOperator(
        task_id="create_model",
        name="{{ params.model_name }}",
        version=NEW_VERSION,
        description="AutoML upgrade trained by Airflow on {{ ds }}",
        dataset_name="{{ params.dataset_name }}",
        if_exists="skip",
    )
    trained = AutoMLTrainingDoneSensor(
        task_id="training_done", model_id=create.output, timeout=6 * 3600, **WAIT
    )
    copy_handler = UpdateAutoMLServerHandlerOperator(
        task_id="copy_handler",
        model_id=create.output,
        handler_from_model_id=previous,
        only_if_missing=True,
    )
    start = StartAutoMLServerOperator(task_id="start_server", model_id=create.output, timeout=20 * 60, **WAIT)
    move = MigrateBucketsOperator(
        task_id="move_buckets",
        from_model_id=previous,
        to_model_id=create.output,
        prediction_type="automl",
    )
    stop_previous = StopAutoMLServerOperator(
        task_id="stop_previous_server",
        model_id=previous,
        wait_for_completion=True,
        timeout=20 * 60,
        **WAIT,
    )
    previous >> create >> trained >> copy_handler >> start >> move >> stop_previous


mls_automl_upgrade()
