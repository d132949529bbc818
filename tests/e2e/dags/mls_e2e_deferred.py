"""End-to-end DAG: MLS waits handed over by a real scheduler.

* ``wait_table``: a deferred ``BatchPredictionReadySensor`` waits in the triggerer for ``conf["table"]``;
* ``wait_artifact``: an ``OnlinePredictionReadySensor`` in reschedule mode waits for the registry
  artifact of ``conf["name"]``/``v1``, giving its worker slot back between checks;
* ``start_server``: a ``StartAutoMLServerOperator`` in reschedule mode starts the server of the
  AutoML model ``conf["automl_id"]`` and is rescheduled until it is RUNNING.

Run by ``tests/e2e/test_scheduler_triggerer.py`` against a real scheduler and triggerer, with
``mls_default`` pointing at the local MLS server.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import StartAutoMLServerOperator
from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor, OnlinePredictionReadySensor


@dag(
    dag_id="mls_e2e_deferred",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "e2e"],
)
def mls_e2e_deferred() -> None:
    wait_table = BatchPredictionReadySensor(
        task_id="wait_table",
        table="{{ dag_run.conf['table'] }}",
        deferrable=True,
        poke_interval=1,
        timeout=300,
        mls_conn_id="mls_default",
    )

    @task
    def check_result(result: Any, dag_run: Any = None) -> None:
        """The sensor's return value (its XCom) names the table this run waited for."""
        expected = dag_run.conf["table"]
        assert isinstance(result, dict), f"sensor returned {result!r}, expected a dict"
        assert result.get("table") == expected, f"sensor returned {result!r}, expected table {expected!r}"
        print(f"sensor result OK: {result!r}")

    check_result(wait_table.output)

    OnlinePredictionReadySensor(
        task_id="wait_artifact",
        name="{{ dag_run.conf['name'] }}",
        version="v1",
        mode="reschedule",
        # Not shorter: Airflow 3.3.2 may fail a task rescheduled before the scheduler has processed the
        # executor event of its previous run ("state changed externally", apache/airflow#71580).
        poke_interval=8,
        timeout=300,
    )
    StartAutoMLServerOperator(
        task_id="start_server",
        model_id="{{ dag_run.conf['automl_id'] }}",
        mode="reschedule",
        # Not shorter: Airflow 3.3.2 may fail a task rescheduled before the scheduler has processed the
        # executor event of its previous run ("state changed externally", apache/airflow#71580).
        poke_interval=8,
        timeout=300,
    )


mls_e2e_deferred()
