"""Start the local MLS server as a real subprocess (for test fixtures and scripts). Standard library only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

READY_PREFIX = "MLS local server listening on "
AWS_PREFIX = "MLS local AWS endpoint "
LOG_FILE = "server.log"


class LocalMLSServerError(RuntimeError):
    """The server subprocess did not come up."""


class LocalMLSServer:
    """``with LocalMLSServer(tmp_path) as mls: requests.get(mls.url + "/api/v1/models", auth=mls.auth)``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "mls",
        password: str = "mls",
        training_seconds: float = 5.0,
        server_start_seconds: float = 3.0,
        page_size: int = 20,
        startup_timeout: float = 30.0,
        aws_endpoint: str | None = None,
        aws_region: str = "us-east-1",
        lean_lists: bool = False,
        record: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.requested_port = port
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.training_seconds = training_seconds
        self.server_start_seconds = server_start_seconds
        self.page_size = page_size
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.aws_endpoint = aws_endpoint  # None: the server's embedded moto endpoint
        self.aws_region = aws_region
        self.lean_lists = lean_lists
        self.record = Path(record) if record is not None else None
        self.url = ""
        self.aws_endpoint_url = ""  # the endpoint the server uses, once started
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._returncode: int | None = None

    # ------------------------------------------------------------------ info
    @property
    def log_path(self) -> Path:
        """The child's stderr (appended across restarts)."""
        return self.data_dir / LOG_FILE

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def conn_uri(self) -> str:
        """Airflow connection URI, e.g. ``mls://mls:mls@127.0.0.1:8765?env=local``."""
        return f"mls://{quote(self.username, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}?env=local"

    def conn_json(self) -> str:
        """Airflow JSON connection (``AIRFLOW_CONN_<ID>`` value)."""
        return json.dumps(
            {
                "conn_type": "mls",
                "host": self.url,
                "login": self.username,
                "password": self.password,
                "extra": {"env": "local", "runtime_env": "LOCAL"},
            }
        )

    def aws_env(self) -> dict[str, str]:
        """Environment variables pointing boto3 (and the provider's AWS hooks) at the server's AWS
        endpoint, with the test credentials of the embedded one (not for an external endpoint of yours)."""
        if not self.aws_endpoint_url:
            raise LocalMLSServerError("the server is not started")
        env = {
            "AWS_DEFAULT_REGION": self.aws_region,
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if self.aws_endpoint is None:
            env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        return env

    def aws_conn_json(self) -> str:
        """An Airflow ``aws`` connection (``AIRFLOW_CONN_AWS_DEFAULT``) for the amazon provider's hooks."""
        if not self.aws_endpoint_url:
            raise LocalMLSServerError("the server is not started")
        extra = {"region_name": self.aws_region, "endpoint_url": self.aws_endpoint_url}
        conn: dict[str, Any] = {"conn_type": "aws", "extra": extra}
        if self.aws_endpoint is None:
            conn.update({"login": "testing", "password": "testing"})
        return json.dumps(conn)

    def admin(self) -> LocalMLSAdmin:
        """A ``LocalMLSAdmin`` (``airflow_provider_mls.testing.local_admin``) for this started server."""
        from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

        return LocalMLSAdmin.from_server(self)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "airflow_provider_mls.local",
            "--host",
            self.host,
            "--port",
            str(self.requested_port),
            "--data-dir",
            str(self.data_dir),
            "--username",
            self.username,
            "--password",
            self.password,
            "--training-seconds",
            repr(float(self.training_seconds)),
            "--server-start-seconds",
            repr(float(self.server_start_seconds)),
            "--page-size",
            str(self.page_size),
            "--aws-region",
            self.aws_region,
            *(("--aws-endpoint", self.aws_endpoint) if self.aws_endpoint else ()),
            *(("--lean-lists",) if self.lean_lists else ()),
            *(("--record", str(self.record)) if self.record is not None else ()),
            *self.extra_args,
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalMLSServer:
        if self.running:
            raise LocalMLSServerError(f"already running at {self.url}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )
        self._proc = proc
        ready = threading.Event()
        found: list[str] = []
        aws_found: list[str] = []

        def drain() -> None:  # reads stdout until EOF so the pipe never fills up
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(AWS_PREFIX) and " at " in line:
                    aws_found.append(line.rsplit(" at ", 1)[1].strip())
                if not found and line.startswith(READY_PREFIX):
                    found.append(line[len(READY_PREFIX) :].strip())
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=drain, name="mls-local-stdout", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
        if not found:
            ready.wait(0.5)
        if not found:
            exited = proc.poll()
            self._terminate(kill=True)
            why = (
                f"exited with code {exited}"
                if exited is not None
                else f"not ready after {self.startup_timeout}s"
            )
            raise LocalMLSServerError(f"local MLS server {why}; stderr:\n{self._read_log(log_offset)}")
        self.url = found[0]
        self.aws_endpoint_url = aws_found[0] if aws_found else ""
        hostport = self.url.split("://", 1)[1]
        host, _, port = hostport.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        return self

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        self._terminate(kill=False, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (a crash)."""
        self._terminate(kill=True)

    def restart(self) -> LocalMLSServer:
        """Stop (if running) and start again on the same data dir (a new port if ``port=0``)."""
        self.stop()
        return self.start()

    def _terminate(self, *, kill: bool, timeout: float = 10) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait()
        if proc is not None:
            self._returncode = proc.returncode
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
        self._proc = None
        self._reader = None
        self._log = None

    def _read_log(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read()[-20000:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"

    @property
    def returncode(self) -> int | None:
        """Exit code of the last (stopped) subprocess; None while running."""
        return self._proc.returncode if self._proc is not None else self._returncode

    def __enter__(self) -> LocalMLSServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalMLSServer(url={self.url!r}, data_dir={str(self.data_dir)!r}, running={self.running})"

    def __del__(self) -> None:  # best effort: never leave an orphan server behind
        proc: Any = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
