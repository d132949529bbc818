"""Train, deploy dark, let a person approve in Airflow, then move the traffic.

1. ``train_and_register``: a small churn model (plain Python) evaluated on a holdout, put in the MLS
   model registry (``model.joblib`` and ``model.json`` under ``<name>/<version>/``).
2. ``deploy_dark``: the new version as an MLS manual model, with its holdout metrics in the meta. No
   bucket points at it yet: it serves no traffic.
3. ``online_prediction_ready``: its artifact is in the registry (deferrable).
4. ``review``: ``MLSModelApprovalOperator`` asks a person in the Airflow UI ("Required actions"):
   the new version next to the model that bucket ``params.bucket`` of experiment
   ``params.experiment`` serves now (metrics, features, model library, links). Approve or Reject
   (a rejection needs a comment); the decision is written into the new version's meta as
   ``approval`` (who, when, why, which DAG run). Nobody answers within 2 days: rejected.
5. ``move_traffic``: on approval, every bucket served by the current model moves to the new one.
   On rejection it is skipped (and says why in the log); the new version stays dark. The bucket
   must serve a model now (the previous version): that model's buckets are the ones that move.

Needs Airflow 3.1+ (human-in-the-loop tasks). Reviewers answer in the UI, or through the REST API:
``PATCH /api/v2/dags/mls_train_review_deploy/dagRuns/<run_id>/taskInstances/review/-1/hitlDetails``
with ``{"chosen_options": ["Approve"], "params_input": {"comment": "..."}}``. See ``docs/approval.md``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.approval import MLSModelApprovalOperator
from airflow_provider_mls.operators.mls import CreateManualModelOperator, MigrateBucketsOperator
from airflow_provider_mls.sensors.mls import OnlinePredictionReadySensor

FEATURES = ["age", "monthly_charge", "tenure_months", "support_calls"]
# params.model_version, else when the run was due (a manual run of Airflow 3 has no logical date)
VERSION = "{{ params.model_version or 'v' ~ dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}"


def _train(seed: int) -> tuple[dict[str, Any], dict[str, float]]:
    """A scorecard on synthetic customers (churn from a known rule plus noise); its holdout metrics."""
    import random

    rng = random.Random(seed)
    rows = [
        [rng.uniform(18, 80), rng.uniform(10, 120), rng.uniform(0, 72), rng.randint(0, 8)]
        for _ in range(2000)
    ]
    labels = [
        int(0.03 * (r[1] - 65) - 0.06 * (r[2] - 36) + 0.5 * (r[3] - 4) + rng.gauss(0, 1) > 0) for r in rows
    ]
    weights = {"monthly_charge": 0.03, "tenure_months": -0.06, "support_calls": 0.5}
    model = {"kind": "scorecard", "features": FEATURES, "weights": weights, "center": [45, 65, 36, 4]}

    def score(r: list[float]) -> float:
        return 0.03 * (r[1] - 65) - 0.06 * (r[2] - 36) + 0.5 * (r[3] - 4)

    holdout = list(zip(rows[1500:], labels[1500:], strict=True))
    pos = [score(r) for r, y in holdout if y]
    neg = [score(r) for r, y in holdout if not y]
    auc = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / max(1, len(pos) * len(neg))
    accuracy = sum((score(r) > 0) == bool(y) for r, y in holdout) / len(holdout)
    return model, {"auc": round(auc, 4), "accuracy": round(accuracy, 4)}


@dag(
    dag_id="mls_train_review_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example", "approval"],
    default_args={"retries": 0},
    params={"model_name": "churn_scorecard", "model_version": "", "experiment": "churn", "bucket": "main"},
)
def mls_train_review_deploy() -> None:
    @task
    def train_and_register(name: str, version: str) -> dict[str, Any]:
        import io

        import joblib

        from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

        model, metrics = _train(seed=11)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        put = MLSModelRegistryHook().put_version(
            name, version, buffer.getvalue(), model_lib="etc", model_lib_version="joblib-1", features=FEATURES
        )
        return {"model_data": put["model_data"], "model_meta": {**put["model_meta"], "performance": metrics}}

    trained = train_and_register(name="{{ params.model_name }}", version=VERSION)
    deploy_dark = CreateManualModelOperator(
        task_id="deploy_dark",
        name="{{ params.model_name }}",
        version=VERSION,
        description="churn scorecard, awaiting review",
        creator="airflow",
        model_lib="etc",
        model_data=trained["model_data"],
        model_meta=trained["model_meta"],
        features=FEATURES,
        if_exists="fail",
    )
    online_ready = OnlinePredictionReadySensor(
        task_id="online_prediction_ready",
        name="{{ params.model_name }}",
        version=VERSION,
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )
    review = MLSModelApprovalOperator(
        task_id="review",
        model_id=deploy_dark.output,
        experiment="{{ params.experiment }}",
        bucket="{{ params.bucket }}",
        notes="Trained on synthetic customers; holdout of 500.",
        response_timeout=timedelta(days=2),
    )
    move_traffic = MigrateBucketsOperator(
        task_id="move_traffic",
        from_model_id=review.output["serving_model_id"],
        to_model_id=review.output["model_id"],
        prediction_type="online",
    )
    trained >> deploy_dark >> online_ready >> review >> move_traffic


mls_train_review_deploy()
