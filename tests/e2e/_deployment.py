"""A throw-away Airflow deployment of the production shape, for the end-to-end deployment test.

* PostgreSQL as the metadata database and Celery result backend (``Postgres``);
* Redis as the Celery broker (``Redis``);
* the CeleryExecutor with two Celery workers that share no temporary directory, no HOME and no
  AIRFLOW_HOME, so they behave like two machines (``CeleryDeployment``), next to the api-server,
  the dag-processor, the scheduler and the triggerer of ``tests/e2e/_cluster.py``. As root (CI), each
  worker runs in its own mount namespace with a private tmpfs at the same TMPDIR and HOME paths: a
  path one worker wrote names nothing on the other, as on two machines. Otherwise they get separate
  directories.

Every server listens on loopback, on a free port, with its data in a temporary directory, as a child
process of the test, and is stopped by it. PostgreSQL refuses to run as root: as root it runs as the
unprivileged system user ``MLS_E2E_PG_USER`` (default ``mls-e2e``), which ``scripts/e2e-services.sh``
creates along with installing the server binaries (Debian's ``postgresql`` and ``redis-server``).

A cluster policy (``airflow_local_settings.py`` on the processes' ``PYTHONPATH``) routes each task to
the queue of one worker by its depth in the DAG: a task and the tasks right downstream of it always run
on different workers, so anything handed from one task to the next through a local file breaks.
Airflow 3 only: the Airflow 2 executors need the DB on every worker, which this shape does not model.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests

from tests.e2e._cluster import AIRFLOW_BIN, AirflowCluster, ClusterError, _tail, free_port

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

PG_USER = os.environ.get("MLS_E2E_PG_USER", "mls-e2e")
WORKERS = {"worker-1": "w1", "worker-2": "w2"}  # Celery worker -> the queue it serves
SETUP_HINT = "run scripts/e2e-services.sh (as root it installs them with apt-get)"

# Every task goes to queue w1 or w2 by the parity of its depth (longest path from a root task).
LOCAL_SETTINGS = '''\
"""Cluster policy of the deployment test: alternate the two workers' queues along every path."""

QUEUES = ("w1", "w2")


def dag_policy(dag):
    depth = {}

    def depth_of(task):
        if task.task_id not in depth:
            depth[task.task_id] = 1 + max((depth_of(up) for up in task.upstream_list), default=-1)
        return depth[task.task_id]

    for task in dag.tasks:
        task.queue = QUEUES[depth_of(task) % 2]
'''


# A worker's own "disk": a private tmpfs over TMPDIR and HOME in its own mount namespace. Both workers use the
# same paths, as two machines do, and neither sees what the other wrote there.
PRIVATE_MOUNTS = (
    'mount -t tmpfs -o mode=1777,size=1g mls-e2e-tmp "$TMPDIR" && '
    'mount -t tmpfs -o mode=0755,size=64m mls-e2e-home "$HOME" && cd "$HOME" && exec "$@"'
)


def private_mounts_supported() -> bool:
    """Can we give each worker its own mount namespace (root with ``unshare``, as on CI)?"""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


class ServiceUnavailable(RuntimeError):
    """A server binary the deployment test needs is not installed."""


def pg_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` with initdb and postgres (or ``MLS_E2E_PG_BIN``)."""
    candidates = [os.environ.get("MLS_E2E_PG_BIN", "")]
    candidates += sorted(
        (str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if candidate and all((Path(candidate) / exe).is_file() for exe in ("initdb", "postgres")):
            return Path(candidate)
    found = shutil.which("initdb")
    if found and shutil.which("postgres", path=str(Path(found).resolve().parent)):
        return Path(found).resolve().parent
    return None


def missing_services() -> list[str]:
    """What is missing to run the deployment test, as readable reasons (empty: nothing)."""
    missing = []
    if pg_bin_dir() is None:
        missing.append("PostgreSQL server binaries (initdb, postgres)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            missing.append(f"the system user {PG_USER!r} that runs PostgreSQL (it refuses root)")
    # Python packages of the lock file (requirements/airflow-3.3.in).
    try:
        import asyncpg  # noqa: F401  (Airflow 3 derives postgresql+asyncpg from the sync URL)
    except ImportError:
        missing.append("asyncpg, Airflow 3's async PostgreSQL driver (requirements/airflow-3.3.in)")
    try:
        from airflow.providers.celery.executors import celery_executor_utils  # noqa: F401
    except ImportError as err:
        missing.append(f"a celery the Celery provider can import (celery 5.7 cannot be: {err})")
    return missing


class _Server:
    """A server process of ours: its data under ``root``, its output in ``root/<name>.log``."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def log(self, limit: int = 6000) -> str:
        return f"===== {self.name} log\n{_tail(self.log_path, limit)}"

    def _spawn(self, args: Sequence[str], **kwargs: Any) -> None:
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )

    def _wait_ready(self, probe: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ClusterError(f"{self.name} exited {self.proc.returncode}\n{self.log()}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.name} not ready after {timeout:.0f}s\n{self.log()}")
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> _Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """Start the server again after ``stop()``, on the same port (Redis: empty, it keeps nothing)."""
        self.start()


class Postgres(_Server):
    """``initdb`` + ``postgres`` in the foreground (as ``PG_USER`` when we are root), trust auth on loopback."""

    name = "postgres"

    def __init__(self, root: Path, database: str = "airflow", user: str = "airflow") -> None:
        super().__init__(root)
        self.database = database
        self.user = user
        self.data_dir = root / "pgdata"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that drop root for PostgreSQL's processes."""
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(PG_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self) -> None:
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise ServiceUnavailable(f"PostgreSQL server binaries not found: {SETUP_HINT}")
        self.root.mkdir(parents=True, exist_ok=True)
        owner = self._as_owner()
        if owner:
            # The dedicated user must reach its files: nothing above them may be root-only (0700).
            for path in (self.root, self.data_dir):
                path.mkdir(exist_ok=True)
                os.chown(path, owner["user"], owner["group"])
            self.data_dir.chmod(0o700)
            self.log_path.touch()
            os.chown(self.log_path, owner["user"], owner["group"])
        env = self._env()
        init = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=120,
            **owner,
        )
        if init.returncode != 0:
            raise ClusterError(
                f"initdb exited {init.returncode}:\n{init.stdout[-3000:]}\n{init.stderr[-3000:]}"
            )
        self._serve(bin_dir, env, owner)

    def restart(self) -> None:
        """Start PostgreSQL again after ``stop()`` on its data directory and port: a restarted database."""
        bin_dir = pg_bin_dir()
        assert bin_dir is not None
        self._serve(bin_dir, self._env(), self._as_owner())

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "LANG": "C", "LC_ALL": "C", "HOME": str(self.root)}

    def _serve(self, bin_dir: Path, env: dict[str, str], owner: dict[str, Any]) -> None:
        """Run ``postgres`` on the initialised data directory until it accepts connections (and has the database)."""
        self._spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "max_connections=300",
                # A throw-away database: durability buys nothing here.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            env=env,
            cwd=self.root,
            **owner,
        )
        self._wait_ready(self._create_database, 60)

    def _create_database(self) -> bool:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", connect_timeout=3
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()
        return True

    def stop(self, sig: int = signal.SIGINT, grace: float = 20.0) -> None:  # SIGINT: fast shutdown
        super().stop(sig, grace)


class Redis(_Server):
    """``redis-server`` in the foreground, no persistence."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceUnavailable(f"redis-server not found: {SETUP_HINT}")
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.root,
        )
        self._wait_ready(self._ping, 30)

    def _ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()


class CeleryDeployment(AirflowCluster):
    """api-server, dag-processor, scheduler and triggerer (the "control plane", one AIRFLOW_HOME) and two
    Celery workers, each with its own HOME, TMPDIR and AIRFLOW_HOME (so its own task logs)."""

    def __init__(
        self,
        root: Path,
        dags_folder: Path,
        *,
        postgres: Postgres,
        redis: Redis,
        extra_env: Mapping[str, str] | None = None,
        worker_concurrency: int = 2,
        startup_timeout: float = 240.0,
    ) -> None:
        self.root = Path(root)
        self.postgres = postgres
        self.redis = redis
        self.worker_concurrency = worker_concurrency
        self.settings_dir = self.root / "cluster-policy"
        # As root, each worker gets its own tmpfs at the same TMPDIR and HOME paths; else separate directories.
        self.private_mounts = private_mounts_supported()
        super().__init__(
            self.root / "control-plane", dags_folder, extra_env=extra_env, startup_timeout=startup_timeout
        )

    def machine_dir(self, name: str) -> Path:
        """What stands for the machine of a process: worker-1, worker-2, or the control plane."""
        return self.root / name if name in WORKERS else self.home

    def _build_env(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        env = super()._build_env({})
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres.celery_result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(self.settings_dir), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        env.update(extra_env)
        return env

    def components(self) -> dict[str, list[str]]:
        parts = super().components()
        for worker, queue in WORKERS.items():
            parts[worker] = [
                "celery",
                "worker",
                "--queues",
                queue,
                "--concurrency",
                str(self.worker_concurrency),
                "--celery-hostname",
                f"{worker}@%h",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        return parts

    def process_env(self, name: str) -> dict[str, str]:
        """The environment of one process: its machine's HOME, TMPDIR and AIRFLOW_HOME."""
        machine = self.machine_dir(name)
        scratch = self.root / "worker-scratch" if name in WORKERS and self.private_mounts else machine
        env = dict(self.env)
        env.update(
            {
                "AIRFLOW_HOME": str(machine if name not in WORKERS else machine / "airflow"),
                "HOME": str(scratch / "home"),
                "TMPDIR": str(scratch / "tmp"),
            }
        )
        return env

    def command(self, name: str, args: Sequence[str]) -> list[str]:
        """How a process is started: a worker with private mounts in its own mount namespace."""
        if name in WORKERS and self.private_mounts:
            return [
                "unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", PRIVATE_MOUNTS, "sh", AIRFLOW_BIN, *args,
            ]  # fmt: skip
        return [AIRFLOW_BIN, *args]

    def private_mount_points(self, name: str) -> set[str]:
        """The tmpfs mount points a running process sees that this test process does not."""

        def tmpfs(pid: int | str) -> set[str]:
            try:
                lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
            except OSError:
                return set()
            return {line.split()[4] for line in lines if " - tmpfs " in line}

        return tmpfs(self.procs[name].pid) - tmpfs("self")

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings_dir.mkdir(parents=True, exist_ok=True)
        (self.settings_dir / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        for name in self.components():
            env = self.process_env(name)
            for var in ("AIRFLOW_HOME", "HOME", "TMPDIR"):
                Path(env[var]).mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=300)
        for name, args in self.components().items():
            log = open(self.log_dir / f"{name}.log", "wb")  # closed in stop()
            self._log_files.append(log)
            env = self.process_env(name)
            self.procs[name] = subprocess.Popen(
                self.command(name, args),
                env=env,
                cwd=self.root if name in WORKERS and self.private_mounts else env["HOME"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _healthy(self) -> bool:
        if not super()._healthy():
            return False
        return all(
            f"{worker}@" in self.process_log(worker) and " ready." in self.process_log(worker)
            for worker in WORKERS
        )

    # ------------------------------------------------------------------ REST API (cheaper than the CLI)
    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v2/<path>`` of the api-server (every user is an admin in this deployment)."""
        resp = requests.get(
            f"http://127.0.0.1:{self.api_port}/api/v2/{path.lstrip('/')}",
            params=params,
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=30,
        )
        if resp.status_code != 200:
            raise ClusterError(f"GET /api/v2/{path} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    _api_token: str | None = None

    def _token(self) -> str:
        if self._api_token is None:
            resp = requests.get(f"http://127.0.0.1:{self.api_port}/auth/token", timeout=30)
            resp.raise_for_status()
            self._api_token = str(resp.json()["access_token"])
        return self._api_token

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        try:
            state = self.api(f"dags/{dag_id}/dagRuns/{run_id}")["state"]
        except ClusterError as err:
            if "answered 404" in str(err):
                return None
            raise
        return str(state) if state else None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.api(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]
        return rows

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti.get("state") for ti in self.task_instances(dag_id, run_id)}

    # ------------------------------------------------------------------ logs, per machine
    def task_log_files(self) -> list[Path]:
        files: list[Path] = []
        for machine in (self.home, *(self.root / w / "airflow" for w in WORKERS)):
            logs = machine / "logs"
            if logs.exists():
                files += sorted(p for p in logs.rglob("*") if p.is_file() and "dag_id=" in str(p))
        return files

    def task_logs_on(self, machine: str) -> list[Path]:
        """The task log files written on one machine (``worker-1``, ``worker-2`` or ``control-plane``)."""
        base = (self.root / machine / "airflow" if machine in WORKERS else self.home) / "logs"
        return (
            sorted(p for p in base.rglob("*") if p.is_file() and "dag_id=" in str(p)) if base.exists() else []
        )

    def logs(self, limit: int = 6000, names: Sequence[str] | None = None) -> str:
        sections = [f"===== CeleryExecutor deployment under {self.root}"]
        for name in names or self.components():
            sections.append(f"===== {name} log\n{_tail(self.log_dir / f'{name}.log', limit)}")
        sections += [self.postgres.log(limit // 2), self.redis.log(limit // 2)]
        for path in self.task_log_files():
            sections.append(f"===== {path.relative_to(self.root)}\n{_tail(path, limit // 2)}")
        return "\n".join(sections)


def temp_root(prefix: str) -> Path:
    """A fresh directory under the system temp dir that the PostgreSQL user can enter (pytest's
    ``tmp_path`` is under a root-only directory)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root
