"""Links, asset events and lineage through Airflow itself: ``airflow dags test`` against the local server.

A producer DAG uploads a model to the registry, loads a prediction table and deploys the model to
MLS (the connection names a ``console_url``); the example ``mls_batch_prediction_on_new_version``
is scheduled on that model's asset. After the run, read from the metadata DB the way the UI and the
scheduler do:

- extra links: the serialized task's ``get_extra_links`` (the API server's / webserver's path);
- the asset (dataset) event of the new version and the consumer DAG queued by it;
- OpenLineage: the events a real OpenLineage client wrote with its file transport.

Then the consumer example runs green for that version. Both Airflow versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mls.testing.dag_run import dag_run_state

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")
CONSOLE = "https://mls.example.com/models/{model_id}?v={version}"

PRODUCER = textwrap.dedent(
    '''
    """Upload, load a table, deploy: every task with a link, lineage, and the deploy an asset event."""
    import pendulum
    from airflow.providers.common.compat.sdk import dag

    from airflow_provider_mls.operators.mls import CreateManualModelOperator
    from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
    from airflow_provider_mls.operators.prediction_table import (
        CreatePredictionTableOperator,
        LoadPredictionTableOperator,
    )


    @dag(dag_id="mls_integration_producer", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         params={"version": "v0", "table": "t"})
    def producer():
        upload = UploadModelToRegistryOperator(
            task_id="upload", name="churn_lr", version="{{ params.version }}", model_bytes=b"model",
            model_lib="sklearn", model_lib_version="1.3.0", features=["age", "tenure"],
        )
        table = CreatePredictionTableOperator(task_id="create_table", table="{{ params.table }}")
        load = LoadPredictionTableOperator(
            task_id="load", table="{{ params.table }}", rows=[{"user_id": "a"}, {"user_id": "b"}]
        )
        deploy = CreateManualModelOperator(
            task_id="deploy", name="churn_lr", version="{{ params.version }}", model_lib="sklearn",
            model_data="{{ ti.xcom_pull(task_ids='upload', key='model_data') }}", features=["age", "tenure"],
        )
        upload >> table >> load >> deploy


    producer()
    '''
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from sqlalchemy import select
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    try:
        from airflow.models.asset import AssetDagRunQueue as Queue, AssetEvent as Event, AssetModel as Model
        key = "asset_id"
    except ImportError:  # Airflow 2.11
        from airflow.models.dataset import DatasetDagRunQueue as Queue, DatasetEvent as Event, DatasetModel as Model
        key = "dataset_id"

    out = {"links": {}, "events": [], "queued": []}
    with create_session() as session:
        dag = SerializedDagModel.get_dag("mls_integration_producer")
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id)):
            task = dag.get_task(ti.task_id)
            for name in sorted(task.extra_links):
                out["links"][f"{ti.task_id}/{name}"] = task.get_extra_links(ti, name)
        for event in session.scalars(select(Event)):
            model = session.get(Model, getattr(event, key))
            out["events"].append({"uri": model.uri, "extra": event.extra})
        out["queued"] = sorted({row.target_dag_id for row in session.scalars(select(Queue))})
    print("PROBE=" + json.dumps(out))
    """
)


def _env(home: Path, mls_server: Any, dags: Path, ol_file: Path) -> dict[str, str]:
    conn = json.loads(mls_server.conn_json())
    conn["extra"]["console_url"] = CONSOLE
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"))
        },
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # a paused DAG is not queued by events
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_MLS_DEFAULT": json.dumps(conn),
        "AIRFLOW_CONN_AWS_DEFAULT": mls_server.aws_conn_json(),
        **mls_server.aws_env(),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(ol_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mls_tests",
        "PYTHONWARNINGS": "ignore",
    }


def _run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{args}: {out[-5000:]}"
    return out


@pytest.fixture(scope="module")
def produced(mls_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("integration")
    dags = root / "dags"
    dags.mkdir()
    (dags / "mls_integration_producer.py").write_text(PRODUCER)
    shutil.copy(REPO / "dags_examples" / "mls_batch_prediction_on_new_version.py", dags)
    home = root / "home"
    home.mkdir()
    ol_file = root / "openlineage.jsonl"
    env = _env(home, mls_server, dags, ol_file)
    version = f"v{uuid.uuid4().hex[:8]}"
    table = f"integration_{uuid.uuid4().hex[:8]}"

    _run([AIRFLOW, "db", "migrate"], env)
    _run([AIRFLOW, "dags", "reserialize"], env)  # the consumer DAG is known to the scheduler's tables
    out = _run(
        [
            AIRFLOW,
            "dags",
            "test",
            "mls_integration_producer",
            "-c",
            json.dumps({"version": version, "table": table}),
        ],
        env,
    )
    assert dag_run_state(out) == "success", out[-5000:]
    probe = _run([sys.executable, "-c", PROBE], env)
    found = json.loads(probe.rsplit("PROBE=", 1)[1].strip().splitlines()[0])
    events = [json.loads(line) for line in ol_file.read_text().splitlines()] if ol_file.exists() else []
    return {"env": env, "version": version, "table": table, "probe": found, "openlineage": events}


@pytest.mark.e2e
def test_the_ui_reads_each_tasks_extra_link(produced: dict[str, Any], mls_server: Any) -> None:
    from airflow_provider_mls.links import prediction_table_url, registry_artifact_url

    links = produced["probe"]["links"]
    region = mls_server.aws_env().get("AWS_DEFAULT_REGION", "us-east-1")
    version, table = produced["version"], produced["table"]
    assert links["upload/Registry Artifact (S3)"] == registry_artifact_url(
        "mls-model-registry", f"churn_lr/{version}", region
    )
    assert links["create_table/Prediction Table (DynamoDB)"] == prediction_table_url(table, region)
    assert links["load/Prediction Table (DynamoDB)"] == prediction_table_url(table, region)
    deploy = links["deploy/MLS Model"]
    assert deploy.startswith("https://mls.example.com/models/") and deploy.endswith(f"?v={version}")


@pytest.mark.e2e
def test_the_deploy_announces_the_version_and_queues_the_dag_scheduled_on_the_model(
    produced: dict[str, Any],
) -> None:
    events = [e for e in produced["probe"]["events"] if e["uri"] == "mls://local/churn_lr"]
    if not AIRFLOW_V_3_0_PLUS:  # Airflow 2.11: no dataset events (see airflow_provider_mls.assets)
        assert events == [] and produced["probe"]["queued"] == []
        return
    assert [e["extra"]["version"] for e in events] == [produced["version"]]
    assert events[0]["extra"]["name"] == "churn_lr" and events[0]["extra"]["env"] == "local"
    assert produced["probe"]["queued"] == ["mls_batch_prediction_on_new_version"]


@pytest.mark.e2e
def test_openlineage_client_wrote_the_datasets_of_each_task(produced: dict[str, Any]) -> None:
    complete = {
        e["job"]["name"].rsplit(".", 1)[-1]: e
        for e in produced["openlineage"]
        if e.get("eventType") == "COMPLETE" and "." in e.get("job", {}).get("name", "")
    }
    assert {"upload", "load", "deploy"} <= set(complete), sorted(complete)

    def ids(event: dict[str, Any], side: str) -> list[str]:
        return [f"{d['namespace']}/{d['name']}" for d in event[side]]

    version = produced["version"]
    assert ids(complete["upload"], "outputs") == [f"s3://mls-model-registry/churn_lr/{version}/model.joblib"]
    assert ids(complete["deploy"], "inputs") == [f"s3://mls-model-registry/churn_lr/{version}/model.joblib"]
    assert ids(complete["deploy"], "outputs") == [f"mls://local/churn_lr/{version}"]
    (table,) = complete["load"]["outputs"]
    assert (
        table["namespace"].startswith("arn:aws:dynamodb:") and table["name"] == f"table/{produced['table']}"
    )
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 2


@pytest.mark.e2e
def test_the_consumer_example_refreshes_the_new_version(produced: dict[str, Any], mls_server: Any) -> None:
    env, version = produced["env"], produced["version"]
    out = _run(
        [
            AIRFLOW,
            "dags",
            "test",
            "mls_batch_prediction_on_new_version",
            "-c",
            json.dumps({"model_version": version}),
        ],
        env,
    )
    assert dag_run_state(out) == "success", out[-5000:]
    from airflow_provider_mls.hooks.mls import MLSHook

    os.environ["AIRFLOW_CONN_MLS_CHECK"] = env["AIRFLOW_CONN_MLS_DEFAULT"]
    try:
        model = MLSHook(mls_conn_id="mls_check").get_manual_model(name="churn_lr", version=version)
    finally:
        os.environ.pop("AIRFLOW_CONN_MLS_CHECK")
    assert model["table"].startswith(f"churn_lr_predictions_{version}_")
