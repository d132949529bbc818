"""Training to deployment: train a model, put it in the MLS model registry, deploy it, and move
the traffic of the previous version to it once it serves.

1. ``train_and_register``: a small logistic regression (plain Python, no ML stack) on a synthetic
   churn dataset, evaluated on a holdout, serialized with joblib in memory and put in the MLS model
   registry (``model.joblib`` and ``model.json`` under ``<name>/<version>/`` of the registry bucket of
   the connection's env, S3) by ``MLSModelRegistryHook.put_version``, in the same task. Only small
   values go on: the registry URIs, the ``model.json`` meta and the holdout metrics.
2. ``deploy``: the manual model, with the ``model.json`` meta as its ``model_meta``.
3. ``online_prediction_ready``: the artifact is in the registry (deferrable).
4. ``record_metrics``: the holdout metrics merged into the meta.
5. ``find_previous_version`` and ``move_buckets``: every bucket that served the previous version
   (the newest other version of the same name, or ``params.previous_version``) now serves this
   one. With no previous version both are skipped.

``params.model_version`` names the version (default: ``v<ds_nodash>``). Correct on any number of
workers: no task reads a file another task wrote (the next task may run on another machine, with
another temporary directory), and XCom carries no model bytes. Training and upload share a task for
that reason; if your training writes a file, upload it from the task that wrote it
(``put_version`` takes a path or bytes), or stage it in object storage, never on a worker's disk.
Runs green with ``airflow dags test mls_train_to_deploy`` against the local MLS server and its AWS
endpoint, and on a CeleryExecutor deployment with two workers (``tests/e2e/test_celery_deployment.py``).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import (
    CreateManualModelOperator,
    MigrateBucketsOperator,
    UpdateModelMetaOperator,
)
from airflow_provider_mls.sensors.mls import OnlinePredictionReadySensor

FEATURES = ["age", "monthly_charge", "tenure_months", "support_calls"]
VERSION = "{{ params.model_version or 'v' ~ ds_nodash }}"
WAIT = {"deferrable": True, "poke_interval": 5, "timeout": 600}


def _synthetic_churn(n: int, seed: int) -> tuple[list[list[float]], list[int]]:
    """Customers with 4 features and a churn label drawn from a known logistic model."""
    import math
    import random

    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        x = [rng.uniform(18, 80), rng.uniform(10, 120), rng.uniform(0, 72), float(rng.randint(0, 8))]
        z = -0.02 * (x[0] - 45) + 0.025 * (x[1] - 65) - 0.05 * (x[2] - 36) + 0.45 * (x[3] - 4)
        rows.append(x)
        labels.append(1 if rng.random() < 1 / (1 + math.exp(-z)) else 0)
    return rows, labels


def _fit(rows: list[list[float]], labels: list[int], epochs: int = 300, rate: float = 0.5) -> dict[str, Any]:
    """Batch gradient descent on standardised features; returns the model as plain data."""
    import math

    k = len(rows[0])
    mean = [sum(r[j] for r in rows) / len(rows) for j in range(k)]
    std = [math.sqrt(sum((r[j] - mean[j]) ** 2 for r in rows) / len(rows)) or 1.0 for j in range(k)]
    xs = [[(r[j] - mean[j]) / std[j] for j in range(k)] for r in rows]
    w, b = [0.0] * k, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * k, 0.0
        for x, y in zip(xs, labels, strict=True):
            err = 1 / (1 + math.exp(-(b + sum(wj * xj for wj, xj in zip(w, x, strict=True))))) - y
            gb += err
            for j in range(k):
                gw[j] += err * x[j]
        b -= rate * gb / len(xs)
        w = [wj - rate * g / len(xs) for wj, g in zip(w, gw, strict=True)]
    return {
        "kind": "logistic_regression",
        "features": FEATURES,
        "mean": mean,
        "std": std,
        "coef": w,
        "intercept": b,
    }


def _score(model: dict[str, Any], row: list[float]) -> float:
    import math

    z = model["intercept"] + sum(
        c * (v - m) / s for c, v, m, s in zip(model["coef"], row, model["mean"], model["std"], strict=True)
    )
    return 1 / (1 + math.exp(-z))


def _evaluate(model: dict[str, Any], rows: list[list[float]], labels: list[int]) -> dict[str, float]:
    import math

    scores = [_score(model, r) for r in rows]
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    auc = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / max(1, len(pos) * len(neg))
    eps = 1e-12
    logloss = -sum(
        y * math.log(max(s, eps)) + (1 - y) * math.log(max(1 - s, eps))
        for s, y in zip(scores, labels, strict=True)
    ) / len(labels)
    accuracy = sum((s >= 0.5) == (y == 1) for s, y in zip(scores, labels, strict=True)) / len(labels)
    return {"auc": round(auc, 4), "logloss": round(logloss, 4), "accuracy": round(accuracy, 4)}


@dag(
    dag_id="mls_train_to_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example", "pipeline"],
    default_args={"retries": 0},
    params={"model_name": "churn_lr", "model_version": "", "previous_version": ""},
)
def mls_train_to_deploy() -> None:
    @task
    def train_and_register(name: str, version: str) -> dict[str, Any]:
        """Fit on 1,500 customers, evaluate on 500 others, put model.joblib + model.json in the registry."""
        import io

        import joblib

        from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

        rows, labels = _synthetic_churn(2000, seed=7)
        model = _fit(rows[:1500], labels[:1500])
        metrics = _evaluate(model, rows[1500:], labels[1500:])
        print(f"trained {model['kind']} on {len(FEATURES)} features: holdout {metrics}")
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        put = MLSModelRegistryHook().put_version(
            name,
            version,
            buffer.getvalue(),
            model_lib="etc",
            model_lib_version="joblib-1",
            features=FEATURES,
            extra={"class": "churn", "model_info": {"trainer": "mls_train_to_deploy"}},
        )
        print(f"{name}/{version} is in the registry: {put['meta_uri']}")
        return {
            "model_uri": put["model_uri"],
            "model_data": put["model_data"],
            "model_meta": put["model_meta"],
            "performance": metrics,
        }

    trained = train_and_register(name="{{ params.model_name }}", version=VERSION)
    deploy = CreateManualModelOperator(
        task_id="deploy",
        name="{{ params.model_name }}",
        version=VERSION,
        description="churn model trained and deployed by Airflow",
        creator="airflow",
        model_lib="etc",
        model_data=trained["model_data"],
        model_meta=trained["model_meta"],
        features=FEATURES,
        if_exists="fail",
    )
    online_ready = OnlinePredictionReadySensor(
        task_id="online_prediction_ready", name="{{ params.model_name }}", version=VERSION, **WAIT
    )
    record_metrics = UpdateModelMetaOperator(
        task_id="record_metrics",
        model_id=deploy.output,
        model_meta={"performance": trained["performance"], "evaluated_on": "{{ ds }}"},
        partial_update=True,
    )

    @task
    def find_previous_version(model: dict[str, Any], params: dict[str, Any] | None = None) -> int:
        """The id of the version whose traffic moves: params.previous_version, else the newest other one."""
        from airflow_provider_mls._compat import AirflowSkipException
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        wanted = (params or {}).get("previous_version")
        if wanted:
            return int(hook.get_manual_model(name=model["name"], version=wanted)["id"])
        others = [
            m
            for m in hook.list_all_manual_models(name=model["name"])
            if m["name"] == model["name"] and m["id"] != model["id"]
        ]
        if not others:
            raise AirflowSkipException(f"{model['name']} has no other version: no buckets to move")
        return int(max(others, key=lambda m: m["id"])["id"])

    previous = find_previous_version(deploy.output)
    move = MigrateBucketsOperator(
        task_id="move_buckets", from_model_id=previous, to_model_id=deploy.output, prediction_type="online"
    )
    trained >> deploy >> online_ready >> record_metrics >> previous >> move


mls_train_to_deploy()
