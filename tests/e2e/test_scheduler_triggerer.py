"""A deferred MLS sensor, handed by a real scheduler to a real triggerer, completes once its table is ready.

``airflow dags test`` runs triggers inline; here the scheduler, the triggerer (and, on Airflow 3, the
api-server and dag-processor) are separate processes, see ``tests/e2e/_cluster.py``.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e._cluster import AIRFLOW_VERSION, AirflowCluster

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "mls_e2e_deferred"


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_deferred_sensor_completes_in_real_triggerer(
    tmp_path: Path, mls_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"e2e_{uuid.uuid4().hex[:12]}"
    run_id = f"e2e__{table}"
    started = time.monotonic()
    automl_id = _trained_automl_model(mls_server, monkeypatch, table)
    from airflow_provider_mls.hooks.mls import MLSHook

    model_id = int(MLSHook().create_manual_model(table, "v1")["id"])  # its artifact comes later

    def mark(what: str) -> None:
        print(f"[Airflow {AIRFLOW_VERSION}] {what} after {time.monotonic() - started:.1f}s")

    env = {"AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json()}  # type: ignore[attr-defined]
    with AirflowCluster(tmp_path / "airflow-home", DAGS, extra_env=env) as cluster:
        mark("cluster healthy")
        cluster.unpause_when_parsed(DAG_ID)
        cluster.trigger(
            DAG_ID, run_id=run_id, conf={"table": table, "model_id": model_id, "automl_id": automl_id}
        )

        # The table does not exist yet: the sensor's first check fails, so it must hand the wait over.
        cluster.wait_for_task_state(DAG_ID, run_id, "wait_table", "deferred", timeout=120)
        mark("wait_table deferred")
        # The worker that deferred exits and the executor reports that attempt "success". If the trigger
        # fires before the scheduler has processed that event, Airflow 3.3.2 takes it for the resumed attempt
        # and fails the task ("state changed externally"; apache/airflow#71580, #72716). Not the provider's
        # doing, so don't race it: make the table ready only once the scheduler has seen the event.
        cluster.wait_for_log(
            "scheduler",
            r"Received executor event with state \w+ for task instance "
            rf"TaskInstanceKey\(dag_id='{DAG_ID}', task_id='wait_table', run_id='{re.escape(run_id)}'",
        )

        resp = requests.put(
            f"{mls_server.url}/local/tables/{table}",  # type: ignore[attr-defined]
            auth=mls_server.auth,  # type: ignore[attr-defined]
            json={"is_active": True, "is_loading": False},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text

        # The reschedule-mode sensor gives its slot back between checks until the artifact appears;
        # from its second execution on it recalls the model its first check read.
        cluster.wait_for_task_state(DAG_ID, run_id, "wait_artifact", "up_for_reschedule", timeout=120)
        mark("wait_artifact up_for_reschedule")
        cluster.wait_until(
            lambda: any(
                "resolved by the first check of this try" in p.read_text(errors="replace")
                for p in cluster.task_log_files()
                if "task_id=wait_artifact" in str(p)
            ),
            timeout=120,
            what="a reschedule of wait_artifact that recalls the model",
        )
        mark("wait_artifact recalled the model")
        resp = requests.put(
            f"{mls_server.url}/local/artifacts/{table}/v1",  # type: ignore[attr-defined]
            auth=mls_server.auth,  # type: ignore[attr-defined]
            json={},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text

        cluster.wait_for_run_state(DAG_ID, run_id, "success", timeout=180)
        mark("DAG run success")

        states = cluster.task_states(DAG_ID, run_id)
        expected = {
            name: "success"
            for name in ("wait_table", "check_result", "wait_artifact", "start_server", "check_started")
        }
        assert states == expected, f"{states}\n{cluster.logs()}"
        from airflow_provider_mls.hooks.mls import MLSHook

        assert MLSHook().get_automl_model_server_status(automl_id) == "RUNNING"
        # The trigger ran in the triggerer process (its lines go to the *.trigger.<job>.log it writes).
        triggerer_log = cluster.triggerer_log()
        assert "MLSCheckTrigger" in triggerer_log, cluster.logs()
        assert f"batch prediction table '{table}' is active and not loading" in triggerer_log, cluster.logs()
        # The downstream task got the sensor's return value over XCom and checked it.
        check_logs = [p.read_text() for p in cluster.task_log_files() if "task_id=check_result" in str(p)]
        assert any(f"sensor result OK: {{'table': '{table}'" in log for log in check_logs), cluster.logs()
        started_logs = [p.read_text() for p in cluster.task_log_files() if "task_id=check_started" in str(p)]
        assert any("start result OK" in log for log in started_logs), cluster.logs()
        # The reschedule memory is gone once the sensor's try ended.
        variables = cluster.cli("variables", "list", "-o", "json").stdout
        assert "mls_provider_wait_" not in variables, variables


def _trained_automl_model(mls_server: object, monkeypatch: pytest.MonkeyPatch, tag: str) -> int:
    """An AutoML model whose training is DONE and whose server is STOPPED, for ``start_server``."""
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())  # type: ignore[attr-defined]
    from airflow_provider_mls.hooks.mls import MLSHook

    hook = MLSHook()
    dataset = hook.run(
        "POST",
        "/api/v1/datasets",
        json={
            "name": f"ds_{tag}",
            "type": "classification",
            "base_feature_conf": {},
            "label_data_conf": {"source_type": "s3", "source_path": "s3://e2e/labels.csv"},
        },
    )
    model = hook.create_automl_model(f"automl_{tag}", "v1", "e2e", dataset_id=dataset["id"])
    hook.run("POST", f"/local/models/{model['id']}/training", json={"status": "DONE"})
    return int(model["id"])
