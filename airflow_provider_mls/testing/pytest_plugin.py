"""A pytest plugin for DAG tests against the local MLS server (with its embedded AWS endpoint).

Enable it in your ``conftest.py``::

    pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]

Fixtures:

* ``mls_local_server`` (session): one ``LocalMLSServer`` subprocess over real HTTP, with the
  embedded S3/DynamoDB/SageMaker endpoint (moto), on free loopback ports, data in a temporary
  directory. Started on first use, stopped at the end of the session.
* ``mls_local`` (function): the same server, with this test's environment pointing at it:
  ``AIRFLOW_CONN_MLS_DEFAULT`` (the ``mls_default`` connection), ``AIRFLOW_CONN_AWS_DEFAULT``
  (``aws_default``, for the amazon provider's hooks), ``AWS_ENDPOINT_URL``, test credentials and
  region, with any AWS profile, session token or config file of yours hidden. Undone after the test.
* ``mls_admin`` (function): a ``LocalMLSAdmin`` for it (tables, artifacts, training outcomes,
  server states and fault injection through ``/local/...``).

Options (``pytest.ini`` / ``pyproject.toml`` ``[tool.pytest.ini_options]``):
``mls_local_training_seconds`` (default 1), ``mls_local_server_start_seconds`` (default 1),
``mls_local_conn_id`` (default ``mls_default``), ``mls_local_aws_conn_id`` (default ``aws_default``)
and ``mls_local_lean_lists`` (default false: list items carry only ids and names, see ``mls-local --lean-lists``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

# Whatever could point boto3 at a real account, another endpoint or a profile of the developer's.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
PASSWORD = "mls-local-pytest"  # long enough for Airflow's secret masker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("mls_local_training_seconds", "AutoML training time of the local MLS server", default="1")
    parser.addini(
        "mls_local_server_start_seconds", "AutoML server start/stop time of the local MLS server", default="1"
    )
    parser.addini(
        "mls_local_lean_lists",
        "list items of the local MLS server carry only ids and names (mls-local --lean-lists)",
        type="bool",
        default=False,
    )
    parser.addini(
        "mls_local_conn_id", "the MLS connection id the mls_local fixture sets", default="mls_default"
    )
    parser.addini(
        "mls_local_aws_conn_id", "the AWS connection id the mls_local fixture sets", default="aws_default"
    )


def _seconds(config: pytest.Config, name: str) -> float:
    value = config.getini(name)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise pytest.UsageError(f"{name} must be >= 0, got {value!r}")
    return seconds


def _env_name(conn_id: object) -> str:
    return f"AIRFLOW_CONN_{str(conn_id).upper()}"


@pytest.fixture(scope="session")
def mls_local_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMLSServer]:
    """The local MLS server (a subprocess: real HTTP, SQLite, embedded AWS endpoint) for the session."""
    from airflow_provider_mls.local.process import LocalMLSServer

    server = LocalMLSServer(
        tmp_path_factory.mktemp("mls-local"),
        port=0,
        password=PASSWORD,
        training_seconds=_seconds(request.config, "mls_local_training_seconds"),
        server_start_seconds=_seconds(request.config, "mls_local_server_start_seconds"),
        lean_lists=bool(request.config.getini("mls_local_lean_lists")),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mls_local(
    mls_local_server: LocalMLSServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> LocalMLSServer:
    """Point this test's ``mls_default`` and ``aws_default`` connections (and boto3) at the local
    server; ``monkeypatch`` undoes it after the test."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in mls_local_server.aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(_env_name(request.config.getini("mls_local_conn_id")), mls_local_server.conn_json())
    monkeypatch.setenv(
        _env_name(request.config.getini("mls_local_aws_conn_id")), mls_local_server.aws_conn_json()
    )
    return mls_local_server


@pytest.fixture
def mls_admin(mls_local: LocalMLSServer) -> Iterator[LocalMLSAdmin]:
    """A ``LocalMLSAdmin`` for the local server (closed after the test; the server keeps running)."""
    with mls_local.admin() as admin:
        yield admin
