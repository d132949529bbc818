"""A person approves model versions through Airflow's REST API, on a real Airflow 3 deployment.

One cluster (``tests/e2e/_cluster.py``: api-server, dag-processor, scheduler, triggerer, LocalExecutor)
with two named users of the simple auth manager, ``alice`` (assigned) and ``bob`` (not). Five runs wait
in ``awaiting_input`` at once, and are answered with ``PATCH .../hitlDetails`` as a reviewer's browser
does:

* an MLS model: Reject without a comment (not recorded, asked again), then Approve -> the ``approval``
  entry in its meta names alice, the downstream task runs; bob's answer is refused (403);
* an MLS model: Reject with a comment -> recorded, the downstream task skipped;
* a model package version: Approve, another: Reject -> ``ModelApprovalStatus`` and the approval
  description naming alice (the local server's SageMaker endpoint);
* an MLS model with a 5-second response timeout, never answered -> rejected by nobody, downstream skipped;
* the example ``mls_train_review_deploy``: train, deploy dark, wait for online readiness, a person
  approves, the bucket that served the previous version now serves the new one;
* the example ``mls_approval_in_airflow`` (its group and MLS model name made unique): a person
  approves the registered version in Airflow, and that version is deployed to MLS.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e._cluster import AIRFLOW_V3, AirflowCluster
from tests.operators._support import Mls

REPO = Path(__file__).resolve().parents[2]


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not AIRFLOW_V3, reason="human-in-the-loop tasks need Airflow 3.1+"),
]

DAGS = textwrap.dedent(
    """
    from datetime import timedelta

    import pendulum
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    from airflow_provider_mls.operators.approval import MLSModelApprovalOperator, ModelPackageApprovalOperator

    START = pendulum.datetime(2026, 1, 1, tz="UTC")
    ALICE = {"id": "alice", "name": "alice"}

    with DAG("approve_mls", schedule=None, start_date=START, params={"model_id": 0, "serving_id": 0}):
        MLSModelApprovalOperator(
            task_id="approve",
            model_id="{{ params.model_id }}",
            serving_model_id="{{ params.serving_id }}",
            assigned_users=[ALICE],
        ) >> EmptyOperator(task_id="deploy")

    with DAG("approve_package", schedule=None, start_date=START, params={"arn": ""}):
        ModelPackageApprovalOperator(
            task_id="approve", model_package_arn="{{ params.arn }}", assigned_users=[ALICE]
        ) >> EmptyOperator(task_id="deploy")

    with DAG("approve_or_time_out", schedule=None, start_date=START, params={"model_id": 0}):
        MLSModelApprovalOperator(
            task_id="approve", model_id="{{ params.model_id }}", response_timeout=timedelta(seconds=5)
        ) >> EmptyOperator(task_id="deploy")
    """
)
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


class Reviewer:
    """A user of the deployment's REST API (a JWT from ``POST /auth/token``)."""

    def __init__(self, base: str, user: str) -> None:
        self.base = base
        response = requests.post(
            f"{base}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=30
        )
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def _url(self, dag_id: str, run_id: str) -> str:
        return f"{self.base}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"

    def detail(self, dag_id: str, run_id: str) -> dict[str, Any]:
        response = requests.get(self._url(dag_id, run_id), headers=self.headers, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def answer(self, dag_id: str, run_id: str, option: str, comment: str) -> requests.Response:
        body = {"chosen_options": [option], "params_input": {"comment": comment}}
        return requests.patch(self._url(dag_id, run_id), headers=self.headers, json=body, timeout=30)


def test_reviewers_answer_through_the_rest_api_and_the_decision_is_written_back(
    tmp_path: Path, mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())
    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    mls = MLSHook()
    name = f"e2e_approval_{uuid.uuid4().hex[:8]}"

    def model(version: str, auc: float) -> int:
        created = mls.create_manual_model(
            name, version, model_lib="sklearn", features="a,b", model_meta={"performance": {"auc": auc}}
        )
        return int(created["id"])

    serving, approved, rejected, timed_out = (
        model("v1", 0.8),
        model("v2", 0.9),
        model("v3", 0.7),
        model("v4", 0.85),
    )
    registry = SageMakerModelRegistryHook(aws_conn_id=None)
    group = f"e2e-approval-{uuid.uuid4().hex[:8]}"
    registry.ensure_group(group)
    pkg_ok, pkg_no = (
        str(
            registry.register_version(group, model_data_url=f"s3://models/{group}/{n}.tar.gz", image="img:1")[
                "ModelPackageArn"
            ]
        )
        for n in ("a", "b")
    )

    # The example: its bucket serves the first version now.
    admin = Mls(mls_server)
    experiment = admin.experiment(f"e2e-approval-{uuid.uuid4().hex[:8]}")
    admin.bucket(experiment["id"], "main", mls.get_manual_model(id=serving))

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "approvals.py").write_text(DAGS)
    example = "mls_train_review_deploy"
    (dags / f"{example}.py").write_text((REPO / "dags_examples" / f"{example}.py").read_text())
    sm_example, sm_group, sm_name = "mls_approval_in_airflow", f"e2e-sm-{uuid.uuid4().hex[:8]}", f"{name}_sm"
    source = (REPO / "dags_examples" / f"{sm_example}.py").read_text()
    source = source.replace('GROUP = "churn-model"', f'GROUP = "{sm_group}"', 1)
    source = source.replace('MLS_NAME = "churn_model"', f'MLS_NAME = "{sm_name}"', 1)
    assert sm_group in source and sm_name in source
    (dags / f"{sm_example}.py").write_text(source)
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps(PASSWORDS))
    env = {
        "AIRFLOW_CONN_MLS_DEFAULT": mls_server.conn_json(),
        "AIRFLOW_CONN_AWS_DEFAULT": mls_server.aws_conn_json(),
        **mls_server.aws_env(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin,bob:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }
    runs = {
        ("approve_mls", "approve"): {"model_id": approved, "serving_id": serving},
        ("approve_mls", "reject"): {"model_id": rejected, "serving_id": serving},
        ("approve_package", "approve"): {"arn": pkg_ok},
        ("approve_package", "reject"): {"arn": pkg_no},
        ("approve_or_time_out", "silence"): {"model_id": timed_out},
        (example, "example"): {
            "model_name": name,
            "model_version": "v5",
            "experiment": experiment["name"],
            "bucket": "main",
        },
        (sm_example, "example"): {},
    }
    with AirflowCluster(home, dags, extra_env=env) as cluster:
        for dag_id in ("approve_mls", "approve_package", "approve_or_time_out", example, sm_example):
            cluster.unpause_when_parsed(dag_id)
        for (dag_id, run_id), conf in runs.items():
            cluster.trigger(dag_id, run_id=run_id, conf=conf)
        for dag_id, run_id in runs:
            if run_id not in ("silence", "example"):
                cluster.wait_for_task_state(dag_id, run_id, "approve", "awaiting_input", timeout=240)
        base = f"http://127.0.0.1:{cluster.api_port}"
        alice, bob = Reviewer(base, "alice"), Reviewer(base, "bob")

        # What the reviewer sees: the proposal next to the serving version.
        detail = alice.detail("approve_mls", "approve")
        assert detail["subject"] == f"Deploy {name} v2?"
        assert detail["options"] == ["Approve", "Reject"]
        assert f"| model | {name} v2 (id {approved}) | {name} v1 (id {serving}) |" in detail["body"]
        assert "| auc | 0.9 | 0.8 | +0.1 |" in detail["body"]

        # Not assigned: refused. A rejection without a comment: accepted by Airflow, then asked again.
        assert bob.answer("approve_mls", "approve", "Approve", "me too").status_code == 403
        assert alice.answer("approve_mls", "approve", "Reject", "").status_code == 200
        cluster.wait_until(
            lambda: (
                not alice.detail("approve_mls", "approve")["response_received"]
                and cluster.task_states("approve_mls", "approve")["approve"] == "awaiting_input"
            ),
            timeout=120,
            what="the rejection without a comment cleared and the question open again",
        )
        assert mls.get_manual_model(id=approved)["model_meta"].get("approval") is None
        for dag_id, run_id, option, comment in (
            ("approve_mls", "approve", "Approve", "better auc, same features"),
            ("approve_mls", "reject", "Reject", "auc dropped to 0.7"),
            ("approve_package", "approve", "Approve", "card reviewed"),
            ("approve_package", "reject", "Reject", "no card"),
        ):
            response = alice.answer(dag_id, run_id, option, comment)
            assert response.status_code == 200, response.text
        # The example: trained, deployed dark, ready online, then asked.
        cluster.wait_for_task_state(example, "example", "review", "awaiting_input", timeout=300)
        assert mls.get_manual_model(name=name, version="v5")["id"] not in (
            b["prediction"]["ml_model"] for b in admin.buckets(experiment["id"])
        )  # dark: no bucket serves it yet
        for dag_id in (example, sm_example):
            if dag_id == sm_example:
                cluster.wait_for_task_state(dag_id, "example", "review", "awaiting_input", timeout=300)
            response = requests.patch(
                f"{base}/api/v2/dags/{dag_id}/dagRuns/example/taskInstances/review/-1/hitlDetails",
                headers=alice.headers,
                json={"chosen_options": ["Approve"], "params_input": {"comment": "ship it"}},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        for dag_id, run_id in runs:
            cluster.wait_for_run_state(dag_id, run_id, "success", timeout=240)
        states = {key: cluster.task_states(*key)["deploy"] for key in runs if key[1] != "example"}
        example_states = cluster.task_states(example, "example")
        sm_states = cluster.task_states(sm_example, "example")

    assert states == {
        ("approve_mls", "approve"): "success",
        ("approve_mls", "reject"): "skipped",
        ("approve_package", "approve"): "success",
        ("approve_package", "reject"): "skipped",
        ("approve_or_time_out", "silence"): "skipped",
    }
    alice_user = {"id": "alice", "name": "alice"}
    entry = mls.get_manual_model(id=approved)["model_meta"]["approval"]
    assert entry["decision"] == "approved" and entry["by"] == alice_user
    assert entry["comment"] == "better auc, same features"
    assert entry["dag_run"] == {"dag_id": "approve_mls", "run_id": "approve", "task_id": "approve"}
    assert entry["at"].startswith("20")
    assert mls.get_manual_model(id=approved)["model_meta"]["performance"] == {
        "auc": 0.9
    }  # merged, not replaced
    entry = mls.get_manual_model(id=rejected)["model_meta"]["approval"]
    assert (entry["decision"], entry["by"], entry["comment"]) == (
        "rejected",
        alice_user,
        "auc dropped to 0.7",
    )
    entry = mls.get_manual_model(id=timed_out)["model_meta"]["approval"]
    assert (entry["decision"], entry["by"]) == ("rejected", None)
    assert entry["comment"] == "no response within 0:00:05: rejected by default (on_timeout='reject')"
    assert "approval" not in mls.get_manual_model(id=serving)["model_meta"]

    ok, no = registry.approval(pkg_ok), registry.approval(pkg_no)
    assert ok["status"] == "Approved" and no["status"] == "Rejected"
    assert ok["description"].startswith("Approved in Airflow by alice (id alice) at ")
    assert ok["description"].endswith(": card reviewed [dag run approve_package/approve, task approve]")
    assert no["description"].endswith(": no card [dag run approve_package/reject, task approve]")

    assert set(example_states.values()) == {"success"}, example_states
    new = mls.get_manual_model(name=name, version="v5")
    assert new["model_meta"]["approval"]["comment"] == "ship it"
    assert new["model_meta"]["approval"]["by"] == alice_user
    assert new["model_meta"]["performance"]["auc"] > 0.6
    assert [b["prediction"]["ml_model"] for b in admin.buckets(experiment["id"])] == [new["id"]]

    assert set(sm_states.values()) == {"success"}, sm_states
    (version,) = registry.list_versions(sm_group)
    package = registry.approval(version["ModelPackageArn"])
    assert package["status"] == "Approved"
    assert package["description"].startswith("Approved in Airflow by alice (id alice) at ")
    (listed,) = mls.list_all_manual_models(name=sm_name)
    deployed = mls.get_manual_model(id=listed["id"])  # a list item need not carry model_meta
    assert deployed["model_meta"]["model_package"]["arn"] == version["ModelPackageArn"]
    assert deployed["model_meta"]["model_package"]["approval_description"] == package["description"]
