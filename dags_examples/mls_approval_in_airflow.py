"""Approval-gated deploy with the person in Airflow: a SageMaker model package version is approved in
the Airflow UI, not the SageMaker console, and only then deployed to MLS.

put the model in the MLS registry -> register a version (pending approval) -> ``review``: a person
answers in Airflow's "Required actions" -> deploy the approved version to MLS -> wait until its
artifact is in the MLS registry.

``review`` (``ModelPackageApprovalOperator``) shows the version next to the group's latest approved
one (model card metrics, image, customer metadata, links) and writes the decision to the version in
one ``UpdateModelPackage``: ``ModelApprovalStatus`` ``Approved`` or ``Rejected`` and an approval
description naming the reviewer, the comment and this DAG run. A rejection (it needs a comment), or
no answer within a day, skips the deploy. ``mls_approval_gated_deploy`` is the same pipeline with the
decision taken in the SageMaker console (and Airflow 2.11 support).

Needs Airflow 3.1+. AWS: ``aws_default`` through the amazon provider when it is installed, else boto3's
default chain (``AWS_ENDPOINT_URL`` points it at moto or LocalStack). See ``docs/approval.md``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mls.operators.approval import ModelPackageApprovalOperator
from airflow_provider_mls.operators.sagemaker_registry import DeployModelPackageToMLSOperator
from airflow_provider_mls.sensors.mls import OnlinePredictionReadySensor

GROUP = "churn-model"
MLS_NAME = "churn_model"
FEATURES = ["age", "svc_scrb_period"]
# The version: when the run was due (a manual run of Airflow 3 has no logical date, so no ts_nodash).
VERSION = "{{ dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn-inference:1.0"


def model_card(model_uri: str) -> dict[str, Any]:
    """A model card valid against the model package model card schema."""
    return {
        "model_overview": {
            "model_creator": "airflow",
            "model_artifact": [model_uri],
        },
        "intended_uses": {
            "purpose_of_model": "Predict churn of mobile subscribers for retention offers.",
            "risk_rating": "Low",
        },
        "business_details": {"business_problem": "Churn", "line_of_business": "Mobile"},
        "evaluation_details": [
            {
                "name": "holdout",
                "metric_groups": [
                    {
                        "name": "binary_classification",
                        "metric_data": [
                            {"name": "auc", "type": "number", "value": 0.91},
                            {"name": "logloss", "type": "number", "value": 0.32},
                        ],
                    }
                ],
            }
        ],
    }


@dag(
    dag_id="mls_approval_in_airflow",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mls", "sagemaker", "example", "approval"],
    default_args={"retries": 0},
)
def mls_approval_in_airflow() -> None:
    @task
    def put_in_mls_registry(version: str) -> dict[str, Any]:
        """The trained model (plain data), serialized with joblib in memory and put in the MLS registry."""
        import io

        import joblib

        from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

        buffer = io.BytesIO()
        joblib.dump({"kind": "rule", "threshold": {"svc_scrb_period": 24}, "features": FEATURES}, buffer)
        return MLSModelRegistryHook().put_version(
            MLS_NAME,
            version,
            buffer.getvalue(),
            model_lib="sklearn",
            model_lib_version="1.5.2",
            features=FEATURES,
        )

    upload = put_in_mls_registry(VERSION)

    @task
    def register_version(uploaded: dict[str, Any], version: str) -> dict[str, Any]:
        """Register the trained model as a new version of the group, pending manual approval."""
        from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

        hook = SageMakerModelRegistryHook()
        hook.ensure_group(GROUP, "Churn models, governed in SageMaker")
        described = hook.register_version(
            GROUP,
            model_data_url=uploaded["model_uri"],
            image=IMAGE,
            description=f"churn model trained {version}",
            customer_metadata={"team": "retention", "training_data": "s3://mls-datasets/churn/labels.csv"},
            model_card_content=model_card(uploaded["model_uri"]),
        )
        return {"arn": described["ModelPackageArn"], "version": described["ModelPackageVersion"]}

    registered = register_version(upload, VERSION)

    review = ModelPackageApprovalOperator(
        task_id="review",
        model_package_arn="{{ ti.xcom_pull(task_ids='register_version')['arn'] }}",
        response_timeout=timedelta(days=1),
    )
    deploy = DeployModelPackageToMLSOperator(
        task_id="deploy_to_mls",
        model_package_arn=review.output["arn"],
        name=MLS_NAME,
        version=VERSION,
        model_lib="sklearn",
        features=FEATURES,
        if_exists="update",
    )

    online_ready = OnlinePredictionReadySensor(
        task_id="online_prediction_ready",
        name=MLS_NAME,
        version=VERSION,
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )
    registered >> review >> deploy >> online_ready


mls_approval_in_airflow()
