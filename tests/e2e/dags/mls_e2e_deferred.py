"""End-to-end DAG: a deferred ``BatchPredictionReadySensor`` waits in the triggerer for ``conf["table"]``.

Run by ``tests/e2e/test_scheduler_triggerer.py`` against a real scheduler and triggerer, with
``mls_default`` pointing at the local MLS server. Trigger it with ``{"table": "<name>"}``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor


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


mls_e2e_deferred()
