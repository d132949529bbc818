"""Every example DAG imports without errors; the quickstart runs green with `airflow dags test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.operators import approval
from airflow_provider_mls.testing.dag_run import dag_run_state

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags_examples"
# The examples with a person approving in Airflow (human-in-the-loop tasks: Airflow 3.1+): file -> dag_id.
APPROVAL_EXAMPLES = {
    "mls_train_review_deploy.py": "mls_train_review_deploy",
    "mls_approval_in_airflow.py": "mls_approval_in_airflow",
}
# `airflow dags test` of a whole pipeline (several deferrals, a simulated training) takes 1-3 minutes on
# 2 cores; the bound leaves room for a loaded machine.
pytestmark = pytest.mark.timeout(600)


def test_example_dags_import_without_errors() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

    bag = DagBag(dag_folder=str(DAGS))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    if approval.HITL_AVAILABLE:
        assert bag.import_errors == {}
        assert set(APPROVAL_EXAMPLES.values()) <= set(bag.dag_ids)
    else:  # the person-in-Airflow examples say which Airflow they need; nothing else fails
        assert set(bag.import_errors) == {str(DAGS / name) for name in APPROVAL_EXAMPLES}
        assert all("needs Airflow 3.1 or later" in error for error in bag.import_errors.values())
    assert {
        "mls_quickstart",
        "mls_model_lifecycle",
        "mls_approval_gated_deploy",
        "mls_train_to_deploy",
        "mls_batch_prediction_refresh",
        "mls_automl_upgrade",
        "mls_mapped_deploy",
    } <= set(bag.dag_ids)


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
    if dag_file in APPROVAL_EXAMPLES and not approval.HITL_AVAILABLE:
        pytest.skip("human-in-the-loop tasks need Airflow 3.1+")
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
    assert "boto3" not in heavy, heavy  # imported when an AWS task runs, not when the DAG is parsed
    assert "airflow_provider_mls" not in heavy, heavy


def _airflow_env(home: Path, mls_server: object) -> dict[str, str]:
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json(),  # type: ignore[attr-defined]
        # S3, DynamoDB and SageMaker: the server's embedded AWS endpoint.
        "AIRFLOW_CONN_AWS_DEFAULT": mls_server.aws_conn_json(),  # type: ignore[attr-defined]
        **mls_server.aws_env(),  # type: ignore[attr-defined]
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
        # list items name the models; their status is in the model read by id
        automl = [hook_on.get_model(m["id"]) for m in hook_on.list_automl_models(name="lifecycle_automl")]
        assert automl and all(m["status"] == "DONE" for m in automl)
        assert {hook_on.get_automl_model_server_status(m) for m in automl} == {"STOPPED"}


@pytest.mark.e2e
def test_approval_gated_deploy_runs_green_and_a_rejection_deploys_nothing(
    tmp_path: Path, mls_server: object, hook_on: Any
) -> None:
    """Approved: the version's data, card and metadata reach MLS. Rejected: the gate fails, nothing deployed."""
    env = _airflow_env(tmp_path / "approved", mls_server)
    _dags_test(env, "mls_approval_gated_deploy")
    deployed = [m for m in hook_on.list_all_manual_models(name="churn_model") if m["name"] == "churn_model"]
    assert len(deployed) == 1
    model = hook_on.get_model(deployed[0]["id"])  # a list item names it; the model is read by id
    meta = model["model_meta"]
    assert model["model_data"].startswith("s3://mls-model-registry/churn_model/")
    assert meta["team"] == "retention" and meta["reviewed_by"] == "demo-approver"
    assert meta["model_card"]["intended_uses"]["risk_rating"] == "Low"
    assert meta["model_package"]["approval_description"].startswith("Approved by the demo approver")
    assert hook_on.is_online_prediction_ready(model)

    env = _airflow_env(tmp_path / "rejected", mls_server)
    out = _dags_test(env, "mls_approval_gated_deploy", '{"decision": "Rejected"}', state="failed")
    assert "Rejected" in out
    after = [m for m in hook_on.list_all_manual_models(name="churn_model") if m["name"] == "churn_model"]
    assert [m["id"] for m in after] == [model["id"]]


# ---- the three pipelines (the main job of `make demo`) ---------------------------------------------


@pytest.fixture(scope="module")
def seeded(mls_server: Any) -> Iterator[dict[str, Any]]:
    """The previous versions the pipelines replace (scripts/demo_seed.py, as `make demo` does)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from demo_seed import seed

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())
        for name, value in mls_server.aws_env().items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        with mls_server.admin() as admin:
            yield seed(admin)


@pytest.fixture
def aws_on(mls_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _buckets(hook: Any, experiment_id: int) -> dict[str, int | None]:
    buckets = hook.run("GET", f"/api/v1/experiments/{experiment_id}/buckets")
    return {b["name"]: b["prediction"]["ml_model"] for b in buckets}


@pytest.mark.e2e
def test_train_to_deploy_registers_deploys_and_moves_the_traffic(
    tmp_path: Path, mls_server: Any, hook_on: Any, aws_on: None, seeded: dict[str, Any]
) -> None:
    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

    registry = MLSModelRegistryHook()
    _dags_test(_airflow_env(tmp_path / "v2", mls_server), "mls_train_to_deploy", '{"model_version": "v2"}')
    v2 = hook_on.get_manual_model(name="churn_lr", version="v2")
    stored = registry.get_meta("churn_lr", "v2")
    assert stored is not None and stored["model_data"] == "/models/churn_lr/v2/model.joblib"
    assert v2["model_data"] == stored["model_data"]
    # the meta is model.json, with the holdout metrics merged in
    assert {k: v2["model_meta"][k] for k in stored} == stored
    assert v2["model_meta"]["performance"]["auc"] > 0.65
    assert hook_on.get_artifact_info("churn_lr", "v2")["size"] > 0
    assert _buckets(hook_on, seeded["experiment_id"])["main"] == v2["id"]

    # the next version takes the traffic from the newest other version, found by itself
    _dags_test(_airflow_env(tmp_path / "v3", mls_server), "mls_train_to_deploy", '{"model_version": "v3"}')
    v3 = hook_on.get_manual_model(name="churn_lr", version="v3")
    assert _buckets(hook_on, seeded["experiment_id"])["main"] == v3["id"]
    assert registry.list_versions("churn_lr") == ["v1", "v2", "v3"]

    # a first version: nothing to move, the run is still green; a version in the registry is not overwritten
    out = _dags_test(
        _airflow_env(tmp_path / "solo", mls_server),
        "mls_train_to_deploy",
        '{"model_name": "solo_lr", "model_version": "v1"}',
    )
    assert "no other version" in out
    out = _dags_test(
        _airflow_env(tmp_path / "again", mls_server),
        "mls_train_to_deploy",
        '{"model_name": "solo_lr", "model_version": "v1"}',
        state="failed",
    )
    assert "version" in out and "exists" in out


@pytest.mark.e2e
def test_batch_prediction_refresh_swaps_tables_without_serving_a_half_loaded_one(
    tmp_path: Path, mls_server: Any, hook_on: Any, aws_on: None, seeded: dict[str, Any]
) -> None:
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

    tables = PredictionTableHook()
    before = hook_on.get_manual_model(name="churn_batch", version="v1")
    assert before["table"] == "churn_batch_predictions_seed"
    _dags_test(_airflow_env(tmp_path / "first", mls_server), "mls_batch_prediction_refresh")
    after = hook_on.get_manual_model(name="churn_batch", version="v1")
    table = after["table"]
    assert table.startswith("churn_batch_predictions_2") and table != before["table"]
    assert tables.count_items(table) == 1000
    assert tables.is_active(table) and not tables.is_loading(table)
    assert hook_on.is_batch_prediction_ready(after)
    assert tables.describe_table("churn_batch_predictions_seed") is None  # the old one is dropped
    # the same day again: the table is reused, nothing is dropped
    _dags_test(_airflow_env(tmp_path / "rerun", mls_server), "mls_batch_prediction_refresh")
    assert hook_on.get_manual_model(name="churn_batch", version="v1")["table"] == table
    assert tables.count_items(table) == 1000


@pytest.mark.e2e
def test_automl_upgrade_replaces_the_previous_server(
    tmp_path: Path, mls_server: Any, hook_on: Any, aws_on: None, seeded: dict[str, Any]
) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from demo_seed import HANDLER

    _dags_test(_airflow_env(tmp_path / "v2", mls_server), "mls_automl_upgrade", '{"version": "v2"}')
    v1 = hook_on.get_automl_model(name="churn_automl", version="v1")
    v2 = hook_on.get_automl_model(name="churn_automl", version="v2")
    assert v2["status"] == "DONE"
    assert hook_on.get_automl_model_server_handler(v2) == HANDLER  # copied: v2 had none
    assert hook_on.get_automl_model_server_status(v2) == "RUNNING"
    assert hook_on.get_automl_model_server_status(v1) == "STOPPED"
    assert _buckets(hook_on, seeded["experiment_id"])["automl"] == v2["id"]


@pytest.mark.e2e
def test_mapped_deploy_deploys_and_awaits_every_segment(
    tmp_path: Path, mls_server: Any, hook_on: Any, aws_on: None
) -> None:
    """Dynamic task mapping end to end: a mapped register, a mapped deploy (expand_kwargs) and a mapped
    deferred sensor (expand over the deploys' XComs), as many of each as there are segments."""
    segments = ["north", "south", "east", "west"]
    prefix = f"mapped_{os.getpid()}"
    conf = json.dumps({"segments": segments, "prefix": prefix, "version": "v1"})
    out = _dags_test(_airflow_env(tmp_path / "mapped", mls_server), "mls_mapped_deploy", conf)
    assert "4 models deployed and serving" in out, out[-4000:]
    for segment in segments:
        model = hook_on.get_manual_model(name=f"{prefix}_{segment}", version="v1")
        assert model["model_meta"]["model_info"] == {"segment": segment}
        assert model["model_data"].endswith(f"{prefix}_{segment}/v1/model.joblib")
        assert hook_on.is_online_prediction_ready(model)
    # a re-run is green and keeps one model per segment
    _dags_test(_airflow_env(tmp_path / "again", mls_server), "mls_mapped_deploy", conf)
    assert len(hook_on.list_all_manual_models(name=f"{prefix}_north")) == 1
