"""Test-wide setup: an isolated AIRFLOW_HOME before Airflow is imported, and a shared local MLS server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="mls-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
# Don't let a developer's own MLS settings leak into the tests.
for _name in ("AIRFLOW_CONN_MLS_DEFAULT", "MLS_ENV", "MLS_RUNTIME_ENV", "MLS_USERNAME", "MLS_PASSWORD"):
    os.environ.pop(_name, None)

pytest_plugins = ["pytester", "airflow_provider_mls.testing.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mls_server(mls_local_server: object) -> object:
    """One real local MLS server (a subprocess over HTTP, with its AWS endpoint) for the whole
    session: the pytest plugin's, with the timings of ``[tool.pytest.ini_options]``."""
    return mls_local_server


@pytest.fixture
def mls_conn(mls_server: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """Point the ``mls_default`` connection at the shared local server for one test."""
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())  # type: ignore[attr-defined]
    return mls_server
