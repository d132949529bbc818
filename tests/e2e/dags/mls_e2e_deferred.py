"""End-to-end DAG: MLS waits handed over by a real scheduler.

* ``wait_table``: a deferred ``BatchPredictionReadySensor`` waits in the triggerer for ``conf["table"]``;
* ``wait_artifact``: an ``OnlinePredictionReadySensor`` in reschedule mode waits for the registry
  artifact of the manual model ``conf["model_id"]``, giving its worker slot back between checks; the
  model is read by the first check only (later reschedules recall it from the task state store on Airflow 3.3,
  from an Airflow Variable before);
* ``start_server``: a deferrable ``StartAutoMLServerOperator`` starts the server of the AutoML model
  ``conf["automl_id"]`` and waits in the triggerer until it is RUNNING; ``check_started`` checks that
  it says it acted (``acted`` travels through the deferral).

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
        model_id="{{ dag_run.conf['model_id'] }}",
        mode="reschedule",
        # Not shorter: Airflow 3.3.2 may fail a task rescheduled before the scheduler has processed the
        # executor event of its previous run ("state changed externally", apache/airflow#71580).
        poke_interval=8,
        timeout=300,
    )
    start_server = StartAutoMLServerOperator(
        task_id="start_server",
        model_id="{{ dag_run.conf['automl_id'] }}",
        deferrable=True,
        # Not shorter: Airflow 3.3.2 may fail a task resumed before the scheduler has processed the
        # executor event of its previous run ("state changed externally", apache/airflow#71580).
        poke_interval=8,
        timeout=300,
    )

    @task
    def check_started(result: Any, dag_run: Any = None) -> None:
        """The operator started the server itself: acted is true after the deferral."""
        expected = {"model_id": int(dag_run.conf["automl_id"]), "status": "RUNNING", "acted": True}
        assert result == expected, f"start_server returned {result!r}, expected {expected!r}"
        print(f"start result OK: {result!r}")

    check_started(start_server.output)


mls_e2e_deferred()
