"""Every example DAG imports without errors; the quickstart runs green with `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert "mls_quickstart" in bag.dag_ids


def test_example_dag_modules_stay_light() -> None:
    """Parsing a DAG file must not import requests or the local server's web stack."""
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / 'mls_quickstart.py')!r})\n"
        "heavy = [m for m in ('requests', 'fastapi', 'uvicorn', 'boto3') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fastapi" not in out.stdout and "uvicorn" not in out.stdout, out.stdout


@pytest.mark.e2e
def test_quickstart_dag_runs_green_against_local_server(tmp_path: Path, mls_server: object) -> None:
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json(),  # type: ignore[attr-defined]
        "PYTHONWARNINGS": "ignore",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    assert (
        subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, timeout=240).returncode == 0
    )
    version = f"e2e-{os.getpid()}"
    proc = subprocess.run(
        [airflow, "dags", "test", "mls_quickstart", "-c", f'{{"model_version": "{version}"}}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert dag_run_state(out) == "success", out[-4000:]

    from airflow_provider_mls.hooks.mls import MLSHook

    os.environ["AIRFLOW_CONN_MLS_DEFAULT"] = env["AIRFLOW_CONN_MLS_DEFAULT"]
    try:
        model = MLSHook().get_manual_model(name="quickstart_model", version=version)
    finally:
        del os.environ["AIRFLOW_CONN_MLS_DEFAULT"]
    assert model["model_meta"]["performance"]["auc"] == 0.91
    assert model["model_meta"]["model_lib"] == "sklearn"
