"""The model lifecycle with the MLS operators and sensors: every one of them in one DAG.

Manual models: deploy v1 and serve it from an experiment bucket, deploy v2, wait until v2's
batch prediction table and registry artifact are ready, update its fields, meta and
components, move v1's buckets to v2 and delete v1 with its table. AutoML: train a model from a
dataset, wait for the training, give it a handler, start its server (waiting for RUNNING) and
stop it again. Every wait is deferrable.

Runs green with ``airflow dags test mls_model_lifecycle`` against the local MLS server, and
re-running it is safe (``if_exists``, ``ignore_missing``, ``overwrite``). v2's prediction table
is a DynamoDB table created and filled here, and its artifact is uploaded to the registry bucket
(S3), as a batch job and a training job would.
"""

from __future__ import annotations

import pickle
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    CreateManualModelOperator,
    DeleteModelOperator,
    MigrateBucketsOperator,
    StartAutoMLServerOperator,
    StopAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
    UpdateManualModelOperator,
    UpdateModelComponentsOperator,
    UpdateModelMetaOperator,
)
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import (
    CreatePredictionTableOperator,
    LoadPredictionTableOperator,
)
from airflow_provider_mls.sensors.mls import (
    AutoMLTrainingDoneSensor,
    BatchPredictionReadySensor,
    OnlinePredictionReadySensor,
)

NAME = "lifecycle_model"
AUTOML_NAME = "lifecycle_automl"
COMPONENT = "lifecycle_preprocess"
DATASET = "lifecycle_dataset"
EXPERIMENT = "lifecycle_experiment"
FEATURES = ["age", "app_use_traffic_youtube", "svc_scrb_period"]
HANDLER = '''
def handler(request, model):
    """Online prediction: score the request's features with the AutoML model."""
    return {"items": [{"id": request.get("id"), "score": float(model.predict(request)[0])}]}
'''
WAIT = {"deferrable": True, "poke_interval": 2, "timeout": 600}
# The trained v2, a rule model as plain data, pickled as joblib would (no arrays). Small enough to build when
# the file is parsed, so it travels with the task to whichever worker runs it: a task never reads a local
# file another task wrote (on several workers it is not there).
MODEL_V2 = pickle.dumps({"kind": "rule", "threshold": {"svc_scrb_period": 24}, "features": FEATURES})


def _meta(version: str) -> dict[str, Any]:
    return {
        "name": NAME,
        "version": version,
        "model_lib": "sklearn",
        "model_lib_version": "1.5.2",
        "model_data": f"/models/{NAME}/{version}/model.joblib",
        "features": FEATURES,
    }


def _deploy(version: str) -> CreateManualModelOperator:
    return CreateManualModelOperator(
        task_id=f"deploy_{version}",
        name=NAME,
        version=version,
        description=f"{NAME} {version}, deployed by Airflow",
        creator="airflow",
        model_lib="sklearn",
        model_data=f"/models/{NAME}/{version}/model.joblib",
        model_meta=_meta(version),
        features=FEATURES,
        table=f"{NAME}_{version}_predictions",
        components=[COMPONENT],
        if_exists="update",
    )


@dag(
    dag_id="mls_model_lifecycle",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "example"],
    default_args={"retries": 0},
)
def mls_model_lifecycle() -> None:
    @task
    def prepare() -> dict[str, Any]:
        """The component the models use and the AutoML dataset (created once, reused after)."""
        from airflow_provider_mls.exceptions import MLSNotFoundError
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        try:
            component = hook.get_component(name=COMPONENT)
        except MLSNotFoundError:
            component = hook.run(
                "POST",
                "/api/v1/components",
                json={"name": COMPONENT, "info": "feature preprocessing", "is_latest": True},
            )
        try:
            dataset = hook.get_dataset(name=DATASET)
        except MLSNotFoundError:
            dataset = hook.run(
                "POST",
                "/api/v1/datasets",
                json={
                    "name": DATASET,
                    "type": "classification",
                    "base_feature_conf": {"features": FEATURES},
                    "label_data_conf": {"source_type": "s3", "source_path": "s3://labels/lifecycle.csv"},
                },
            )
        return {"component_id": component["id"], "dataset_id": dataset["id"]}

    @task
    def serve_from_bucket(model: dict[str, Any]) -> dict[str, Any]:
        """Connect v1 to a bucket of an experiment, so that there is traffic to move to v2."""
        from airflow_provider_mls.hooks.mls import MLSHook

        hook = MLSHook()
        experiments = [e for e in hook.run("GET", "/api/v1/experiments", params={"name": EXPERIMENT}) or []]
        experiment = experiments[0] if experiments else None
        if experiment is None:
            experiment = hook.run(
                "POST", "/api/v1/experiments", json={"name": EXPERIMENT, "bucketing_seed": "s"}
            )
        path = f"/api/v1/experiments/{experiment['id']}/buckets"
        body = {"name": "main", "prediction_type": "online", "online_model_id": model["id"]}
        buckets = hook.run("GET", path, params={"name": "main"}) or []
        if buckets:
            hook.run("PUT", f"{path}/{buckets[0]['id']}", json=body)
        else:
            hook.run("POST", path, json=body)
        return {"experiment_id": experiment["id"], "model_id": model["id"]}

    deploy_v1 = _deploy("v1")
    deploy_v2 = _deploy("v2")
    ready = prepare()
    ready >> [deploy_v1, deploy_v2]
    served = serve_from_bucket(deploy_v1.output)
    table = CreatePredictionTableOperator(
        task_id="create_v2_table", table=f"{NAME}_v2_predictions", partition_key="user_id", if_exists="skip"
    )
    fill = LoadPredictionTableOperator(
        task_id="load_v2_predictions",
        table=f"{NAME}_v2_predictions",
        rows=[{"user_id": f"u{i:04d}", "score": round(i / 200, 3)} for i in range(200)],
    )
    upload = UploadModelToRegistryOperator(
        task_id="upload_v2",
        name=NAME,
        version="v2",
        model_bytes=MODEL_V2,
        model_lib="sklearn",
        model_lib_version="1.5.2",
        features=FEATURES,
        overwrite=True,
    )
    deploy_v2 >> table >> fill
    loaded = [fill, upload]

    batch_ready = BatchPredictionReadySensor(
        task_id="batch_prediction_ready", model_id=deploy_v2.output, **WAIT
    )
    online_ready = OnlinePredictionReadySensor(
        task_id="online_prediction_ready", name=NAME, version="v2", **WAIT
    )
    describe = UpdateManualModelOperator(
        task_id="describe_v2",
        name=NAME,
        version="v2",
        description="{{ params.get('description', 'v2: retrained on ' ~ ds) }}",
    )
    record_metrics = UpdateModelMetaOperator(
        task_id="record_metrics",
        model_id=deploy_v2.output,
        model_meta={"performance": {"auc": 0.91, "logloss": 0.32}, "evaluated_on": "{{ ds }}"},
        partial_update=True,
    )
    set_components = UpdateModelComponentsOperator(
        task_id="set_components", model_id=deploy_v2.output, components=[COMPONENT]
    )
    move_traffic = MigrateBucketsOperator(
        task_id="move_buckets_to_v2", from_name=NAME, from_version="v1", to_name=NAME, to_version="v2"
    )
    retire_v1 = DeleteModelOperator(
        task_id="delete_v1", name=NAME, version="v1", delete_table=True, ignore_missing=True
    )
    for done in loaded:
        done >> [batch_ready, online_ready]
    [batch_ready, online_ready] >> describe >> record_metrics >> set_components
    [set_components, served] >> move_traffic >> retire_v1

    automl = CreateAutoMLModelOperator(
        task_id="create_automl",
        name=AUTOML_NAME,
        version="{{ ds_nodash }}",
        description="AutoML model trained by Airflow",
        dataset_name=DATASET,
        if_exists="skip",
    )
    trained = AutoMLTrainingDoneSensor(task_id="training_done", model_id=automl.output, **WAIT)
    handler = UpdateAutoMLServerHandlerOperator(
        task_id="set_handler", model_id=automl.output, handler=HANDLER
    )
    start = StartAutoMLServerOperator(task_id="start_server", model_id=automl.output, **WAIT)
    stop = StopAutoMLServerOperator(
        task_id="stop_server", model_id=automl.output, wait_for_completion=True, **WAIT
    )
    ready >> automl >> trained >> handler >> start >> stop


mls_model_lifecycle()
