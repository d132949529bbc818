"""Event-driven approval on a real Airflow 3 deployment: approving a model package version starts the deploy DAG.

The example ``mls_deploy_on_approval`` (its group and MLS model name made unique for this test, its
poll interval shortened) runs in a cluster of separate processes (``tests/e2e/_cluster.py``): the
dag-processor registers the asset and its watcher, the triggerer runs
``ModelPackageApprovedEventTrigger`` against the local server's AWS endpoint, the scheduler starts a
DAG run from the asset event, and the run deploys the approved version to MLS.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._cluster import AIRFLOW_V3, AirflowCluster, _json_payload

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "mls_deploy_on_approval"


@pytest.mark.e2e
@pytest.mark.timeout(600)
@pytest.mark.skipif(not AIRFLOW_V3, reason="event-driven scheduling (AssetWatcher) is Airflow 3")
def test_an_approval_starts_a_run_that_deploys_that_version(
    tmp_path: Path, mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = f"e2e-approvals-{uuid.uuid4().hex[:8]}"
    mls_name = f"e2e_on_approval_{uuid.uuid4().hex[:8]}"
    source = (REPO / "dags_examples" / "mls_deploy_on_approval.py").read_text()
    source = source.replace('GROUP = "churn-model"', f'GROUP = "{group}"', 1)
    source = source.replace('MLS_NAME = "churn_model"', f'MLS_NAME = "{mls_name}"', 1)
    source = source.replace("poke_interval=60", "poke_interval=2", 1)
    assert group in source and mls_name in source and "poke_interval=2" in source
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mls_deploy_on_approval.py").write_text(source)

    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    registry = SageMakerModelRegistryHook(aws_conn_id=None)
    registry.ensure_group(group)

    def register(status: str) -> str:
        url = f"s3://models/{group}/{uuid.uuid4().hex[:6]}/model.tar.gz"
        return str(
            registry.register_version(group, model_data_url=url, image="img:1", approval_status=status)[
                "ModelPackageArn"
            ]
        )

    before = register("Approved")  # approved before the watch: the baseline, never deployed
    pending = register("PendingManualApproval")
    number = pending.rsplit("/", 1)[-1]
    # Its artifact in the MLS registry, so the DAG's online_ready sensor can succeed.
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())
    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

    MLSModelRegistryHook(aws_conn_id=None).put_version(
        mls_name, f"v{number}", b"model", model_lib="sklearn", model_lib_version="1.3.0", features=["a"]
    )

    env = {
        "AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json(),
        "AIRFLOW_CONN_AWS_DEFAULT": mls_server.aws_conn_json(),
        **mls_server.aws_env(),
    }
    with AirflowCluster(tmp_path / "airflow-home", dags, extra_env=env) as cluster:
        cluster.unpause_when_parsed(DAG_ID)
        cluster.wait_until(
            lambda: f"Watching {group}" in cluster.triggerer_log(),
            timeout=180,
            what="the triggerer watching the group",
        )
        registry.update_version(pending, approval_status="Approved", approval_description="e2e reviewer")

        def runs() -> list[dict[str, Any]]:
            out = cluster.cli("dags", "list-runs", DAG_ID, "-o", "json").stdout
            try:
                return list(_json_payload(out) or [])
            except ValueError:  # no runs yet: the CLI prints no JSON
                return []

        cluster.wait_until(
            lambda: any(r.get("state") == "success" for r in runs()),
            timeout=240,
            what=f"a successful run of {DAG_ID} started by the approval",
        )
        time.sleep(6)  # three more polls: nothing else may start a run
        all_runs = runs()
        assert len(all_runs) == 1, json.dumps(all_runs)
        assert all_runs[0].get("run_type") in (None, "asset_triggered"), all_runs[0]

    from airflow_provider_mls.hooks.mls import MLSHook

    model = MLSHook().get_manual_model(name=mls_name, version=f"v{number}")
    assert model["model_meta"]["model_package"]["arn"] == pending
    assert model["model_meta"]["model_package"]["approval_description"] == "e2e reviewer"
    deployed = [m["version"] for m in MLSHook().list_all_manual_models(name=mls_name)]
    assert deployed == [f"v{number}"], (before, deployed)
