"""Benchmark: a real ``airflow triggerer`` process holding N deferred task instances.

Sets up a throw-away ``AIRFLOW_HOME`` (SQLite), a DAG with a mapped deferrable sensor, and per
trigger kind one DAG run whose N mapped task instances are put straight into the ``deferred``
state with their ``Trigger`` rows (as N workers that each checked once and deferred would leave
them); then starts ``airflow triggerer`` and measures until every trigger has fired (its task
instance left ``deferred``): time, the CPU and peak RSS of the triggerer's processes, the delays
of the checks past the poke interval and the requests at the stub. The waits are
``MLSCheckTrigger`` (``mls``) and the http provider's ``HttpSensorTrigger`` (``http``) on the stub
of ``bench_stub.py`` (5 "not ready" answers per table, poke interval 1 s). Airflow 3.x and 2.11.

    .venv/bin/python scripts/bench_triggerer.py --n 1000 [--trigger mls http] [--no-page]

The figures are also written to ``docs/benchmarks.md``, in the section of the Airflow major version
that ran them (with the date, the machine and the arguments); ``--no-page`` leaves the page alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_page

HERE = Path(__file__).resolve().parent
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


AIRFLOW_V3 = int(_airflow_version().split(".")[0]) >= 3


def airflow_cli(*args: str) -> None:
    done = subprocess.run([AIRFLOW_BIN, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


DAG_ID = "mls_bench_triggerer"

DAG_FILE = textwrap.dedent(
    """
    import pendulum
    from airflow.providers.common.compat.sdk import DAG
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


def _trigger(kind: str, table: str) -> Any:
    if kind == "mls":
        from airflow_provider_mls.checks import TableReadyCheck
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        return MLSCheckTrigger(
            check=TableReadyCheck(table=table).to_dict(),
            mls_conn_id="mls_bench",
            poke_interval=1.0,
            deadline=time.time() + 3600,
        )
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return HttpSensorTrigger(
        endpoint=f"http/{table}", http_conn_id="http_bench", method="GET", poke_interval=1.0
    )


def _dag_and_run(home: Path, run: str) -> tuple[Any, Any, Any]:
    """(the DAG, its new run, the dag_version_id of its task instances or None) in the metadata DB."""
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    if AIRFLOW_V3:
        from airflow.models.dag_version import DagVersion
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunTriggeredByType

        if DagVersion.get_latest_version(DAG_ID) is None:
            airflow_cli("dags", "reserialize")
        with create_session() as session:
            dag = SerializedDagModel.get_dag(DAG_ID, session=session)
            assert dag is not None, "the benchmark DAG was not serialized"
            version = DagVersion.get_latest_version(DAG_ID, session=session)
            dag_run = dag.create_dagrun(
                run_id=f"bench_{run}",
                run_after=datetime.now(UTC),
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.TEST,
                state=DagRunState.RUNNING,
                session=session,
            )
            return dag, dag_run.run_id, version.id
    from airflow.models import DagBag
    from airflow.models.serialized_dag import SerializedDagModel

    dag = DagBag(str(home / "dags"), include_examples=False).get_dag(DAG_ID)
    assert dag is not None, "the benchmark DAG did not load"
    dag.sync_to_db()
    SerializedDagModel.write_dag(dag)
    dag_run = dag.create_dagrun(
        run_id=f"bench_{run}", run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, execution_date=None
    )
    return dag, dag_run.run_id, None


def setup(home: Path, n: int, kind: str, run: str) -> None:
    """The DAG, its run and N deferred task instances with their triggers (in this process)."""
    from airflow.models import TaskInstance, Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    dag, run_id, version_id = _dag_and_run(home, run)
    task = dag.get_task("wait")
    with create_session() as session:
        session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).delete()
        for i in range(n):
            row = Trigger.from_object(_trigger(kind, f"{run}-{i}"))
            session.add(row)
            session.flush()
            if AIRFLOW_V3:
                ti = TaskInstance(task, dag_version_id=version_id, run_id=run_id, map_index=i)
            else:
                ti = TaskInstance(task, run_id=run_id, map_index=i)
            ti.state = TaskInstanceState.DEFERRED
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            ti.try_number = 1
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


def measure(home: Path, env: dict[str, str], port: int, n: int, kind: str, limit: float) -> list[str]:
    """Defer N task instances on ``kind`` triggers, run ``airflow triggerer`` until all fired, print;
    return the row of docs/benchmarks.md."""
    import psutil

    run = f"{kind}{os.getpid()}"
    setup(home, n, kind, run)
    print(
        f"{deferred(run)} task instances deferred on {kind} triggers; starting airflow triggerer", flush=True
    )
    triggerer = None
    try:
        with (home / f"triggerer-{kind}.log").open("w") as log:
            started = time.monotonic()
            triggerer = subprocess.Popen(
                [AIRFLOW_BIN, "triggerer"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            proc = psutil.Process(triggerer.pid)
            rss: dict[int, tuple[float, str]] = {}  # pid -> (peak RSS in MiB, name)
            left, cpu, fired_at, first_request = n, 0.0, None, None
            while time.monotonic() - started < limit:
                time.sleep(0.5)
                try:
                    procs = [proc, *proc.children(recursive=True)]
                    for p in procs:
                        with contextlib.suppress(psutil.Error):
                            peak = max(rss.get(p.pid, (0.0, ""))[0], p.memory_info().rss / 2**20)
                            rss[p.pid] = (peak, " ".join(p.cmdline()[1:3])[:40])
                    cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
                except psutil.Error:
                    break
                if first_request is None and _stats(port, run)["requests"]:
                    first_request = time.monotonic() - started
                left = deferred(run)
                if left == 0:
                    fired_at = time.monotonic() - started
                    break
    finally:
        if triggerer is not None:
            triggerer.terminate()
            try:
                triggerer.wait(30)
            except subprocess.TimeoutExpired:
                triggerer.kill()
    stats = _stats(port, run)
    checks = max(1, stats["checks"])
    gaps = sorted(g - 1.0 for g in stats["gaps"]) or [float("nan")]
    p50, p99 = gaps[len(gaps) // 2], gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
    biggest = max(rss.values(), default=(float("nan"), "?"))
    print(
        f"airflow triggerer (Airflow {_airflow_version()}), {kind}: {n - left}/{n} fired"
        + (f" {fired_at:.1f} s after the triggerer started" if fired_at is not None else " (limit reached)")
        + f"; first check after {first_request or float('nan'):.1f} s; CPU of the triggerer's processes "
        f"{cpu:.1f} s ({1000 * cpu / checks:.2f} ms per check, start-up included); peak RSS of its biggest "
        f"process {biggest[0]:.0f} MiB ({biggest[1]}), of all {sum(v for v, _ in rss.values()):.0f} MiB; "
        f"delay past the interval p50 {p50:.2f} s, p99 {p99:.2f} s; "
        f"{stats['requests']} requests, {stats['checks']} checks at the stub",
        flush=True,
    )
    return [
        {"mls": "MLSCheckTrigger", "http": "HttpSensorTrigger"}[kind],
        f"{bench_page.number(n - left)} / {bench_page.number(n)}",
        f"{fired_at:.1f} s" if fired_at is not None else f"not all within {limit:.0f} s",
        f"{first_request or float('nan'):.1f} s",
        f"{cpu:.1f} s ({1000 * cpu / checks:.2f} ms per check)",
        f"{biggest[0]:.0f} MiB ({' '.join(Path(word).name for word in biggest[1].split())})",  # no local paths
        f"{sum(v for v, _ in rss.values()):.0f} MiB",
        f"{bench_page.seconds(p50)} / {bench_page.seconds(p99)} s",
        f"{bench_page.number(stats['requests'])} / {bench_page.number(stats['checks'])}",
    ]


PAGE_HEADER = (
    "trigger",
    "fired",
    "all fired after the triggerer started",
    "first check after",
    "CPU of the triggerer's processes (start-up included)",
    "peak RSS of its biggest process",
    "of all its processes",
    "delay past the interval p50 / p99",
    "requests / checks at the stub",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--trigger", choices=("mls", "http"), nargs="+", default=["mls", "http"])
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for every trigger")
    parser.add_argument("--no-page", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

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
    print(f"AIRFLOW_HOME {home} (logs of the triggerer and the tasks)", flush=True)
    label = bench_page.run_label()
    try:
        airflow_cli("db", "migrate")
        rows = [measure(home, env, port, args.n, kind, args.limit) for kind in args.trigger]
        if not args.no_page:
            bench_page.write_section(
                f"bench_triggerer on Airflow {_airflow_version().split('.')[0]}",
                f"{label} {args.n:,} deferred task instances of a mapped deferrable sensor, poke interval "
                f"1 s, 5 'not ready' answers per table.\n\n{bench_page.table(PAGE_HEADER, rows)}",
            )
    finally:
        stub.terminate()
        stub.wait(10)


if __name__ == "__main__":
    main()
