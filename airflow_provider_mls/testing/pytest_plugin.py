"""A pytest plugin for DAG tests: an Airflow of its own per test, the local MLS server (with its
embedded AWS endpoint), and helpers to run a DAG and read what it did. Airflow 3.x and 2.11.

Enable it in your ``conftest.py`` (or with ``-p airflow_provider_mls.testing.pytest_plugin``)::

    pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]

What every test gets (unless ``mls_airflow = false``): a temporary ``AIRFLOW_HOME`` for the session,
set before Airflow is imported, whose metadata DB (SQLite) is migrated once per session and copied
fresh for each test (milliseconds); no example DAGs; ``[core] dags_folder`` = the ini option
``mls_dags_folder``; the ``mls_default`` and ``aws_default`` connections on the local server, which
is emptied before each test. ``dag.test()`` works in a test with no other setup. Do not import
Airflow at module level in ``conftest.py``: Airflow reads its configuration when it is imported (the
plugin stops with a clear error if it was imported with another configuration).

Fixtures:

* ``mls_local_server`` (session): one ``LocalMLSServer`` subprocess over real HTTP, with the
  embedded S3/DynamoDB/SageMaker endpoint (moto), on free loopback ports, data in a temporary
  directory. Started on first use, stopped at the end of the session.
* ``mls_local`` (function): the same server, emptied (``POST /local/reset``: MLS and AWS state,
  about 20 ms) unless ``mls_local_reset = false``, with this test's environment pointing at it:
  ``AIRFLOW_CONN_MLS_DEFAULT`` (the ``mls_default`` connection), ``AIRFLOW_CONN_AWS_DEFAULT``
  (``aws_default``, for the amazon provider's hooks), ``AWS_ENDPOINT_URL``, test credentials and
  region, with any AWS profile, session token or config file of yours hidden. Undone after the test.
* ``mls_admin`` (function): a ``LocalMLSAdmin`` for it (tables, artifacts, training outcomes,
  server states and fault injection through ``/local/...``).
* ``mls_airflow`` (function, autouse): this test's Airflow (``MLSAirflow``: ``home``,
  ``dags_folder``, ``db_path``); ``None`` when ``mls_airflow = false``.
* ``mls_run_dag`` (function): ``mls_run_dag("dag_id", conf={...})`` runs a DAG of the DAG folder
  with ``dag.test()`` and returns a ``DagRunResult`` (``state``, ``task_states``, ``xcom(task_id,
  key)``, ``assert_success()``).
* ``mls_hook`` (function): an ``MLSHook`` on the local server, to assert on what MLS holds.

Options (``pytest.ini`` / ``pyproject.toml`` ``[tool.pytest.ini_options]``):
``mls_dags_folder`` (default ``dags``, relative to the ini file's directory: a project with
``dags/`` next to ``tests/``), ``mls_airflow`` (default true), ``mls_local_reset`` (default true;
false keeps one MLS and AWS state for the whole session), ``mls_local_training_seconds``
(default 1), ``mls_local_server_start_seconds`` (default 1), ``mls_local_conn_id`` (default
``mls_default``), ``mls_local_aws_conn_id`` (default ``aws_default``) and ``mls_local_lean_lists``
(default false: list items carry only ids and names, see ``mls-local --lean-lists``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.dag_run import DagRunResult
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


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_HOME_KEY = pytest.StashKey["MLSAirflow | None"]()
_SAVED_ENV_KEY = pytest.StashKey[dict[str, str | None]]()
DB_FILE = "airflow.db"
# Airflow 3 warns "Emitting event for inactive AssetModel ..." for each event of an asset no synced
# DAG schedules on (the deploy tasks' model version events, in a test of a DAG with no consumer of
# them in the folder): ``drop_inactive_asset_model`` drops that message only.
INACTIVE_ASSET_MODEL = "Emitting event for inactive AssetModel"
ASSET_MANAGER_LOGGER = "airflow.assets.manager"
TEMPLATE_FILE = "airflow-template.db"


@dataclass(frozen=True)
class MLSAirflow:
    """The Airflow of a test session: ``home`` (``AIRFLOW_HOME``), ``dags_folder``, ``db_path`` (the
    SQLite metadata DB, a fresh copy of the migrated template for each test) and ``log_folder``."""

    home: Path
    dags_folder: Path
    db_path: Path
    template_path: Path

    @property
    def log_folder(self) -> Path:
        return self.home / "logs"

    def env(self) -> dict[str, str]:
        """The environment that configures Airflow for the session (set before Airflow is imported)."""
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(self.home / "airflow.cfg"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_folder),
        }


def _is_inactive_asset_model(logger: str, message: str) -> bool:
    return logger.startswith(ASSET_MANAGER_LOGGER) and message.startswith(INACTIVE_ASSET_MODEL)


class InactiveAssetModelFilter(logging.Filter):
    """Drops the asset manager's "inactive AssetModel" warning only (stdlib logging); every other
    record, of the asset manager too, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_inactive_asset_model(record.name, record.getMessage())


def drop_inactive_asset_model(logger: Any, method_name: str, event_dict: Any) -> Any:
    """The same as a structlog processor (Airflow 3 logs through structlog): drops that one event."""
    import structlog

    if _is_inactive_asset_model(str(event_dict.get("logger") or ""), str(event_dict.get("event") or "")):
        raise structlog.DropEvent
    return event_dict


def _filter_inactive_asset_model() -> None:
    """Install both filters once Airflow configured its logging (again after it reconfigures)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, InactiveAssetModelFilter) for f in handler.filters):
            handler.addFilter(InactiveAssetModelFilter())
    try:
        import structlog
    except ImportError:  # Airflow 2 logs through stdlib logging only
        return
    processors = list(structlog.get_config().get("processors") or [])
    if processors and drop_inactive_asset_model not in processors:
        # before the renderer (the last processor), after the processors that name the logger
        structlog.configure(processors=[*processors[:-1], drop_inactive_asset_model, processors[-1]])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "mls_airflow",
        "give each test an Airflow of its own (temporary AIRFLOW_HOME, fresh metadata DB, connections)",
        default="true",
    )
    parser.addini(
        "mls_dags_folder",
        "the DAG folder of the tests' Airflow, relative to the ini file's directory (default dags)",
        default="dags",
    )
    parser.addini(
        "mls_local_reset",
        "empty the local MLS server (MLS and AWS state) before each test that uses it",
        default="true",
    )
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


def _flag(config: pytest.Config, name: str) -> bool:
    value = str(config.getini(name)).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise pytest.UsageError(f"{name} must be true or false, got {config.getini(name)!r}")


def _env_name(conn_id: object) -> str:
    return f"AIRFLOW_CONN_{str(conn_id).upper()}"


def _dags_folder(config: pytest.Config) -> Path:
    value = str(config.getini("mls_dags_folder")).strip()
    if not value:
        raise pytest.UsageError("mls_dags_folder must not be empty (default: dags)")
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return (base / value).resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Point Airflow at a temporary home before anything imports it."""
    config.addinivalue_line("markers", "mls_shared_state: do not empty the local MLS server before this test")
    if not _flag(config, "mls_airflow"):
        config.stash[_HOME_KEY] = None
        return
    _flag(config, "mls_local_reset")  # a bad value is a usage error now, not in the first test
    base = Path(tempfile.mkdtemp(prefix="mls-pytest-airflow-"))
    home = base / "airflow-home"
    home.mkdir()
    airflow = MLSAirflow(
        home=home,
        dags_folder=_dags_folder(config),
        db_path=home / DB_FILE,
        template_path=base / TEMPLATE_FILE,
    )
    if "airflow.configuration" in sys.modules:
        from airflow.configuration import conf

        current = conf.get("database", "sql_alchemy_conn")
        shutil.rmtree(base, ignore_errors=True)
        raise pytest.UsageError(
            "airflow_provider_mls.testing.pytest_plugin: Airflow was imported before the plugin could "
            f"configure it (its metadata DB is {current}). Do not import airflow at module level in "
            "conftest.py (import it inside fixtures or tests), or load the plugin earlier with "
            "`-p airflow_provider_mls.testing.pytest_plugin`; `mls_airflow = false` turns this off."
        )
    saved: dict[str, str | None] = {}
    for name, value in airflow.env().items():
        saved[name] = os.environ.get(name)
        os.environ[name] = value
    config.stash[_SAVED_ENV_KEY] = saved
    config.stash[_HOME_KEY] = airflow


def pytest_unconfigure(config: pytest.Config) -> None:
    airflow = config.stash.get(_HOME_KEY, None)
    if airflow is None:
        return
    for name, value in config.stash.get(_SAVED_ENV_KEY, {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(airflow.home.parent, ignore_errors=True)


def _dispose_airflow_engine() -> None:
    """Close Airflow's pooled DB connections (the DB file is about to be replaced)."""
    settings = sys.modules.get("airflow.settings")
    if settings is None:
        return
    session = getattr(settings, "Session", None)
    if session is not None and hasattr(session, "remove"):
        session.remove()
    for name in ("engine", "async_engine"):
        engine = getattr(settings, name, None)
        engine = getattr(engine, "sync_engine", engine)
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()


def _migrate(airflow: MLSAirflow) -> None:
    """Create the session's metadata DB once (Airflow's ``initdb``), kept as the template."""
    import inspect

    from airflow.utils import db

    kwargs: dict[str, Any] = {}
    if "load_connections" in inspect.signature(db.initdb).parameters:  # Airflow 2
        kwargs["load_connections"] = False
    db.initdb(**kwargs)
    _dispose_airflow_engine()
    shutil.copyfile(airflow.db_path, airflow.template_path)


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
    server, emptied first (``POST /local/reset``) unless ``mls_local_reset = false`` or the test is
    marked ``mls_shared_state``; ``monkeypatch`` undoes the environment after the test."""
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
    if (
        _flag(request.config, "mls_local_reset")
        and request.node.get_closest_marker("mls_shared_state") is None
    ):
        request.getfixturevalue("_mls_local_session_admin").reset()
    return mls_local_server


@pytest.fixture(scope="session")
def _mls_local_session_admin(mls_local_server: LocalMLSServer) -> Iterator[LocalMLSAdmin]:
    """One kept-alive admin session for the per-test resets (a reset then costs about 20 ms)."""
    with mls_local_server.admin() as admin:
        yield admin


@pytest.fixture
def mls_admin(mls_local: LocalMLSServer) -> Iterator[LocalMLSAdmin]:
    """A ``LocalMLSAdmin`` for the local server (closed after the test; the server keeps running)."""
    with mls_local.admin() as admin:
        yield admin


@pytest.fixture(scope="session")
def _mls_airflow_template(request: pytest.FixtureRequest) -> MLSAirflow | None:
    airflow = request.config.stash.get(_HOME_KEY, None)
    if airflow is not None and not airflow.template_path.exists():
        _migrate(airflow)
    return airflow


@pytest.fixture(autouse=True)
def mls_airflow(request: pytest.FixtureRequest) -> MLSAirflow | None:
    """This test's Airflow: a fresh copy of the session's migrated metadata DB, the MLS and AWS
    connections on the local server (``mls_local``). ``None`` when the ini says ``mls_airflow = false``."""
    airflow: MLSAirflow | None = request.getfixturevalue("_mls_airflow_template")
    if airflow is None:
        return None
    _dispose_airflow_engine()
    shutil.copyfile(airflow.template_path, airflow.db_path)
    request.getfixturevalue("mls_local")
    _filter_inactive_asset_model()
    return airflow


@pytest.fixture
def mls_run_dag(mls_airflow: MLSAirflow | None) -> Callable[..., DagRunResult]:
    """``mls_run_dag("dag_id", conf={...})``: run a DAG of the DAG folder with ``dag.test()``; returns
    its ``DagRunResult`` (state, task states, XComs). See ``airflow_provider_mls.testing.dag_run``."""
    from airflow_provider_mls.testing.dag_run import run_dag

    if mls_airflow is None:
        return run_dag  # the caller's own Airflow configuration
    folder = str(mls_airflow.dags_folder)

    def run(dag_id: str, conf: dict[str, Any] | None = None, **kwargs: Any) -> DagRunResult:
        kwargs.setdefault("dags_folder", folder)
        return run_dag(dag_id, conf, **kwargs)

    return run


@pytest.fixture
def mls_hook(mls_local: LocalMLSServer, request: pytest.FixtureRequest) -> MLSHook:
    """An ``MLSHook`` on the local server (the ``mls_local_conn_id`` connection)."""
    from airflow_provider_mls.hooks.mls import MLSHook

    return MLSHook(mls_conn_id=str(request.config.getini("mls_local_conn_id")))
