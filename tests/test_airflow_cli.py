"""The Airflow CLI sees the provider, and `airflow connections test` works against the local server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "airflow-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONWARNINGS": "ignore",
    }
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.e2e
def test_providers_list_shows_the_package(tmp_path: Path) -> None:
    proc = _run(["providers", "list", "--output", "plain"], _env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "airflow-provider-mls" in proc.stdout


@pytest.mark.e2e
def test_connections_test_succeeds_against_local_server(tmp_path: Path, mls_server: object) -> None:
    env = _env(
        tmp_path,
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW_CONN_MLS_DEFAULT=mls_server.conn_json(),  # type: ignore[attr-defined]
    )
    migrate = _run(["db", "migrate"], env)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    proc = _run(["connections", "test", "mls_default"], env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Connection success!" in out, out[-3000:]


@pytest.mark.e2e
def test_connections_test_fails_with_a_wrong_password(tmp_path: Path, mls_server: object) -> None:
    import json

    conn = json.loads(mls_server.conn_json())  # type: ignore[attr-defined]
    conn["password"] = "not-the-password"
    env = _env(tmp_path, AIRFLOW__CORE__TEST_CONNECTION="Enabled", AIRFLOW_CONN_MLS_DEFAULT=json.dumps(conn))
    assert _run(["db", "migrate"], env).returncode == 0
    proc = _run(["connections", "test", "mls_default"], env)
    out = proc.stdout + proc.stderr
    assert "Connection failed!" in out, out[-3000:]
    assert "401" in out, out[-3000:]  # the service's own reason reaches the user
    assert "Connection success!" not in out
    # (Airflow 3 exits 1 here; Airflow 2.11's CLI exits 0 on a failed test, so the code isn't checked.)
