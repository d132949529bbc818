"""Run a DAG in a test and read what it did; read the outcome of ``airflow dags test`` from its output.

``run_dag("my_dag", conf={...})`` loads the DAG from the DAG folder, runs it with ``dag.test()`` (tasks
in this process, deferred tasks resumed in this process) and returns a ``DagRunResult``: the run's
state, every task's state and every XCom, read from the metadata DB. It needs a configured Airflow
(the pytest plugin's per-test ``AIRFLOW_HOME``: ``airflow_provider_mls.testing.pytest_plugin``).
Airflow 3.x and 2.11.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DagRunResult", "dag_run_state", "load_dag", "run_dag"]

_FINISHED = re.compile(r"DagRun Finished:.*?\bstate=(?P<state>[a-z_]+)")


def dag_run_state(output: str) -> str | None:
    """The final state of the DAG run that ``airflow dags test`` printed, or None if it printed none."""
    states = [m.group("state") for m in _FINISHED.finditer(output)]
    return states[-1] if states else None


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _task_label(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


@dataclass(frozen=True)
class DagRunResult:
    """What one run of a DAG did.

    ``task_states`` maps a task id (``"task[2]"`` for map index 2 of a mapped task) to its final
    state; ``xcoms`` maps ``(task id, map index, key)`` to the value (``map_index`` -1 when not mapped).
    """

    dag_id: str
    run_id: str
    state: str | None
    conf: dict[str, Any] = field(default_factory=dict)
    task_states: dict[str, str | None] = field(default_factory=dict)
    xcoms: dict[tuple[str, int, str], Any] = field(default_factory=dict)
    log_folder: str = ""

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    def failed_tasks(self) -> list[str]:
        """The tasks that did not end ``success`` or ``skipped``."""
        return [t for t, s in self.task_states.items() if s not in ("success", "skipped")]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """The XCom ``key`` of ``task_id`` (its return value by default); ``KeyError`` naming what exists."""
        try:
            return self.xcoms[(task_id, map_index, key)]
        except KeyError:
            known = sorted(f"{t}{'' if i < 0 else f'[{i}]'}:{k}" for t, i, k in self.xcoms)
            raise KeyError(
                f"no XCom {key!r} of task {_task_label(task_id, map_index)!r} in run {self.run_id!r}; "
                f"the run has: {', '.join(known) or 'none'}"
            ) from None

    def assert_success(self) -> DagRunResult:
        """Raise ``AssertionError`` naming the failed tasks and where their logs are unless the run
        succeeded; returns the result, for ``run_dag(...).assert_success().xcom("t")``."""
        if not self.succeeded:
            failed = ", ".join(f"{t}={self.task_states[t]}" for t in self.failed_tasks()) or "none"
            raise AssertionError(
                f"DAG run {self.dag_id}/{self.run_id} ended {self.state!r}; tasks not successful: "
                f"{failed}. dag.test() logs each task to this test's captured output (shown with the "
                "failure); Airflow's log folder is " + (self.log_folder or "[logging] base_log_folder")
            )
        return self


def _dag_bag(dags_folder: str) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined]  # Airflow 2

    return DagBag(dag_folder=dags_folder)  # no examples: [core] load_examples


def load_dag(dag_id: str, dags_folder: str | None = None) -> Any:
    """The DAG ``dag_id`` of the DAG folder (default ``[core] dags_folder``).

    ``LookupError`` if the folder has no such DAG, with the DAG ids found and the import errors.
    """
    from airflow.configuration import conf

    folder = dags_folder or conf.get("core", "dags_folder")
    bag = _dag_bag(folder)
    dag = bag.dags.get(dag_id)
    if dag is None:
        errors = "".join(f"\n  {path}: {str(err).strip()[-800:]}" for path, err in bag.import_errors.items())
        raise LookupError(
            f"no DAG {dag_id!r} in the DAG folder {folder} (DAGs found: {sorted(bag.dag_ids) or 'none'})"
            + (f"; import errors:{errors}" if errors else "")
            + ". The pytest plugin's DAG folder is the ini option mls_dags_folder (default: dags)."
        )
    return dag


def run_dag(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    *,
    dags_folder: str | None = None,
    logical_date: Any = None,
) -> DagRunResult:
    """Run ``dag_id`` once with ``dag.test()`` and read its outcome from the metadata DB.

    :param dag_id: the DAG, loaded from ``dags_folder``.
    :param conf: the run's ``conf`` (``params`` overrides).
    :param dags_folder: default ``[core] dags_folder`` (the pytest plugin's ``mls_dags_folder``).
    :param logical_date: the run's logical date (default: now).
    """
    from airflow.configuration import conf as airflow_conf

    from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS

    dag = load_dag(dag_id, dags_folder)
    kwargs: dict[str, Any] = {"run_conf": dict(conf or {})}
    if logical_date is not None:
        kwargs["logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date"] = logical_date
    dag_run = dag.test(**kwargs)
    if dag_run is None:  # pragma: no cover - every supported dag.test() returns its run
        raise RuntimeError(f"dag.test() of {dag_id!r} returned no DAG run")
    return _read_run(dag_id, dag_run.run_id, os.path.join(airflow_conf.get("logging", "base_log_folder")))


def _read_run(dag_id: str, run_id: str, log_folder: str) -> DagRunResult:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel as XComRow
    else:
        from airflow.models.xcom import XCom as XComRow  # type: ignore[assignment,no-redef]

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        task_states = {
            _task_label(ti.task_id, ti.map_index): _state(ti.state)
            for ti in sorted(tis, key=lambda ti: (ti.task_id, ti.map_index))
        }
        rows = session.query(XComRow).filter(XComRow.dag_id == dag_id, XComRow.run_id == run_id)
        # Airflow 2 deserializes an XCom row when it loads it (its ORM reconstructor); 3 stores JSON.
        xcoms = {
            (row.task_id, row.map_index, row.key): (
                XComRow.deserialize_value(row) if AIRFLOW_V_3_0_PLUS else row.value
            )
            for row in rows
        }
        return DagRunResult(
            dag_id=dag_id,
            run_id=run_id,
            state=_state(run.state),
            conf=dict(run.conf or {}),
            task_states=task_states,
            xcoms=xcoms,
            log_folder=log_folder,
        )
