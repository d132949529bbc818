"""The pipelines on a deployment of the production shape: PostgreSQL, Redis, the CeleryExecutor with two
workers that share no disk, a scheduler, a dag-processor, a triggerer and the api-server (``_deployment.py``).

Real runs made by the scheduler (the daily batch refresh's own scheduled run, and ``airflow dags trigger``
for the others), not ``airflow dags test``, against the local MLS server and its AWS endpoint (S3 registry,
DynamoDB tables, SageMaker). Each task runs on the other worker than the tasks right upstream of it, so a
DAG that hands a local file from one task to the next fails here. Airflow 3 only.

Checked: every run and task green; the tasks ran on both workers, each on the worker of its queue; the
AutoML waits were deferred and completed in the triggerer; and on the server, the models, registry
artifacts, tables and bucket moves the pipelines are for.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e._cluster import AIRFLOW_V3, ClusterError
from tests.e2e._deployment import (
    WORKERS,
    CeleryDeployment,
    Postgres,
    Redis,
    missing_services,
    temp_root,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags_examples"
# Long enough that the AutoML waits really defer, and that a trigger never fires before the scheduler has
# processed the deferring attempt's executor event (apache/airflow#71580).
TRAINING_SECONDS = 30  # even when a loaded machine is slow to start the sensor after the create
SERVER_START_SECONDS = 6
# The whole test is bounded: every wait gets what is left of BUDGET seconds and fails with the process logs
# when it runs out, before pytest-timeout (which could only dump stacks) would stop it.
BUDGET = 420
BATCH = "mls_batch_prediction_refresh"
TRIGGERED = {
    "mls_train_to_deploy": {"model_version": "v2"},
    "mls_automl_upgrade": {"version": "v2"},
    "mls_approval_gated_deploy": {"decision": "Approved"},
}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("airflow-clusters"),  # see tests/conftest.py
    pytest.mark.skipif(not AIRFLOW_V3, reason="the deployment test runs on Airflow 3 (api-server, task SDK)"),
]


@pytest.fixture
def deployment_root() -> Iterator[Path]:
    """Outside pytest's root-only temp dirs: the PostgreSQL user must enter it. Removed afterwards
    (the logs are in the failure message) unless ``MLS_E2E_KEEP`` is set."""
    import shutil

    root = temp_root("mls-e2e-deployment-")
    yield root
    if not os.environ.get("MLS_E2E_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(BUDGET + 60)
def test_pipelines_run_green_on_celery_workers_postgres_redis(
    deployment_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = missing_services()
    assert not missing, f"missing for the deployment test: {missing}; run scripts/e2e-services.sh (as root)"

    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.pytest_plugin import AWS_VARIABLES

    started = time.monotonic()

    def left(at_most: float) -> float:
        return max(1.0, min(at_most, BUDGET - (time.monotonic() - started)))

    def mark(what: str) -> None:
        print(f"[deployment] {what} after {time.monotonic() - started:.1f}s", flush=True)

    with contextlib.ExitStack() as stack:
        mls = stack.enter_context(
            LocalMLSServer(
                deployment_root / "mls",
                port=0,
                password="mls-e2e-deployment",
                training_seconds=TRAINING_SECONDS,
                server_start_seconds=SERVER_START_SECONDS,
            )
        )
        postgres = stack.enter_context(Postgres(deployment_root / "postgres"))
        redis = stack.enter_context(Redis(deployment_root / "redis"))
        mark("MLS server, PostgreSQL and Redis up")

        for name in AWS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(deployment_root / "no-aws-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(deployment_root / "no-aws-credentials"))
        connections = {
            "AIRFLOW_CONN_MLS_DEFAULT": mls.conn_json(),
            "AIRFLOW_CONN_AWS_DEFAULT": mls.aws_conn_json(),
            **mls.aws_env(),
        }
        for name, value in connections.items():
            monkeypatch.setenv(name, value)
        seeded = _seed(mls)
        mark("previous versions deployed (scripts/demo_seed.py)")

        env = {
            **connections,
            "AWS_CONFIG_FILE": str(deployment_root / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(deployment_root / "no-aws-credentials"),
        }
        cluster = stack.enter_context(
            CeleryDeployment(
                deployment_root / "airflow",
                DAGS,
                postgres=postgres,
                redis=redis,
                extra_env=env,
                startup_timeout=left(240),
            )
        )
        mark("deployment healthy (2 Celery workers, scheduler, dag-processor, triggerer, api-server)")
        if os.geteuid() == 0:  # as on CI: each worker has its own TMPDIR and HOME at the same paths
            assert cluster.private_mounts, "root, but the workers could not get mount namespaces (unshare)"
            for worker in WORKERS:
                env = cluster.process_env(worker)
                mounts = cluster.private_mount_points(worker)
                assert {env["TMPDIR"], env["HOME"]} <= mounts, f"{worker}: {mounts}"
        try:
            _run_and_check(cluster, mls, seeded, mark, left)
        except BaseException:
            print(f"MLS server log:\n{mls.log_path.read_text('utf-8', 'replace')[-4000:]}")
            raise


def _seed(mls: Any) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from demo_seed import seed
    finally:
        sys.path.remove(str(REPO / "scripts"))
    with mls.admin() as admin:
        result: dict[str, Any] = seed(admin)
    return result


def _run_and_check(cluster: CeleryDeployment, mls: Any, seeded: dict[str, Any], mark: Any, left: Any) -> None:
    dag_ids = [BATCH, *TRIGGERED]
    cluster.wait_until(
        lambda: _parsed(cluster, dag_ids),
        left(180),
        lambda: f"DAGs parsed: {dag_ids}; {_import_errors(cluster)}",
        2,
    )
    mark("DAGs parsed")
    for dag_id in dag_ids:
        _unpause(cluster, dag_id)
    # The @daily batch refresh: unpaused, the scheduler makes its latest run by itself.
    cluster.wait_until(lambda: bool(_runs(cluster, BATCH)), left(120), f"the scheduled run of {BATCH}", 2)
    scheduled = _runs(cluster, BATCH)[0]
    assert scheduled["run_type"] == "scheduled", scheduled
    day = scheduled["logical_date"][:10].replace("-", "")
    # Triggered runs get a logical date, as the UI's trigger form gives one: the DAGs' templates use ds and
    # ts, which an Airflow 3 run without a logical date does not have. The batch refresh's second run is
    # the same day again (it queues behind the first, max_active_runs=1): re-running a day is safe.
    now = max(datetime.now(UTC), datetime.fromisoformat(scheduled["logical_date"]) + timedelta(seconds=1))
    triggered = {**TRIGGERED, BATCH: {}}
    run_ids = {dag_id: f"e2e__{dag_id}" for dag_id in triggered}
    with ThreadPoolExecutor(len(triggered)) as pool:  # each CLI call imports Airflow: seconds apiece
        list(
            pool.map(
                lambda dag_id: cluster.cli(
                    "dags",
                    "trigger",
                    dag_id,
                    "-r",
                    run_ids[dag_id],
                    "-l",
                    now.replace(microsecond=0).isoformat(),
                    "-c",
                    json.dumps(triggered[dag_id]),
                ),
                triggered,
            )
        )
    runs = {(BATCH, scheduled["dag_run_id"]), *run_ids.items()}
    mark("runs triggered")

    pending = set(runs)

    def all_green() -> bool:
        cluster.check_alive()
        for dag_id, run_id in sorted(pending):
            state = cluster.run_state(dag_id, run_id)
            if state == "failed":
                tis = {ti["task_id"]: ti["state"] for ti in cluster.task_instances(dag_id, run_id)}
                raise ClusterError(f"DAG run {dag_id}/{run_id} failed; tasks: {tis}\n{cluster.logs()}")
            if state == "success":
                pending.discard((dag_id, run_id))
                mark(f"{dag_id}/{run_id} success")
        return not pending

    cluster.wait_until(all_green, left(BUDGET), lambda: f"runs green, still pending: {sorted(pending)}", 3)

    # Every task green, each on the worker of its queue, both workers used.
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for dag_id, run_id in runs:
        tis = cluster.task_instances(dag_id, run_id)
        tasks[(dag_id, run_id)] = tis
        states = {ti["task_id"]: ti["state"] for ti in tis}
        expected = {task_id: "success" for task_id in states}
        if run_id == run_ids[BATCH]:  # the same day again: the model already reads today's table
            expected.update(old_table="skipped", drop_old_table="skipped")
        assert states == expected, tis
    _check_workers(cluster, tasks)
    _check_deferred_in_triggerer(cluster, "mls_automl_upgrade", "e2e__mls_automl_upgrade")
    _check_results(mls, seeded, day=day)
    mark("all checks passed")


# ---------------------------------------------------------------------- through the api-server
def _parsed(cluster: CeleryDeployment, dag_ids: list[str]) -> bool:
    cluster.check_alive()
    found = {d["dag_id"] for d in cluster.api("dags", dag_id_pattern="mls_%", limit=100)["dags"]}
    return set(dag_ids) <= found


def _import_errors(cluster: CeleryDeployment) -> str:
    with contextlib.suppress(ClusterError):
        return json.dumps(cluster.api("importErrors")["import_errors"])[:4000]
    return "(import errors unavailable)"


def _unpause(cluster: CeleryDeployment, dag_id: str) -> None:
    import requests

    resp = requests.patch(
        f"http://127.0.0.1:{cluster.api_port}/api/v2/dags/{dag_id}",
        json={"is_paused": False},
        headers={"Authorization": f"Bearer {cluster._token()}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text


def _runs(cluster: CeleryDeployment, dag_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cluster.api(f"dags/{dag_id}/dagRuns", order_by="logical_date")["dag_runs"]
    return rows


# ---------------------------------------------------------------------- checks
def _check_workers(cluster: CeleryDeployment, tasks: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """Each task's log was written on the machine of the worker that serves its queue, and no other."""
    queue_of_worker = dict(WORKERS)
    logs = {worker: cluster.task_logs_on(worker) for worker in WORKERS}
    used: set[str] = set()
    for (dag_id, run_id), tis in tasks.items():
        for ti in tis:
            if not ti.get("hostname"):  # skipped by the scheduler (drop_old_table after a skip): ran nowhere
                assert ti["state"] == "skipped", ti
                continue
            where = [
                worker
                for worker, files in logs.items()
                if any(
                    f"dag_id={dag_id}" in str(p)
                    and f"run_id={run_id}" in str(p)
                    and f"task_id={ti['task_id']}" in str(p)
                    and ".trigger." not in p.name
                    for p in files
                )
            ]
            expected = [w for w, q in queue_of_worker.items() if q == ti["queue"]]
            assert where == expected, (
                f"{dag_id}/{run_id}/{ti['task_id']} (queue {ti['queue']}) ran on {where}"
            )
            used.update(where)
    assert used == set(WORKERS), f"tasks ran on {used} only"
    # The edge that used to hand over a local file: training and deployment run on different workers.
    train = {ti["task_id"]: ti["queue"] for ti in tasks[("mls_train_to_deploy", "e2e__mls_train_to_deploy")]}
    assert train["train_and_register"] != train["deploy"], train


def _check_deferred_in_triggerer(cluster: CeleryDeployment, dag_id: str, run_id: str) -> None:
    """The AutoML waits deferred: the triggerer (on the control plane) ran their triggers until the state
    they wait for, and fired."""
    settled = {"training_done": "is DONE", "start_server": "is RUNNING", "stop_previous_server": "is STOPPED"}
    for task, state in settled.items():
        files = [
            p
            for p in cluster.task_logs_on("control-plane")
            if f"dag_id={dag_id}/" in str(p)
            and f"run_id={run_id}/" in str(p)
            and f"task_id={task}/" in str(p)
            and ".trigger." in p.name
        ]
        assert files, f"{dag_id}/{task} did not defer: no trigger log on the triggerer\n{cluster.logs()}"
        text = "\n".join(p.read_text("utf-8", "replace") for p in files)
        assert "MLS check 1 of " in text and state in text and "Trigger fired event" in text, text[-3000:]


def _check_results(mls: Any, seeded: dict[str, Any], *, day: str) -> None:
    import logging

    logging.getLogger("botocore").setLevel(logging.WARNING)
    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    hook = MLSHook()
    registry = MLSModelRegistryHook()
    tables = PredictionTableHook()
    buckets = {
        b["name"]: b["prediction"]["ml_model"]
        for b in hook.run("GET", f"/api/v1/experiments/{seeded['experiment_id']}/buckets")
    }

    # mls_train_to_deploy: in the registry, deployed with its model.json and metrics, serving bucket main.
    v2 = hook.get_manual_model(name="churn_lr", version="v2")
    stored = registry.get_meta("churn_lr", "v2")
    assert stored is not None and v2["model_data"] == stored["model_data"]
    assert {k: v2["model_meta"][k] for k in stored} == stored
    assert v2["model_meta"]["performance"]["auc"] > 0.65
    assert hook.get_artifact_info("churn_lr", "v2")["size"] > 0
    assert registry.list_versions("churn_lr") == ["v1", "v2"]
    assert buckets["main"] == v2["id"]

    # mls_batch_prediction_refresh, the day run twice: the model reads the day's full table; the seed's
    # table is dropped.
    batch = hook.get_manual_model(name="churn_batch", version="v1")
    assert batch["table"] == f"churn_batch_predictions_{day}", batch
    assert tables.count_items(batch["table"]) == 1000
    assert tables.is_active(batch["table"]) and not tables.is_loading(batch["table"])
    assert hook.is_batch_prediction_ready(batch)
    assert tables.describe_table("churn_batch_predictions_seed") is None

    # mls_automl_upgrade: v2 trained, with v1's handler, RUNNING and serving; v1 stopped.
    automl_v1 = hook.get_automl_model(name="churn_automl", version="v1")
    automl_v2 = hook.get_automl_model(name="churn_automl", version="v2")
    assert automl_v2["status"] == "DONE"
    assert hook.get_automl_model_server_handler(automl_v2) == hook.get_automl_model_server_handler(automl_v1)
    assert hook.get_automl_model_server_status(automl_v2) == "RUNNING"
    assert hook.get_automl_model_server_status(automl_v1) == "STOPPED"
    assert buckets["automl"] == automl_v2["id"]

    # mls_approval_gated_deploy: the approved SageMaker version is the MLS model, served from the registry.
    deployed = [m for m in hook.list_all_manual_models(name="churn_model") if m["name"] == "churn_model"]
    assert len(deployed) == 1, deployed
    model = hook.get_model(deployed[0]["id"])  # a list item names it; the model is read by id
    assert model["model_data"].startswith(f"s3://{registry.bucket}/churn_model/")
    assert model["model_meta"]["model_package"]["approval_description"].startswith("Approved")
    assert hook.is_online_prediction_ready(model)
    versions = SageMakerModelRegistryHook().list_versions("churn-model")
    assert [v["ModelApprovalStatus"] for v in versions] == ["Approved"]
