from __future__ import annotations

from airflow_provider_mls.testing.dag_run import dag_run_state

AF3 = (
    "[info] Task instance state updated new_state=success rows_affected=1\n"
    "[info] DagRun Finished: dag_id=t1, logical_date=2026-11-22, run_id=manual__x, "
    "run_duration=4.9, state=failed, run_type=manual, [airflow.models.dagrun.DagRun]\n"
)
AF2 = (
    "[2026-11-22T01:23:47.049+0000] {dagrun.py:905} INFO - DagRun Finished: dag_id=t1, "
    "execution_date=2026-11-22, run_duration=0.22, state=success, external_trigger=False\n"
)


def test_reads_the_dag_run_line_not_a_task_line() -> None:
    assert dag_run_state(AF3) == "failed"


def test_reads_airflow_2_output() -> None:
    assert dag_run_state(AF2) == "success"


def test_no_dag_run_line() -> None:
    assert dag_run_state("Task instance state updated new_state=success") is None
