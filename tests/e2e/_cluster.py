"""A real, throw-away Airflow deployment for end-to-end tests: separate scheduler and triggerer processes.

Airflow 3: ``api-server`` (task execution API), ``dag-processor``, ``scheduler`` and ``triggerer`` with the
LocalExecutor (Airflow 3 allows it on SQLite; ``airflow standalone`` does the same).
Airflow 2: ``scheduler`` (which also parses DAG files) and ``triggerer`` with the SequentialExecutor (Airflow 2
refuses any other executor on SQLite).

Everything listens on loopback, on free ports, with ``AIRFLOW_HOME`` and the SQLite DB under a temp directory.
Each process starts in its own session (so its process group can be killed); the process logs go to
``AIRFLOW_HOME/proc-logs/<name>.log`` and :meth:`AirflowCluster.logs` gathers them (and the task logs) for
assertion messages. DAG and task state is read and changed through the ``airflow`` CLI next to
``sys.executable``; health is the api-server's ``/api/v2/monitor/health`` (Airflow 3) or ``airflow jobs check``.

    with AirflowCluster(tmp_path / "home", dags_folder, extra_env={...}) as cluster:
        cluster.unpause_when_parsed("my_dag")
        cluster.trigger("my_dag", run_id="r1", conf={...})
        cluster.wait_for_run_state("my_dag", "r1", "success")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

AIRFLOW_VERSION = version("apache-airflow")
AIRFLOW_V3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")

# Task states after which a task instance will not reach another state on its own.
FINISHED_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
FINISHED_RUN_STATES = frozenset({"success", "failed"})


class ClusterError(AssertionError):
    """The cluster did not do what the test waited for; the message carries the process logs."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, limit: int) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"<unreadable: {err}>"
    text = data[-limit:].decode("utf-8", "replace")
    return text if len(data) <= limit else "...\n" + text


def _json_payload(stdout: str) -> Any:
    """The JSON document of a ``-o json`` CLI call (skipping any log lines printed before it)."""
    for start, char in enumerate(stdout):
        if char in "[{":
            with contextlib.suppress(ValueError):
                return json.loads(stdout[start:])
    raise ValueError(f"no JSON in CLI output: {stdout[-2000:]!r}")


class AirflowCluster:
    """Scheduler + triggerer (+ api-server and dag-processor on Airflow 3) as real subprocesses."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.home = Path(home)
        self.dags_folder = Path(dags_folder)
        self.startup_timeout = startup_timeout
        self.log_dir = self.home / "proc-logs"
        self.api_port = free_port() if AIRFLOW_V3 else None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self.env = self._build_env(extra_env or {})

    # ------------------------------------------------------------------ configuration
    def _build_env(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        # Nothing Airflow-related leaks in from the test process (conftest sets unit-test mode, for one).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if AIRFLOW_V3 else "SequentialExecutor",
                # Never bind the fixed default ports (8793/8794/8974): another run may hold them.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                # Airflow 2 executors run `airflow tasks run ...` from PATH: make it this interpreter's.
                "PATH": os.pathsep.join([str(Path(AIRFLOW_BIN).parent), os.environ.get("PATH", "")]),
                "PYTHONUNBUFFERED": "1",
                "PYTHONWARNINGS": "ignore",
            }
        )
        if AIRFLOW_V3:
            env.update(
                {
                    "AIRFLOW__API__HOST": "127.0.0.1",
                    "AIRFLOW__API__PORT": str(self.api_port),
                    "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                    "AIRFLOW__API__WORKERS": "1",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                    # Every process must sign and check task JWTs with the same secret.
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                    "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                    # The task supervisor waits up to this long (default 5s) in select(), so it notices its
                    # task process exited (e.g. after defer()) only that late: 1s keeps the executor prompt.
                    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                }
            )
        else:
            env.update(
                {
                    "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "False",
                    "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "2",
                    "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
                    "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
                    "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_hex(16),
                    # Name the logger in every line (Airflow 3 does): a trigger's lines then show its class.
                    "AIRFLOW__LOGGING__LOG_FORMAT": (
                        "[%(asctime)s] {%(filename)s:%(lineno)d} %(name)s %(levelname)s - %(message)s"
                    ),
                }
            )
        env.update(extra_env)
        return env

    def components(self) -> dict[str, list[str]]:
        """Process name -> ``airflow`` arguments, for the installed Airflow version."""
        if AIRFLOW_V3:
            return {
                "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
                "dag-processor": ["dag-processor"],
                "scheduler": ["scheduler", "--skip-serve-logs"],
                "triggerer": ["triggerer", "--skip-serve-logs"],
            }
        return {
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """``db migrate``, then launch every component (each in its own process group)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=300)
        for name, args in self.components().items():
            log = open(self.log_dir / f"{name}.log", "wb")  # closed in stop()
            self._log_files.append(log)
            self.procs[name] = subprocess.Popen(
                [AIRFLOW_BIN, *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _descendants(self) -> dict[int, psutil.Process]:
        """Every process we started and its descendants (task processes may leave the process group)."""
        found: dict[int, psutil.Process] = {}
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                found.update((p.pid, p) for p in [root, *root.children(recursive=True)])
        return found

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds (descendants too)."""
        tracked = self._descendants()
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        tracked.update(self._descendants())
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group may outlive its leader
        for child in tracked.values():
            with contextlib.suppress(psutil.Error):
                if child.is_running():  # also guards against a reused pid
                    child.kill()
        psutil.wait_procs(list(tracked.values()), timeout=5)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for log in self._log_files:
            log.close()
        self._log_files.clear()

    def check_alive(self) -> None:
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        if dead:
            raise ClusterError(f"Airflow process(es) exited: {dead}\n{self.logs()}")

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Until every component runs and (its job) heartbeats."""
        self.wait_until(self._healthy, timeout or self.startup_timeout, "Airflow components healthy", 1.0)

    def _healthy(self) -> bool:
        self.check_alive()
        if AIRFLOW_V3:
            try:
                base = f"http://127.0.0.1:{self.api_port}"
                if requests.get(f"{base}/execution/health", timeout=5).status_code != 200:
                    return False
                health = requests.get(f"{base}/api/v2/monitor/health", timeout=5).json()
            except (requests.RequestException, ValueError):
                return False
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            return all((health.get(part) or {}).get("status") == "healthy" for part in parts)
        checks = [
            subprocess.Popen(
                [AIRFLOW_BIN, "jobs", "check", "--job-type", job, "--limit", "1"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for job in ("SchedulerJob", "TriggererJob")
        ]
        try:
            return all(check.wait(120) == 0 for check in checks)
        except subprocess.TimeoutExpired:
            return False
        finally:
            for check in checks:
                if check.poll() is None:
                    check.kill()
                    check.wait()

    # ------------------------------------------------------------------ CLI
    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this cluster's DB; a failure raises with the output and logs."""
        proc = subprocess.run(
            [AIRFLOW_BIN, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"`airflow {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}\n{self.logs()}"
            )
        return proc

    def unpause_when_parsed(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the DAG is in the DB (parsed by the dag-processor/scheduler), then unpause it."""

        def unpaused() -> bool:
            self.check_alive()
            out = self.cli("dags", "unpause", dag_id, "-o", "json").stdout
            return dag_id in out  # "No paused DAGs were found" until the DAG is in the DB

        try:
            self.wait_until(unpaused, timeout, f"DAG {dag_id} parsed and unpaused", 1.0)
        except ClusterError as err:
            errors = self.cli("dags", "list-import-errors", "-o", "json", check=False).stdout
            raise ClusterError(f"{err}\nimport errors: {errors}") from None

    def trigger(self, dag_id: str, *, run_id: str, conf: Mapping[str, Any] | None = None) -> None:
        self.cli("dags", "trigger", dag_id, "-r", run_id, "-c", json.dumps(conf or {}))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """task_id -> state (None before the scheduler sets one) of a DAG run."""
        out = self.cli("tasks", "states-for-dag-run", dag_id, run_id, "-o", "json").stdout
        return {row["task_id"]: (row.get("state") or None) for row in _json_payload(out)}

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        dag_arg = [dag_id] if AIRFLOW_V3 else ["-d", dag_id]
        out = self.cli("dags", "list-runs", *dag_arg, "-o", "json").stdout
        states = [row["state"] for row in _json_payload(out) if row.get("run_id") == run_id]
        return states[0] if states else None

    # ------------------------------------------------------------------ waiting
    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str | Callable[[], str],
        interval: float = 1.0,
    ) -> None:
        """Poll ``condition`` until true; past ``timeout`` seconds raise ``ClusterError`` with the logs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                described = what() if callable(what) else what
                raise ClusterError(f"timed out after {timeout:.0f}s waiting for: {described}\n{self.logs()}")
            time.sleep(interval)

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120
    ) -> None:
        """Until ``task_id`` is in ``state``; fails at once if it (or the run) finished otherwise."""
        seen: list[str | None] = []

        def reached() -> bool:
            self.check_alive()
            current = self.task_states(dag_id, run_id).get(task_id)
            if not seen or seen[-1] != current:
                seen.append(current)
            if current != state and current in FINISHED_TASK_STATES:
                raise ClusterError(
                    f"{dag_id}/{run_id}/{task_id} ended {current!r} while waiting for {state!r} "
                    f"(states seen: {seen})\n{self.logs()}"
                )
            return current == state

        self.wait_until(
            reached, timeout, lambda: f"{dag_id}/{run_id}/{task_id} in state {state!r} (states seen: {seen})"
        )

    def wait_for_run_state(self, dag_id: str, run_id: str, state: str, timeout: float = 180) -> None:
        """Until the DAG run is in ``state``; fails at once if it finished otherwise."""

        def reached() -> bool:
            self.check_alive()
            current = self.run_state(dag_id, run_id)
            if current != state and current in FINISHED_RUN_STATES:
                tasks = self.task_states(dag_id, run_id)
                raise ClusterError(
                    f"DAG run {dag_id}/{run_id} ended {current!r}, not {state!r}; tasks: {tasks}\n{self.logs()}"
                )
            return current == state

        self.wait_until(reached, timeout, f"DAG run {dag_id}/{run_id} in state {state!r}")

    def wait_for_log(self, name: str, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Until the log of process ``name`` has a line matching the regex ``pattern``; returns the match."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def logged() -> bool:
            self.check_alive()
            match = regex.search(self.process_log(name))
            if match:
                found.append(match)
            return match is not None

        self.wait_until(logged, timeout, f"{name} log matching {pattern!r}", 0.5)
        return found[0]

    # ------------------------------------------------------------------ logs
    def process_log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def task_log_files(self) -> list[Path]:
        """Task log files, and the ``<task log>.trigger.<job id>.log`` files the triggerer writes."""
        logs = self.home / "logs"
        if not logs.exists():
            return []
        return sorted(p for p in logs.rglob("*") if p.is_file() and "dag_id=" in str(p))

    def triggerer_log(self) -> str:
        """What the triggerer wrote: its process log plus the per-trigger log files."""
        parts = [self.process_log("triggerer")]
        parts += [p.read_text("utf-8", "replace") for p in self.task_log_files() if ".trigger." in p.name]
        return "\n".join(parts)

    def logs(self, limit: int = 10000, names: Iterable[str] | None = None) -> str:
        """Tails of every process log and task log file, for assertion messages."""
        sections = [f"===== Airflow {AIRFLOW_VERSION}, AIRFLOW_HOME={self.home}"]
        for name in names or self.components():
            sections.append(f"===== {name} log\n{_tail(self.log_dir / f'{name}.log', limit)}")
        for path in self.task_log_files():
            sections.append(f"===== {path.relative_to(self.home)}\n{_tail(path, limit)}")
        return "\n".join(sections)
