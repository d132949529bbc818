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


# pytest-xdist (`make test` runs `-n 2 --dist loadgroup`). Session fixtures are per worker (each has its own
# local MLS server, AIRFLOW_HOME and free ports), so workers share nothing. The tests of a module stay on one
# worker, in their order, unless the module is listed here: its tests depend neither on each other nor on
# their order, and are long enough to be worth spreading.
XDIST_SPLIT_MODULES = frozenset({"tests/test_example_dags.py", "tests/testing/test_pytest_plugin.py"})
# The tests that start Airflow clusters (scheduler, triggerer, workers...) run one after the other on one
# worker: two at once on two cores would starve each other's schedulers.
XDIST_CLUSTERS = ("tests/e2e/", "airflow-clusters")
# Run first (the longest; a long test started last would leave the other worker idle at the end).
XDIST_FIRST = ("tests/e2e/", "tests/test_example_dags.py", "tests/conformance/")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.nodeid.split("::", 1)[0]
            if module.startswith(XDIST_CLUSTERS[0]):
                group = XDIST_CLUSTERS[1]
            else:
                group = item.nodeid if module in XDIST_SPLIT_MODULES else module
            item.add_marker(pytest.mark.xdist_group(group))

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return next(
            (i for i, prefix in enumerate(XDIST_FIRST) if module.startswith(prefix)), len(XDIST_FIRST)
        )

    items.sort(key=rank)  # stable: the order within a module is kept
