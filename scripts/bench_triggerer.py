"""Benchmark: a real ``airflow triggerer`` process holding N deferred task instances (Airflow 2.11).

Sets up a throw-away ``AIRFLOW_HOME`` (SQLite), a DAG with a mapped deferrable sensor, one DAG run
whose N mapped task instances are put straight into the ``deferred`` state with their ``Trigger``
rows (as N workers that each checked once and deferred would leave them), then starts
``airflow triggerer`` and measures until every trigger has fired (its task instance left
``deferred``): wall time, the triggerer's CPU and peak RSS, the stub's requests. The waits are
``MLSCheckTrigger`` (``--trigger mls``) or ``HttpSensorTrigger`` (``--trigger http``) on the stub
of ``bench_stub.py`` (5 "not ready" answers per table, poke interval 1 s).

Airflow 2.11 only (``.venv-af2``): its triggerer runs the triggers in its own process, and its
metadata DB takes hand-made task instances; Airflow 3's triggerer needs the task SDK's workloads.

    .venv-af2/bin/python scripts/bench_triggerer.py --n 1000 --trigger mls
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAG_ID = "mls_bench_triggerer"

DAG_FILE = textwrap.dedent(
    """
    import pendulum
    from airflow import DAG
    from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor

    with DAG("mls_bench_triggerer", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
        BatchPredictionReadySensor.partial(
            task_id="wait", deferrable=True, poke_interval=1, mls_conn_id="mls_bench"
        ).expand(table=[f"t{i}" for i in range(N)])
    """
)


def _stats(port: int, run: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats/{run}", timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def setup(home: Path, n: int, kind: str, run: str) -> None:
    """The DAG, its run and N deferred task instances with their triggers (in this process)."""
    from airflow.models import DagBag, TaskInstance, Trigger
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType

    dag = DagBag(str(home / "dags"), include_examples=False).get_dag(DAG_ID)
    assert dag is not None, "the benchmark DAG did not load"
    dag.sync_to_db()
    SerializedDagModel.write_dag(dag)
    task = dag.get_task("wait")
    dag_run = dag.create_dagrun(
        run_id=f"bench_{run}", run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, execution_date=None
    )
    with create_session() as session:
        session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=dag_run.run_id).delete()
        for i in range(n):
            table = f"{run}-{i}"
            if kind == "mls":
                from airflow_provider_mls.checks import TableReadyCheck
                from airflow_provider_mls.triggers.mls import MLSCheckTrigger

                trigger: Any = MLSCheckTrigger(
                    check=TableReadyCheck(table=table).to_dict(),
                    mls_conn_id="mls_bench",
                    poke_interval=1.0,
                    deadline=time.time() + 3600,
                )
            else:
                from airflow.providers.http.triggers.http import HttpSensorTrigger

                trigger = HttpSensorTrigger(
                    endpoint=f"http/{table}", http_conn_id="http_bench", method="GET", poke_interval=1.0
                )
            row = Trigger.from_object(trigger)
            session.add(row)
            session.flush()
            ti = TaskInstance(task, run_id=dag_run.run_id, map_index=i, state=TaskInstanceState.DEFERRED)
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            session.add(ti)
        session.commit()


def deferred(run: str) -> int:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        return int(
            session.query(TaskInstance)
            .filter_by(dag_id=DAG_ID, run_id=f"bench_{run}", state=TaskInstanceState.DEFERRED)
            .count()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--trigger", choices=("mls", "http"), default="mls")
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for every trigger")
    args = parser.parse_args()

    import psutil

    home = Path(tempfile.mkdtemp(prefix="mls-bench-triggerer-"))
    (home / "dags").mkdir()
    (home / "dags" / "bench_dag.py").write_text(DAG_FILE.replace("range(N)", f"range({args.n})"))
    stub = subprocess.Popen(
        [sys.executable, str(HERE / "bench_stub.py"), "--port", "0", "--not-ready", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stub.stdout is not None
    port = int(stub.stdout.readline().split()[1])
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": str(max(1000, args.n)),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_MLS_BENCH": json.dumps(
            {"conn_type": "mls", "host": f"http://127.0.0.1:{port}", "login": "bench", "password": "bench-pw"}
        ),
        "AIRFLOW_CONN_HTTP_BENCH": json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        ),
    }
    os.environ.update(env)
    triggerer = None
    try:
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
        run = f"r{os.getpid()}"
        setup(home, args.n, args.trigger, run)
        print(f"{deferred(run)} task instances deferred; starting airflow triggerer", flush=True)
        log = (home / "triggerer.log").open("w")
        started = time.monotonic()
        triggerer = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "triggerer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = psutil.Process(triggerer.pid)
        peak_rss, own_rss, left, cpu, fired_at = 0.0, 0.0, args.n, 0.0, None
        first_request = None
        while time.monotonic() - started < args.limit:
            time.sleep(0.5)
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak_rss = max(peak_rss, sum(p.memory_info().rss for p in procs) / 2**20)
                own_rss = max(own_rss, proc.memory_info().rss / 2**20)
                cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            except psutil.Error:
                break
            if first_request is None and _stats(port, run)["requests"]:
                first_request = time.monotonic() - started
            left = deferred(run)
            if left == 0:
                fired_at = time.monotonic() - started
                break
        stats = _stats(port, run)
        checks = max(1, stats["checks"])
        gaps = sorted(g - 1.0 for g in stats["gaps"]) or [float("nan")]
        p50, p99 = gaps[len(gaps) // 2], gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
        print(
            f"airflow triggerer (Airflow {_airflow_version()}), {args.trigger}: {args.n - left}/{args.n} fired"
            + (
                f" {fired_at:.1f} s after the triggerer started"
                if fired_at is not None
                else " (limit reached)"
            )
            + f"; first check after {first_request or float('nan'):.1f} s; triggerer CPU {cpu:.1f} s "
            f"({1000 * cpu / checks:.2f} ms per check, start-up included); peak RSS {own_rss:.0f} MiB "
            f"(with its log-server children {peak_rss:.0f} MiB); "
            f"delay past the interval p50 {p50:.2f} s, p99 {p99:.2f} s; "
            f"{stats['requests']} requests, {stats['checks']} checks at the stub; logs in {home}",
            flush=True,
        )
    finally:
        if triggerer is not None:
            triggerer.terminate()
            try:
                triggerer.wait(30)
            except subprocess.TimeoutExpired:
                triggerer.kill()
        stub.terminate()
        stub.wait(10)


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


if __name__ == "__main__":
    main()
