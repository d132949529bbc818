"""Deploy a model version to MLS and record its evaluation metrics (the README's first DAG)."""

import pendulum
from airflow.providers.common.compat.sdk import dag

from airflow_provider_mls.operators.mls import CreateManualModelOperator, UpdateModelMetaOperator


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"version": "v1"})
def churn_deploy():
    deploy = CreateManualModelOperator(
        task_id="deploy",
        name="churn",
        version="{{ params.version }}",
        model_lib="sklearn",
        model_data="s3://mls-model-registry/churn/{{ params.version }}/model.joblib",
        features=["age", "tenure"],
    )
    UpdateModelMetaOperator(
        task_id="record_metrics", model_id=deploy.output, model_meta={"auc": 0.91}, partial_update=True
    )


churn_deploy()
