"""Faults of a real deployment: workers, the triggerer, the scheduler, PostgreSQL and Redis killed mid-run.

The deployment is the Celery + PostgreSQL + Redis one of the deployment test (``_deployment.py``), with
both workers serving both queues (a task killed on one worker is retried on the other) and the failure
detection made short so that recovery takes seconds, not Airflow's defaults' minutes:

* ``[scheduler] task_instance_heartbeat_timeout`` 20 s (default 300) and its detection interval 2 s
  (default 10): how long a dead worker's task stays ``running`` before it is failed and retried;
* ``[triggerer] triggerer_health_check_threshold`` 6 s (default 30), heartbeat 2 s: how long a dead
  triggerer's triggers wait for another triggerer to take them.

Each scenario prints one line of figures: runs completed, duplicates, events lost, seconds to recover.
``make test`` runs the worker-kill scenario (``CreateManualModelOperator``) and the triggerer-kill one;
``make faults`` (``MLS_FAULTS=1``) runs them all, on one deployment. Airflow 3.3 only (task state store).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
import requests

from tests.e2e._cluster import AIRFLOW_V3, ClusterError
from tests.e2e._deployment import WORKERS, CeleryDeployment, Postgres, Redis, missing_services, temp_root

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DAGS = Path(__file__).resolve().parent / "fault_dags"
WAITS = int(os.environ.get("MLS_FAULT_WAITS", "200"))
ALL = bool(os.environ.get("MLS_FAULTS"))
HEARTBEAT_TIMEOUT = 20
TRIGGERER_THRESHOLD = 6
FIGURES: list[str] = []
CREATE_MANUAL = "mls_fault_create_manual"  # the DAG of most scenarios: one CreateManualModelOperator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("airflow-clusters"),  # see tests/conftest.py
    pytest.mark.skipif(not AIRFLOW_V3, reason="faults of the Airflow 3 deployment (task state store: 3.3)"),
    # Each scenario bounds its own waits; the 200-wait triggerer scenario alone takes about 5 minutes on 2 cores.
    pytest.mark.timeout(1200),
]
full_run = pytest.mark.skipif(not ALL, reason="part of `make faults` (MLS_FAULTS=1), not of `make test`")


class FaultDeployment(CeleryDeployment):
    """The deployment test's cluster, both workers on both queues, short failure detection, and processes
    that can be killed (SIGKILL, with every descendant) and started again."""

    def _build_env(self, extra_env: Any) -> dict[str, str]:
        env = super()._build_env(extra_env)
        env.update(
            {
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_THRESHOLD),
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__CORE__PARALLELISM": "16",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
                # A task whose Celery message died with Redis is queued again after this (default 600 s).
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
                "MLS_FAULT_WAITS": str(WAITS),
            }
        )
        return env

    def components(self) -> dict[str, list[str]]:
        parts = super().components()
        for worker in WORKERS:
            args = parts[worker]
            args[args.index("--queues") + 1] = ",".join(WORKERS.values())
        return parts

    down: set[str] = set()  # killed on purpose, not (yet) started again

    def check_alive(self) -> None:
        dead = {
            name: proc.returncode
            for name, proc in self.procs.items()
            if name not in self.down and proc.poll() is not None
        }
        if dead:
            raise ClusterError(f"Airflow process(es) exited: {dead}\n{self.logs()}")

    def kill(self, name: str) -> None:
        """SIGKILL a process and all its descendants at once, as a machine that dies."""
        self.down = self.down | {name}
        proc = self.procs[name]
        family = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(proc.pid)
            family = [root, *root.children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
        proc.wait(10)

    def restart(self, name: str) -> None:
        """Start a killed process again (its log is appended to)."""
        self.down = self.down - {name}
        log = open(self.log_dir / f"{name}.log", "ab")  # closed in stop()
        self._log_files.append(log)
        env = self.process_env(name)
        self.procs[name] = subprocess.Popen(
            self.command(name, self.components()[name]),
            env=env,
            cwd=self.root if name in WORKERS and self.private_mounts else env["HOME"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    # ---------------------------------------------------------------- the metadata DB, read directly
    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            user=self.postgres.user,
            dbname="airflow",
            connect_timeout=5,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                rows = list(cur.fetchall()) if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def ti_states(self, dag_id: str, run_id: str) -> dict[str, int]:
        rows = self.sql(
            "SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id=%s AND run_id=%s GROUP BY 1",
            dag_id,
            run_id,
        )
        return {state: int(n) for state, n in rows}

    def ti(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        rows = self.sql(
            "SELECT state, try_number, hostname FROM task_instance WHERE dag_id=%s AND run_id=%s AND task_id=%s",
            dag_id,
            run_id,
            task_id,
        )
        if not rows:
            return {"state": None, "try_number": 0}
        state, try_number, hostname = rows[0]
        return {"state": state, "try_number": try_number, "hostname": hostname}

    def trigger_run(self, dag_id: str, conf: dict[str, Any]) -> str:
        run_id = f"fault__{uuid.uuid4().hex[:10]}"
        resp = requests.post(
            f"http://127.0.0.1:{self.api_port}/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=60,
        )
        if resp.status_code not in (200, 201):
            raise ClusterError(f"trigger {dag_id}: {resp.status_code} {resp.text[:2000]}")
        return run_id

    def unpause(self, dag_id: str) -> None:
        resp = requests.patch(
            f"http://127.0.0.1:{self.api_port}/api/v2/dags/{dag_id}",
            json={"is_paused": False},
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=60,
        )
        if resp.status_code != 200:
            raise ClusterError(f"unpause {dag_id}: {resp.status_code} {resp.text[:2000]}")

    def worker_running(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The worker whose machine holds the task's log of this run (where it runs or ran)."""
        for worker in WORKERS:
            for path in self.task_logs_on(worker):
                text = str(path)
                if f"dag_id={dag_id}" in text and f"run_id={run_id}" in text and f"task_id={task_id}" in text:
                    return worker
        return None

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The log of one try of a task, from the worker that ran it."""
        parts = []
        for worker in WORKERS:
            for path in self.task_logs_on(worker):
                text = str(path)
                if (
                    f"dag_id={dag_id}" in text
                    and f"run_id={run_id}" in text
                    and f"task_id={task_id}" in text
                    and path.name.startswith(f"attempt={try_number}")
                ):
                    parts.append(path.read_text("utf-8", "replace"))
        return "\n".join(parts)

    def run_states(self, dag_id: str, run_ids: list[str]) -> list[str | None]:
        """The states of these runs that exist (in no particular order)."""
        rows = self.sql("SELECT state FROM dag_run WHERE dag_id=%s AND run_id = ANY(%s)", dag_id, run_ids)
        return [r[0] for r in rows]

    def triggerer_job(self) -> int | None:
        """The live triggerer's job id (heartbeat in the last 5 s)."""
        rows = self.sql(
            "SELECT id FROM job WHERE job_type='TriggererJob' AND state='running' "
            "AND latest_heartbeat > now() - interval '5 seconds' ORDER BY id DESC LIMIT 1"
        )
        return int(rows[0][0]) if rows else None

    def fired_events(self, dag_id: str, run_id: str) -> dict[str, int]:
        """map index -> "Trigger fired event" lines in its trigger logs (on the control plane)."""
        fired: dict[str, int] = {}
        for path in self.task_logs_on("control-plane"):
            text = str(path)
            if (
                ".trigger." not in path.name
                or f"dag_id={dag_id}" not in text
                or f"run_id={run_id}" not in text
            ):
                continue
            index = next(
                (part.split("=", 1)[1] for part in path.parts if part.startswith("map_index=")), "-1"
            )
            fired[index] = fired.get(index, 0) + path.read_text("utf-8", "replace").count(
                "Trigger fired event"
            )
        return fired

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> requests.Response:
        """What a person does in the UI: mark a task instance ``state`` (the REST API's PATCH)."""
        return requests.patch(
            f"http://127.0.0.1:{self.api_port}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": state},
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultDeployment, Any]]:
    missing = missing_services()
    assert not missing, f"missing for the fault test: {missing}; run scripts/e2e-services.sh (as root)"
    import shutil

    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.pytest_plugin import AWS_VARIABLES

    root = temp_root("mls-e2e-faults-")
    saved = {
        k: os.environ.get(k) for k in (*AWS_VARIABLES, "AIRFLOW_CONN_MLS_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT")
    }
    try:
        with contextlib.ExitStack() as stack:
            mls = stack.enter_context(
                LocalMLSServer(
                    root / "mls",
                    port=0,
                    password="mls-e2e-faults",
                    training_seconds=600,
                    server_start_seconds=120,  # a start stays STARTING: the kill comes first
                )
            )
            postgres = stack.enter_context(Postgres(root / "postgres"))
            redis = stack.enter_context(Redis(root / "redis"))
            for name in AWS_VARIABLES:
                os.environ.pop(name, None)
            connections = {
                "AIRFLOW_CONN_MLS_DEFAULT": mls.conn_json(),
                "AIRFLOW_CONN_AWS_DEFAULT": mls.aws_conn_json(),
                **mls.aws_env(),
            }
            os.environ.update(connections)
            env = {
                **connections,
                "AWS_CONFIG_FILE": str(root / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
            }
            cluster = stack.enter_context(
                FaultDeployment(
                    root / "airflow",
                    DAGS,
                    postgres=postgres,
                    redis=redis,
                    extra_env=env,
                    worker_concurrency=4,
                    startup_timeout=300,
                )
            )
            dag_ids = [
                "mls_fault_create_manual",
                "mls_fault_create_automl",
                "mls_fault_load_table",
                "mls_fault_upload",
                "mls_fault_waits",
                "mls_fault_start_server",
            ]

            def parsed() -> bool:
                cluster.check_alive()
                found = {
                    d["dag_id"] for d in cluster.api("dags", dag_id_pattern="mls_fault_%", limit=100)["dags"]
                }
                return set(dag_ids) <= found

            cluster.wait_until(parsed, 180, f"DAGs parsed: {dag_ids}", 2)
            for dag_id in dag_ids:
                cluster.unpause(dag_id)
            yield cluster, mls
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if FIGURES:
            print("\n== fault scenarios (runs completed, duplicates, events lost, seconds to recover)")
            print("\n".join(FIGURES))
        if not os.environ.get("MLS_E2E_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


# ---- the scenarios' steps ----------------------------------------------------------------------------


@dataclass
class Faults:
    """One scenario on the deployment: what it starts, waits for, kills and reads, and its line of figures."""

    cluster: FaultDeployment
    mls: Any
    capsys: pytest.CaptureFixture[str]

    def figures(
        self, scenario: str, *, runs: str, duplicates: int, recover: float, lost: int = 0, note: str = ""
    ) -> None:
        """Print (and keep for the module's summary) runs completed, duplicates, events lost, seconds to recover."""
        line = (
            f"[faults] {scenario}: runs completed {runs}, duplicates {duplicates}, events lost {lost}, "
            f"seconds to recover {recover:.1f}{'; ' + note if note else ''}"
        )
        FIGURES.append(line)
        with self.capsys.disabled():
            print(line, flush=True)

    # ---------------------------------------------------------------- waiting, with every process alive
    def wait(self, condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
        def checked() -> bool:
            self.cluster.check_alive()
            return condition()

        self.cluster.wait_until(checked, timeout, what, interval)

    def run_done(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        """Until the run finished; its state."""
        states: list[str | None] = []

        def finished() -> bool:
            states[:] = self.cluster.run_states(dag_id, [run_id]) or [None]
            return states[0] in ("success", "failed")

        self.wait(finished, timeout, f"{dag_id}/{run_id} finished")
        return str(states[0])

    # ---------------------------------------------------------------- the faults
    def kill_worker_mid_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        ready: Callable[[], bool],
        timeout: float = 120,
        interval: float = 0.5,
    ) -> WorkerKill:
        """When ``task_id`` runs on a worker and ``ready()`` (it has sent its request), SIGKILL that worker."""
        worker: list[str | None] = [None]

        def running_there() -> bool:
            if self.cluster.ti(dag_id, run_id, task_id)["state"] != "running":
                return False
            worker[0] = self.cluster.worker_running(dag_id, run_id, task_id)
            return worker[0] is not None and ready()

        self.wait(running_there, timeout, f"{dag_id}/{task_id} running and past its request", interval)
        assert worker[0] is not None
        killed_at = time.monotonic()
        self.cluster.kill(worker[0])
        return WorkerKill(self, dag_id, run_id, task_id, worker[0], killed_at)

    def kill_and_restart(self, name: str) -> float:
        """SIGKILL an Airflow process, start it again 3 s later; when it was killed."""
        killed_at = time.monotonic()
        self.cluster.kill(name)
        time.sleep(3)
        self.cluster.restart(name)
        return killed_at

    def start_creates(self, prefix: str, count: int = 4) -> tuple[list[str], list[str]]:
        """``count`` runs of the manual create, each of its own model; (model names, run ids) once one started."""
        names = [f"{prefix}_{uuid.uuid4().hex[:8]}" for _ in range(count)]
        runs = [self.cluster.trigger_run(CREATE_MANUAL, {"name": n, "version": "v1"}) for n in names]
        self.wait(lambda: any(self.cluster.ti_states(CREATE_MANUAL, r) for r in runs), 60, "a run started")
        return names, runs

    # ---------------------------------------------------------------- the MLS server
    def models(self, name: str) -> list[dict[str, Any]]:
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        return [
            m
            for m in hook.list_all_models("manual", name=name) + hook.list_all_models("automl", name=name)
            if m.get("name") == name
        ]

    def duplicates(self, names: list[str]) -> int:
        return sum(len(self.models(n)) - 1 for n in names)

    def delay(self, method: str, path: str) -> Callable[[], bool]:
        """Hold the next ``method path`` request on the MLS server for 90 s (this is its only fault); whether
        a request has taken the delay."""
        with self.mls.admin() as admin:
            admin.clear_faults()
            fault = admin.add_fault(method, path, status=None, delay=90)

        def taken() -> bool:
            with self.mls.admin() as admin:
                return all(f["id"] != fault["id"] for f in admin.pending_faults())

        return taken

    def delay_read_of_created_model(self) -> Callable[[], bool]:
        """Delay the read-back of the next model by id (the hook's GET after its POST was answered): the
        worker is killed while that read hangs, i.e. after the create reached MLS and was answered. The
        next id is the highest so far plus one (this test is the server's only writer)."""
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        ids = [m["id"] for kind in ("manual", "automl") for m in hook.list_all_models(kind)]
        return self.delay("GET", f"/api/v1/models/{max(ids, default=0) + 1}")

    def server_status(self, model_id: int) -> str:
        with self.mls.admin() as admin:
            return str(admin.call("GET", f"/api/v1/models/{model_id}/automl_model_server")["status"])


@dataclass
class WorkerKill:
    """A run whose worker was SIGKILLed while ``task_id`` ran on it."""

    faults: Faults
    dag_id: str
    run_id: str
    task_id: str
    worker: str
    killed_at: float

    def recover(self) -> Recovered:
        """Until the run finished (the retry ran on the live worker); the dead worker is started again."""
        state = self.faults.run_done(self.dag_id, self.run_id, timeout=HEARTBEAT_TIMEOUT + 180)
        seconds = time.monotonic() - self.killed_at
        ti = self.faults.cluster.ti(self.dag_id, self.run_id, self.task_id)
        self.faults.cluster.restart(self.worker)
        return Recovered(self, state, seconds, ti)


@dataclass
class Recovered:
    """How the killed run ended: its state, seconds from the kill, the task instance (its last try)."""

    kill: WorkerKill
    state: str
    seconds: float
    ti: dict[str, Any]

    @property
    def runs(self) -> str:
        return f"{int(self.state == 'success')}/1"

    def retry_log(self) -> str:
        """The log of the task's last try (the retry on the live worker)."""
        k = self.kill
        return k.faults.cluster.task_log(k.dag_id, k.run_id, k.task_id, self.ti["try_number"])


@pytest.fixture
def faults(deployment: tuple[FaultDeployment, Any], capsys: pytest.CaptureFixture[str]) -> Faults:
    cluster, mls = deployment
    return Faults(cluster, mls, capsys)


# ---------------------------------------------------------------------------------------------------
def test_worker_killed_after_manual_create(faults: Faults) -> None:
    name = f"fault_manual_{uuid.uuid4().hex[:8]}"
    taken = faults.delay_read_of_created_model()
    run_id = faults.cluster.trigger_run(CREATE_MANUAL, {"name": name, "version": "v1", "if_exists": "fail"})
    kill = faults.kill_worker_mid_task(CREATE_MANUAL, run_id, "create", taken)
    after = kill.recover()
    models = faults.models(name)
    faults.figures(
        "worker SIGKILLed after CreateManualModelOperator's POST (if_exists=fail)",
        runs=after.runs,
        duplicates=len(models) - 1,
        recover=after.seconds,
        note=f"try {after.ti['try_number']} ended {after.ti['state']}",
    )
    assert after.state == "success", faults.cluster.logs()
    assert after.ti["try_number"] >= 2, after.ti
    assert len(models) == 1, models
    retry_log = after.retry_log()
    assert "recorded by an earlier try" in retry_log, retry_log[-4000:]


def test_triggerer_killed_with_deferred_waits(faults: Faults) -> None:
    cluster, dag_id = faults.cluster, "mls_fault_waits"
    tables = sorted({f"fault_waits_{i % 10}" for i in range(WAITS)})
    with faults.mls.admin() as admin:
        for table in tables:
            with contextlib.suppress(Exception):
                admin.drop_table(table)
    run_id = cluster.trigger_run(dag_id, {})
    faults.wait(
        lambda: cluster.ti_states(dag_id, run_id).get("deferred", 0) >= WAITS, 600, f"{WAITS} waits deferred"
    )
    old_job = cluster.triggerer_job()
    killed_at = faults.kill_and_restart("triggerer")

    def taken_over() -> bool:
        job = cluster.triggerer_job()
        if job is None or job == old_job:
            return False
        held = cluster.sql("SELECT count(*) FROM trigger WHERE triggerer_id=%s", job)[0][0]
        return int(held) >= WAITS

    faults.wait(taken_over, 180, "the new triggerer took every trigger")
    takeover = time.monotonic() - killed_at
    with faults.mls.admin() as admin:
        for table in tables:
            admin.set_table(table, is_active=True)
    ready_at = time.monotonic()
    state = faults.run_done(dag_id, run_id, timeout=900)
    states = cluster.ti_states(dag_id, run_id)
    tries = cluster.sql(
        "SELECT max(try_number) FROM task_instance WHERE dag_id=%s AND run_id=%s", dag_id, run_id
    )[0][0]
    # A lost event leaves its task deferred (until its timeout); one fired twice shows twice in its trigger logs.
    fired = cluster.fired_events(dag_id, run_id)
    twice = sum(1 for n in fired.values() if n > 1)
    faults.figures(
        f"triggerer SIGKILLed holding {WAITS} deferred waits, restarted 3 s later",
        runs=f"{int(state == 'success')}/1 ({states.get('success', 0)}/{WAITS} waits success)",
        duplicates=twice,
        lost=WAITS - states.get("success", 0),
        recover=takeover,
        note=f"all {WAITS} resumed {time.monotonic() - ready_at:.0f}s after the tables were ready; "
        f"{sum(fired.values())} 'Trigger fired event' lines in the trigger logs",
    )
    assert state == "success", states
    assert states == {"success": WAITS}, states
    assert tries == 1, "a wait was retried"
    assert twice == 0, fired


# ---------------------------------------------------------------------------------------------------
# `make faults` only (MLS_FAULTS=1): the other tasks that start something remote, the control plane's
# own faults, and the cases a time window cannot tell apart.


@full_run
def test_worker_killed_after_automl_create(faults: Faults) -> None:
    name = f"fault_automl_{uuid.uuid4().hex[:8]}"
    dataset = f"fault_ds_{uuid.uuid4().hex[:8]}"
    with faults.mls.admin() as admin:
        admin.create_dataset(dataset)
    taken = faults.delay_read_of_created_model()
    dag_id = "mls_fault_create_automl"
    run_id = faults.cluster.trigger_run(dag_id, {"name": name, "version": "v1", "dataset": dataset})
    kill = faults.kill_worker_mid_task(dag_id, run_id, "create", taken)
    after = kill.recover()
    models = faults.models(name)
    faults.figures(
        "worker SIGKILLed after CreateAutoMLModelOperator's POST (a training started)",
        runs=after.runs,
        duplicates=len(models) - 1,
        recover=after.seconds,
        note=f"trainings {len(models)}",
    )
    assert after.state == "success" and len(models) == 1, models
    assert "recorded by an earlier try" in after.retry_log()


@full_run
def test_worker_killed_mid_table_load(faults: Faults) -> None:
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

    tables = PredictionTableHook()
    table = f"fault_load_{uuid.uuid4().hex[:8]}"
    tables.create_table(table)
    rows = [{"user_id": f"u{i:05d}", "score": i % 97} for i in range(3000)]
    dag_id = "mls_fault_load_table"
    run_id = faults.cluster.trigger_run(dag_id, {"table": table, "rows": rows})
    kill = faults.kill_worker_mid_task(
        dag_id, run_id, "load", lambda: 0 < tables.count_items(table) < len(rows), timeout=180
    )
    at_kill = tables.count_items(table)
    loading_after_kill = tables.is_loading(table)
    after = kill.recover()
    count = tables.count_items(table)
    faults.figures(
        f"worker SIGKILLed mid-load of {len(rows)} rows ({at_kill} in)",
        runs=after.runs,
        duplicates=0,
        lost=len(rows) - count,
        recover=after.seconds,
        note=f"marked loading until the retry's last row: {loading_after_kill and not tables.is_loading(table)}",
    )
    assert (
        after.state == "success"
        and count == len(rows)
        and loading_after_kill
        and not tables.is_loading(table)
    )
    assert "committed the first" in after.retry_log()


@full_run
def test_worker_killed_mid_registry_upload(faults: Faults) -> None:
    import boto3

    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

    registry = MLSModelRegistryHook()
    s3 = boto3.client("s3")
    with contextlib.suppress(Exception):
        s3.create_bucket(Bucket=registry.bucket)
    name = f"fault_upload_{uuid.uuid4().hex[:8]}"
    dag_id = "mls_fault_upload"
    run_id = faults.cluster.trigger_run(dag_id, {"name": name, "version": "v1"})

    recorded: list[str] = []

    def uploading() -> bool:
        """The try recorded that it is uploading (or, if we are late, that it has uploaded)."""
        rows = faults.cluster.sql(
            "SELECT value FROM task_state_store WHERE dag_id=%s AND run_id=%s AND key='mls_upload'",
            dag_id,
            run_id,
        )
        recorded[:] = [str(rows[0][0])] if rows else []
        return bool(rows)

    kill = faults.kill_worker_mid_task(dag_id, run_id, "upload", uploading, timeout=180, interval=0.05)
    in_flight = '"result"' not in recorded[0]
    after = kill.recover()
    versions = registry.list_versions(name)
    faults.figures(
        "worker SIGKILLed mid-upload of a 16 MiB model to the registry",
        runs=after.runs,
        duplicates=len(versions) - 1,
        recover=after.seconds,
        note=f"killed {'mid-upload' if in_flight else 'after the upload, before the task ended'}; "
        f"artifacts {versions}",
    )
    assert after.state == "success" and versions == ["v1"]
    retry_log = after.retry_log()
    assert "An earlier try of this task " + ("began uploading" if in_flight else "uploaded") in retry_log


@full_run
def test_scheduler_killed_and_restarted_mid_run(faults: Faults) -> None:
    names, runs = faults.start_creates("fault_sched")
    killed_at = faults.kill_and_restart("scheduler")
    states = [faults.run_done(CREATE_MANUAL, r, timeout=240) for r in runs]
    seconds = time.monotonic() - killed_at
    duplicates = faults.duplicates(names)
    faults.figures(
        "scheduler SIGKILLed mid-run (4 runs), restarted 3 s later",
        runs=f"{states.count('success')}/{len(runs)}",
        duplicates=duplicates,
        recover=seconds,
    )
    assert states == ["success"] * len(runs) and duplicates == 0


def _supervised(cluster: FaultDeployment, until: Callable[[], bool], timeout: float) -> int:
    """Poll ``until()``, starting again any Airflow process that exits meanwhile (as systemd or Kubernetes
    would); how many restarts it took."""
    restarts = 0
    deadline = time.monotonic() + timeout
    while True:
        for name, proc in list(cluster.procs.items()):
            if name not in cluster.down and proc.poll() is not None:
                cluster.restart(name)
                restarts += 1
        with contextlib.suppress(Exception):
            if until():
                return restarts
        if time.monotonic() > deadline:
            raise ClusterError(f"not done after {timeout:.0f}s ({restarts} restarts)\n{cluster.logs()}")
        time.sleep(1)


@full_run
@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_metadata_db_and_broker_restarted_mid_run(faults: Faults, service: str) -> None:
    cluster = faults.cluster
    names, runs = faults.start_creates(f"fault_{service}")
    server = cluster.postgres if service == "postgres" else cluster.redis
    killed_at = time.monotonic()
    cluster.down = cluster.down | set(cluster.procs)  # the outage may take processes down with it
    server.stop()
    time.sleep(3)
    server.restart()
    cluster.down = set()

    def all_done() -> bool:
        states = cluster.run_states(CREATE_MANUAL, runs)
        return len(states) == len(runs) and all(s in ("success", "failed") for s in states)

    restarts = _supervised(cluster, all_done, 300)
    seconds = time.monotonic() - killed_at
    states = cluster.run_states(CREATE_MANUAL, runs)
    duplicates = faults.duplicates(names)
    faults.figures(
        f"{'PostgreSQL' if service == 'postgres' else 'Redis'} stopped mid-run (4 runs), started 3 s later",
        runs=f"{states.count('success')}/{len(runs)}",
        duplicates=duplicates,
        recover=seconds,
        note=f"Airflow processes restarted by the supervisor: {restarts}",
    )
    assert states == ["success"] * len(runs) and duplicates == 0


# ---- the cases a time window cannot tell apart ------------------------------------------------------


def _killed_create(faults: Faults, name: str) -> tuple[WorkerKill, int]:
    """A manual create of ``name`` v1 whose worker is killed after the POST was answered; (kill, model id)."""
    taken = faults.delay_read_of_created_model()
    run_id = faults.cluster.trigger_run(CREATE_MANUAL, {"name": name, "version": "v1"})
    kill = faults.kill_worker_mid_task(CREATE_MANUAL, run_id, "create", taken)
    [model] = faults.models(name)
    return kill, int(model["id"])


@full_run
def test_model_edited_between_the_tries(faults: Faults) -> None:
    from airflow_provider_mls.hooks.mls import MLSHook

    name = f"fault_edit_{uuid.uuid4().hex[:8]}"
    kill, created = _killed_create(faults, name)
    MLSHook().update_manual_model(created, description="edited by a person while the task was down")
    after = kill.recover()
    models = faults.models(name)
    faults.figures(
        "model edited between the tries (the window: a conflict)",
        runs=after.runs,
        duplicates=len(models) - 1,
        recover=after.seconds,
        note=f"returned its own model: {[m['id'] for m in models] == [created]}",
    )
    assert after.state == "success" and [m["id"] for m in models] == [created]
    [(value,)] = faults.cluster.sql(
        "SELECT value FROM xcom WHERE dag_id=%s AND run_id=%s AND key='return_value'",
        CREATE_MANUAL,
        kill.run_id,
    )
    assert (json.loads(value) if isinstance(value, str) else value)["id"] == created


@full_run
def test_mls_clock_a_minute_behind_airflows(faults: Faults) -> None:
    """The window compares MLS's created_at with Airflow's start of the run: with the run's start moved a
    minute past the model's created_at, the two clocks disagree by a minute as the window sees them."""
    name = f"fault_clock_{uuid.uuid4().hex[:8]}"
    kill, created = _killed_create(faults, name)
    [model] = faults.models(name)
    faults.cluster.sql(
        "UPDATE dag_run SET start_date = %s::timestamptz + interval '1 minute' "
        "WHERE dag_id=%s AND run_id=%s RETURNING start_date",
        model["created_at"],
        CREATE_MANUAL,
        kill.run_id,
    )
    after = kill.recover()
    models = faults.models(name)
    faults.figures(
        "MLS's clock a minute behind Airflow's (the window: a conflict)",
        runs=after.runs,
        duplicates=len(models) - 1,
        recover=after.seconds,
    )
    assert after.state == "success" and [m["id"] for m in models] == [created]


@full_run
def test_rivals_identical_create_while_the_task_is_down(faults: Faults) -> None:
    """The worker dies before the POST (its look-up hangs); a rival creates the same model with the same
    values. The window would take it as the task's own; the task state store knows nothing was sent."""
    from airflow_provider_mls.hooks.mls import MLSHook

    name = f"fault_rival_{uuid.uuid4().hex[:8]}"
    taken = faults.delay("GET", "/api/v1/models")
    run_id = faults.cluster.trigger_run(CREATE_MANUAL, {"name": name, "version": "v1", "description": "same"})
    kill = faults.kill_worker_mid_task(CREATE_MANUAL, run_id, "create", taken)
    rival = MLSHook().create_manual_model(name, "v1", description="same", model_lib="sklearn")
    after = kill.recover()
    models = faults.models(name)
    faults.figures(
        "a rival's identical create while the task was down (the window: adopted as its own)",
        runs=f"{after.runs} (failed on purpose: not its model)",
        duplicates=len(models) - 1,
        recover=after.seconds,
        note=f"rival's model untouched: {[m['id'] for m in models] == [rival['id']]}",
    )
    assert after.state == "failed" and after.ti["state"] == "failed"
    assert "exists already" in after.retry_log()
    assert [m["id"] for m in models] == [rival["id"]]


@full_run
def test_deferred_server_start_killed_by_a_person(faults: Faults) -> None:
    """A person marks a deferred StartAutoMLServerOperator failed: the triggerer calls the trigger's
    ``on_kill``, which stops the server the task started (cancel_on_kill, the default)."""
    cluster = faults.cluster
    with faults.mls.admin() as admin:
        model = admin.create_automl_model(f"fault_srv_{uuid.uuid4().hex[:8]}", trained=True)
    dag_id = "mls_fault_start_server"
    run_id = cluster.trigger_run(dag_id, {"model_id": model["id"]})
    faults.wait(lambda: cluster.ti(dag_id, run_id, "start")["state"] == "deferred", 120, "start deferred")

    def running_in_the_triggerer() -> bool:
        # Airflow calls on_kill only for a trigger the triggerer runs: one killed before the triggerer
        # took it is never started (docs/operations.md says so).
        rows = cluster.sql(
            "SELECT t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE ti.dag_id=%s AND ti.run_id=%s AND ti.task_id='start'",
            dag_id,
            run_id,
        )
        return bool(rows) and rows[0][0] is not None

    faults.wait(running_in_the_triggerer, 120, "the trigger taken by the triggerer")
    time.sleep(2)  # the triggerer starts what it took on its next loop (every second)
    assert faults.server_status(model["id"]) == "STARTING"
    killed_at = time.monotonic()
    resp = cluster.set_task_state(dag_id, run_id, "start", "failed")
    assert resp.status_code == 200, resp.text
    faults.wait(
        lambda: faults.server_status(model["id"]) in ("STOPPING", "STOPPED"),
        120,
        "the server stopped by the trigger's on_kill",
    )
    seconds = time.monotonic() - killed_at
    faults.figures(
        "a deferred StartAutoMLServerOperator marked failed by a person (cancel_on_kill)",
        runs="0/1 (failed by the person)",
        duplicates=0,
        recover=seconds,
        note="the server it started was stopped by the trigger's on_kill",
    )
    assert "which it had started (cancel_on_kill)" in cluster.triggerer_log()
