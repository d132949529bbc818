"""The pytest plugin users enable for their DAG tests, run as a user would: a separate pytest run of a
user-like project (``dags/`` and ``tests/``), on the Airflow of the venv running this suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[2]
FIRST_PROJECT = REPO / "dags_examples" / "first_dag_project"

USER_TESTS = """
import os

import boto3

pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]


def test_connections_and_aws_point_at_the_local_server(mls_local, mls_admin):
    from airflow_provider_mls.hooks.mls import MLSHook

    assert os.environ["AWS_ENDPOINT_URL"] == mls_local.aws_endpoint_url
    assert "AWS_PROFILE" not in os.environ
    # boto3 with no arguments reaches the embedded endpoint; the local server answers from it.
    boto3.client("s3").put_object(Bucket="mls-model-registry", Key="churn/v1/model.joblib", Body=b"abc")
    hook = MLSHook()  # mls_default
    assert hook.get_artifact_info("churn", "v1")["size"] == 3
    mls_admin.set_table("churn_predictions", is_loading=True)
    assert hook.is_table_active("churn_predictions") and hook.is_table_loading("churn_predictions")


def test_the_amazon_style_connection_is_set(mls_local):
    import json

    conn = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == mls_local.aws_endpoint_url


def test_nothing_leaks_into_a_test_without_the_fixture(mls_airflow):
    assert mls_airflow is None  # mls_airflow = false
    assert os.environ.get("AWS_PROFILE") == "someone-elses"
    assert "AIRFLOW_CONN_MLS_DEFAULT" not in os.environ
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_same_server_for_the_session_and_state_kept(mls_local_server, mls_local, mls_admin):
    assert mls_local is mls_local_server and mls_local.running
    # mls_local_reset = false: the first test's table is still there
    assert mls_admin.set_table("churn_predictions")["is_active"]
"""


def test_plugin_fixtures_without_airflow_and_with_a_shared_state(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user_dag=USER_TESTS)
    pytester.makeini(
        "[pytest]\nmls_local_training_seconds = 0.5\nmls_airflow = false\nmls_local_reset = false\n"
    )
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AWS_PROFILE", "someone-elses")
    for name in ("AIRFLOW_CONN_MLS_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            "mls_local_training_seconds = soon",
            "*mls_local_training_seconds must be a number of seconds, got 'soon'*",
        ),
        ("mls_airflow = maybe", "*mls_airflow must be true or false, got 'maybe'*"),
        ("mls_local_reset = sometimes", "*mls_local_reset must be true or false, got 'sometimes'*"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makepyfile(
        test_user='pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]\n'
        "def test_it(mls_local_server):\n    pass\n"
    )
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert message.strip("*") in out, out[-3000:]


def test_airflow_imported_before_the_plugin_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        'import airflow.configuration\npytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]\n'
    )
    pytester.makepyfile(test_user="def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "Airflow was imported before the plugin could configure it" in result.stderr.str()


# ---- a DAG author's project: DAGs in dags/, tests in tests/, nothing but the plugin set up ----------

TRAIN_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import CreateAutoMLModelOperator
from airflow_provider_mls.sensors.mls import AutoMLTrainingDoneSensor


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"name": "churn_automl"})
def train():
    create = CreateAutoMLModelOperator(
        task_id="create", name="{{ params.name }}", version="v1", dataset_name="churn_ds"
    )
    done = AutoMLTrainingDoneSensor(
        task_id="trained", model_id=create.output, deferrable=True, poke_interval=0.5, timeout=120
    )

    @task
    def report(model: dict) -> str:
        return f"{model['name']}/{model['version']} is {model['status']}"

    report(done.output)


train()
"""

PROJECT_TESTS = '''
import pytest


@pytest.fixture
def dataset(mls_admin):
    return mls_admin.create_dataset("churn_ds")


def _dag_bag():
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2
    return DagBag()


def test_dag_test_needs_no_other_setup(dataset):
    """dag.test() of a DAG of dags/: the plugin made the metadata DB, the DAG folder, the connections."""
    bag = _dag_bag()
    assert bag.import_errors == {} and sorted(bag.dag_ids) == ["churn_deploy", "train"]
    run = bag.dags["train"].test()
    assert run.state == "success"


@pytest.mark.parametrize("attempt", ["first", "second"])
def test_the_same_dag_twice_from_an_empty_mls(attempt, dataset, mls_run_dag, mls_hook, mls_airflow):
    assert dataset["id"] == 1  # emptied before each test: ids start again
    result = mls_run_dag("train", conf={"name": "churn_automl"})
    result.assert_success()
    assert result.task_states == {"create": "success", "trained": "success", "report": "success"}
    assert result.xcom("report") == "churn_automl/v1 is DONE"
    assert result.xcom("trained")["status"] == "DONE"
    (model,) = mls_hook.list_automl_models(name="churn_automl")
    assert model["id"] == result.xcom("create")["id"] == 1
    assert str(mls_airflow.home).startswith(str(mls_airflow.home.parent))


def test_run_by_id_with_conf_and_a_failure_that_says_which_task(dataset, mls_run_dag, mls_admin, mls_hook):
    result = mls_run_dag("train", conf={"name": "other_model"})
    assert result.succeeded and result.conf == {"name": "other_model"}
    assert [m["name"] for m in mls_hook.list_automl_models(name="other_model")] == ["other_model"]
    assert mls_hook.list_automl_models(name="churn_automl") == []
    with pytest.raises(KeyError, match="no XCom 'return_value' of task 'nope'"):
        result.xcom("nope")
    with pytest.raises(LookupError, match="no DAG 'missing' in the DAG folder"):
        mls_run_dag("missing")


def test_a_failed_run_names_its_tasks(mls_run_dag):
    result = mls_run_dag("train")  # no dataset: create fails
    assert result.state == "failed" and result.task_states["create"] == "failed"
    with pytest.raises(AssertionError, match="tasks not successful: create=failed"):
        result.assert_success()


@pytest.mark.mls_shared_state
def test_shared_state_opt_out(mls_hook):
    """Not emptied: the previous test's (failed) run left nothing, the one before it its model."""
    assert [m["name"] for m in mls_hook.list_automl_models(name="other_model")] == []
'''


def _user_project(pytester: pytest.Pytester) -> Path:
    """The README's example project (dags/churn_deploy.py, tests/), plus a deferrable DAG and its tests."""
    root = pytester.path
    for item in FIRST_PROJECT.iterdir():
        if item.is_dir():
            shutil.copytree(item, root / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(item, root / item.name)
    (root / "dags" / "train.py").write_text(TRAIN_DAG)
    (root / "tests" / "test_train.py").write_text(PROJECT_TESTS)
    return root


# A plugin for the project's run (``-p mls_log_watch``): every log record at WARNING or above of an
# ``airflow_provider_mls`` logger, stdlib or structlog (Airflow 3 logs through both), written as a
# JSON line to $MLS_LOG_WATCH.
LOG_WATCH = """
import json, logging, os
import pytest

OURS = "airflow_provider_mls"
LEVELS = {"warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50, "fatal": 50}


def _write(logger, level, message):
    with open(os.environ["MLS_LOG_WATCH"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"logger": logger, "level": level, "message": message}) + "\\n")


class Watch(logging.Handler):
    def emit(self, record):
        if OURS in record.name and record.levelno >= logging.WARNING:
            _write(record.name, record.levelname, record.getMessage())


def watch(logger, method_name, event_dict):
    name = str(event_dict.get("logger") or event_dict.get("logger_name") or getattr(logger, "name", "") or "")
    level = str(event_dict.get("level") or method_name).lower()
    if OURS in name and LEVELS.get(level, 0) >= 30:
        _write(name, level, str(event_dict.get("event")))
    return event_dict


def _install():
    root = logging.getLogger()
    if not any(isinstance(h, Watch) for h in root.handlers):
        root.addHandler(Watch(logging.WARNING))
    try:
        import structlog
    except ImportError:
        return
    processors = list(structlog.get_config().get("processors") or [])
    if processors and watch not in processors:
        structlog.configure(processors=[watch, *processors])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    _install()
    return (yield)
"""


def test_a_dag_authors_project_runs_its_dags_through_the_plugin(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example project's tests and real DAG runs (a deferrable sensor resumed in-process, the same
    DAG in two tests, a run by id with conf): green, with no Airflow set up but the plugin's, and
    without the errors and warnings a green run must not log."""
    root = _user_project(pytester)
    # The developer's own Airflow must stay untouched: the plugin uses a temporary home.
    own_home = tmp_path / "my-airflow"
    monkeypatch.setenv("AIRFLOW_HOME", str(own_home))
    for name in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__UNIT_TEST_MODE", "AIRFLOW_CONN_MLS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "True")  # the plugin turns the examples off
    watch_dir = tmp_path / "watch"
    watch_dir.mkdir()
    (watch_dir / "mls_log_watch.py").write_text(LOG_WATCH)
    records = tmp_path / "our-warnings.jsonl"
    monkeypatch.setenv("MLS_LOG_WATCH", str(records))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(watch_dir), os.environ.get("PYTHONPATH")) if p)
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "mls_log_watch", "-s", str(root / "tests")
    )
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=8)
    assert not own_home.exists()
    # no record at WARNING or above of one of our loggers (as records, and in the rendered output)
    ours = records.read_text(encoding="utf-8") if records.exists() else ""
    assert ours == "", ours
    rendered = [
        line
        for line in out.splitlines()
        if "airflow_provider_mls" in line
        and any(f"[{level}" in line.lower() for level in ("warning", "error", "critical", "exception"))
    ]
    assert rendered == [], rendered
    assert "XCom not found" not in out, out[-3000:]
    assert "Emitting event for inactive AssetModel" not in out, out[-3000:]
    assert "defer" in out.lower(), out[-3000:]  # the sensor deferred, and its trigger ran here


def test_the_readmes_first_dag_and_test_are_the_example_projects() -> None:
    """The README shows the example project's DAG and first test as they are (the run above tests them)."""
    readme = (REPO / "README.md").read_text()
    dag = (FIRST_PROJECT / "dags" / "churn_deploy.py").read_text().split('"""', 2)[2].strip()
    test = (FIRST_PROJECT / "tests" / "test_churn_deploy.py").read_text().split('"""', 2)[2].strip()
    first_test = test.split("\n\n\ndef ", 1)[0].strip()
    section = readme.split("## Your first DAG and its test", 1)[1].split("\n## ", 1)[0]
    assert f"```python\n{dag}\n```" in section
    assert f"```python\n{first_test}\n```" in section
    assert 'pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]' in section
    assert readme.index("## Your first DAG and its test") < readme.index("## The two commands")


def test_the_asset_manager_filter_drops_the_inactive_asset_model_warning_only() -> None:
    import importlib.util
    import logging

    from airflow_provider_mls.testing.pytest_plugin import InactiveAssetModelFilter, drop_inactive_asset_model

    manager = "airflow.assets.manager.AssetManager"

    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, ("Asset(name='m')",), None)

    keep = InactiveAssetModelFilter().filter
    assert not keep(record(manager, "Emitting event for inactive AssetModel %s"))
    assert keep(record(manager, "AssetModel %s not found; cannot create asset event."))
    assert keep(record("airflow.other", "Emitting event for inactive AssetModel %s"))
    if importlib.util.find_spec("structlog") is None:  # Airflow 2 logs through stdlib logging only
        return
    import structlog

    with pytest.raises(structlog.DropEvent):
        drop_inactive_asset_model(
            None, "warning", {"logger": manager, "event": "Emitting event for inactive AssetModel x"}
        )
    other = {"logger": manager, "event": "AssetModel x not found; cannot create asset event."}
    assert drop_inactive_asset_model(None, "warning", dict(other)) == other
