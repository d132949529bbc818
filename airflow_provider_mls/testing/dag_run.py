"""Read the outcome of ``airflow dags test`` from its output (same line on Airflow 2.11 and 3.x)."""

from __future__ import annotations

import re

_FINISHED = re.compile(r"DagRun Finished:.*?\bstate=(?P<state>[a-z_]+)")


def dag_run_state(output: str) -> str | None:
    """The final state of the DAG run that ``airflow dags test`` printed, or None if it printed none."""
    states = [m.group("state") for m in _FINISHED.finditer(output)]
    return states[-1] if states else None
