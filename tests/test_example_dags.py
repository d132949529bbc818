"""Every example DAG imports without errors; the quickstart runs green with `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mls.testing.dag_run import dag_run_state

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags_examples"


def test_example_dags_import_without_errors() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

    bag = DagBag(dag_folder=str(DAGS))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    assert bag.import_errors == {}
    assert {"mls_quickstart", "mls_model_lifecycle", "mls_approval_gated_deploy"} <= set(bag.dag_ids)


def test_lifecycle_example_uses_every_operator_and_sensor() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

    import airflow_provider_mls.operators.mls as operators
    import airflow_provider_mls.sensors.mls as sensors

    dag = DagBag(dag_folder=str(DAGS / "mls_model_lifecycle.py")).dags["mls_model_lifecycle"]
    used = {type(t).__name__ for t in dag.tasks}
    assert set(operators.__all__) | set(sensors.__all__) <= used


def test_approval_example_uses_every_registry_operator_and_sensor() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

    import airflow_provider_mls.operators.sagemaker_registry as operators
    import airflow_provider_mls.sensors.sagemaker_registry as sensors

    bag = DagBag(dag_folder=str(DAGS / "mls_approval_gated_deploy.py"))
    used = {type(t).__name__ for t in bag.dags["mls_approval_gated_deploy"].tasks}
    assert set(operators.__all__) | set(sensors.__all__) | {"OnlinePredictionReadySensor"} <= used


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_example_dag_modules_stay_light(dag_file: str) -> None:
    """Parsing a DAG file must not import the hook's HTTP stack or the local server's web stack."""
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / dag_file)!r})\n"
        "heavy = [m for m in ('requests', 'fastapi', 'uvicorn', 'boto3', 'airflow_provider_mls.hooks.mls',"
        " 'airflow_provider_mls.hooks.mls_async', 'airflow_provider_mls.triggers.mls') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    heavy = out.stdout.rsplit("HEAVY=", 1)[-1].strip()
    assert "fastapi" not in heavy and "uvicorn" not in heavy, heavy
    assert "airflow_provider_mls" not in heavy, heavy


def _airflow_env(home: Path, mls_server: object) -> dict[str, str]:
    home.mkdir()
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json(),  # type: ignore[attr-defined]
        "PYTHONWARNINGS": "ignore",
    }


def _dags_test(env: dict[str, str], dag_id: str, conf: str | None = None, state: str = "success") -> str:
    """``airflow dags test`` in a fresh metadata DB; returns the output after asserting the run's state."""
    airflow = str(Path(sys.executable).parent / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=240)
    assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-4000:]
    args = [airflow, "dags", "test", dag_id] + (["-c", conf] if conf else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if state == "success":
        assert proc.returncode == 0, out[-4000:]
    assert dag_run_state(out) == state, out[-6000:]
    return out


@pytest.fixture
def hook_on(mls_server: object, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())  # type: ignore[attr-defined]
    from airflow_provider_mls.hooks.mls import MLSHook

    return MLSHook()


@pytest.mark.e2e
def test_quickstart_dag_runs_green_against_local_server(
    tmp_path: Path, mls_server: object, hook_on: object
) -> None:
    version = f"e2e-{os.getpid()}"
    _dags_test(
        _airflow_env(tmp_path / "home", mls_server), "mls_quickstart", f'{{"model_version": "{version}"}}'
    )
    model = hook_on.get_manual_model(name="quickstart_model", version=version)  # type: ignore[attr-defined]
    assert model["model_meta"]["performance"]["auc"] == 0.91
    assert model["model_meta"]["model_lib"] == "sklearn"


@pytest.mark.e2e
def test_lifecycle_dag_runs_green_twice_against_local_server(
    tmp_path: Path, mls_server: object, hook_on: Any
) -> None:
    """Every operator and sensor, deferred waits run inline by `dags test`; a re-run is green too."""
    from airflow_provider_mls.exceptions import MLSNotFoundError

    for run in ("first", "second"):
        out = _dags_test(_airflow_env(tmp_path / run, mls_server), "mls_model_lifecycle")
        assert "MLSCheckTrigger" in out or "deferr" in out.lower(), out[-3000:]
        v2 = hook_on.get_manual_model(name="lifecycle_model", version="v2")
        assert v2["model_meta"]["performance"] == {"auc": 0.91, "logloss": 0.32}
        assert v2["model_meta"]["model_lib"] == "sklearn"  # merged, not replaced
        assert v2["description"].startswith("v2: retrained on ")
        assert [c["name"] for c in v2["components"]] == ["lifecycle_preprocess"]
        with pytest.raises(MLSNotFoundError):
            hook_on.get_manual_model(name="lifecycle_model", version="v1")
        experiment = hook_on.run("GET", "/api/v1/experiments", params={"name": "lifecycle_experiment"})[0]
        bucket = hook_on.run(
            "GET", f"/api/v1/experiments/{experiment['id']}/buckets", params={"name": "main"}
        )[0]
        assert bucket["prediction"]["ml_model"] == v2["id"]
        automl = hook_on.list_automl_models(name="lifecycle_automl")
        assert automl and all(m["status"] == "DONE" for m in automl)
        assert {hook_on.get_automl_model_server_status(m) for m in automl} == {"STOPPED"}


@pytest.fixture
def aws_endpoint() -> Any:
    """The embedded AWS endpoint (moto with SageMaker's registry semantics) for one test."""
    from airflow_provider_mls.local.aws import LocalAWSEndpoint

    with LocalAWSEndpoint() as endpoint:
        yield endpoint


@pytest.mark.e2e
def test_approval_gated_deploy_runs_green_and_a_rejection_deploys_nothing(
    tmp_path: Path, mls_server: object, hook_on: Any, aws_endpoint: Any
) -> None:
    """Approved: the version's data, card and metadata reach MLS. Rejected: the gate fails, nothing deployed."""
    env = {**_airflow_env(tmp_path / "approved", mls_server), **aws_endpoint.env()}
    _dags_test(env, "mls_approval_gated_deploy")
    deployed = [m for m in hook_on.list_all_manual_models(name="churn_model") if m["name"] == "churn_model"]
    assert len(deployed) == 1
    model = deployed[0]
    meta = model["model_meta"]
    assert model["model_data"].startswith("s3://mls-model-registry/churn_model/")
    assert meta["team"] == "retention" and meta["reviewed_by"] == "demo-approver"
    assert meta["model_card"]["intended_uses"]["risk_rating"] == "Low"
    assert meta["model_package"]["approval_description"].startswith("Approved by the demo approver")
    assert hook_on.is_online_prediction_ready(model)

    env = {**_airflow_env(tmp_path / "rejected", mls_server), **aws_endpoint.env()}
    out = _dags_test(env, "mls_approval_gated_deploy", '{"decision": "Rejected"}', state="failed")
    assert "Rejected" in out
    after = [m for m in hook_on.list_all_manual_models(name="churn_model") if m["name"] == "churn_model"]
    assert [m["id"] for m in after] == [model["id"]]
