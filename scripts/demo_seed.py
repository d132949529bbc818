"""What production looks like before the pipeline DAGs run, on a fresh local MLS server.

``make demo`` and the pipeline DAG tests call ``seed()`` first, so each pipeline has a previous
version to replace:

* ``churn_lr v1``: in the registry (S3) and deployed, serving bucket ``main`` of experiment
  ``churn_experiment`` (``mls_train_to_deploy`` moves it to the new version);
* ``churn_batch v1``: a batch model reading the DynamoDB table ``churn_batch_predictions_seed``
  (``mls_batch_prediction_refresh`` points it at today's table and drops that one);
* ``churn_automl v1``: trained from ``churn_automl_dataset``, with a handler, its server RUNNING,
  serving bucket ``automl`` (``mls_automl_upgrade`` replaces it with v2).

Uses the ``mls_default`` connection and boto3's environment (``LocalMLSServer.aws_env()``).
"""

from __future__ import annotations

import io
from typing import Any

EXPERIMENT = "churn_experiment"
FEATURES = ["age", "monthly_charge", "tenure_months", "support_calls"]
SEED_TABLE = "churn_batch_predictions_seed"
HANDLER = '''
def handler(request, model):
    """Online prediction: the AutoML model's churn score for the request's features."""
    return {"items": [{"id": request.get("id"), "score": float(model.predict(request)[0])}]}
'''


def _bucket(hook: Any, experiment_id: int, name: str, body: dict[str, Any]) -> dict[str, Any]:
    path = f"/api/v1/experiments/{experiment_id}/buckets"
    bucket: dict[str, Any] = hook.run("POST", path, json={"name": name, **body})
    return bucket


def seed(admin: Any) -> dict[str, Any]:
    """Deploy the previous versions (see the module docstring); ``admin`` is a ``LocalMLSAdmin``."""
    import joblib

    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

    hook = MLSHook()
    # churn_lr v1: a registry version and its deployment, behind the experiment's main bucket.
    buffer = io.BytesIO()
    joblib.dump(
        {"kind": "logistic_regression", "features": FEATURES, "coef": [0.0] * 4, "intercept": 0.0}, buffer
    )
    put = MLSModelRegistryHook().put_version(
        "churn_lr", "v1", buffer.getvalue(), model_lib="etc", model_lib_version="joblib-1", features=FEATURES
    )
    online = hook.create_manual_model(
        "churn_lr",
        "v1",
        description="the churn model in production",
        model_lib="etc",
        model_data=put["model_data"],
        model_meta=put["model_meta"],
        features=",".join(FEATURES),
    )
    experiment = hook.run(
        "POST", "/api/v1/experiments", json={"name": EXPERIMENT, "bucketing_seed": "svc_mgmt_num"}
    )
    main = _bucket(
        hook, experiment["id"], "main", {"prediction_type": "online", "online_model_id": online["id"]}
    )

    # churn_batch v1: serving from an older table.
    tables = PredictionTableHook()
    tables.create_table(SEED_TABLE, partition_key="user_id")
    tables.load_rows(SEED_TABLE, ({"user_id": f"u{i:06d}", "score": 0.5} for i in range(50)))
    batch = hook.create_manual_model(
        "churn_batch", "v1", description="daily batch churn scores", model_lib="etc", table=SEED_TABLE
    )

    # churn_automl v1: trained, with a handler, its server RUNNING, behind the automl bucket.
    dataset = hook.run(
        "POST",
        "/api/v1/datasets",
        json={
            "name": "churn_automl_dataset",
            "type": "classification",
            "base_feature_conf": {"features": FEATURES},
            "label_data_conf": {"source_type": "s3", "source_path": "s3://mls-datasets/churn/labels.csv"},
        },
    )
    automl = hook.create_automl_model("churn_automl", "v1", "AutoML churn model", dataset_id=dataset["id"])
    admin.finish_training(automl["id"], "DONE")
    hook.update_automl_model_server_handler(automl, HANDLER)
    hook.start_automl_model_server(automl)
    admin.force_server(automl["id"], "RUNNING")
    served = _bucket(
        hook, experiment["id"], "automl", {"prediction_type": "automl", "automl_model_id": automl["id"]}
    )
    return {
        "experiment_id": experiment["id"],
        "buckets": {"main": main["id"], "automl": served["id"]},
        "serving": {f"{EXPERIMENT}/main": "churn_lr v1", f"{EXPERIMENT}/automl": "churn_automl v1"},
        "models": {
            "churn_lr v1": online["id"],
            "churn_batch v1": batch["id"],
            "churn_automl v1": automl["id"],
        },
    }


if __name__ == "__main__":
    import json
    import os

    from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

    # The server of the mls_default connection (AIRFLOW_CONN_MLS_DEFAULT, as LocalMLSServer.conn_json() writes it).
    conn = json.loads(os.environ["AIRFLOW_CONN_MLS_DEFAULT"])
    with LocalMLSAdmin(conn["host"], (conn["login"], conn["password"])) as admin:
        print(json.dumps(seed(admin)))
