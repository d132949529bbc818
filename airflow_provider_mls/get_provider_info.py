"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

_MLS_URIS = {
    "schemes": ["mls"],
    "handler": "airflow_provider_mls.assets.sanitize_uri",
    "to_openlineage_converter": "airflow_provider_mls.assets.convert_asset_to_openlineage",
}


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_mls import __version__
    from airflow_provider_mls._connection_form import declarative_conn_fields, declarative_ui_field_behaviour

    return {
        "package-name": "airflow-provider-mls",
        "name": "MLS",
        "description": "Apache Airflow provider for MLS, the ML service of the sktmls SDK: "
        "deploy and update models, train AutoML models, and wait for their readiness.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "MLS",
                "external-doc-url": "https://pypi.org/project/sktmls/",
                "tags": ["ml"],
            },
            {
                "integration-name": "SageMaker Model Registry",
                "external-doc-url": "https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry.html",
                "tags": ["aws", "ml"],
            },
            {
                "integration-name": "MLS Model Registry (S3)",
                "external-doc-url": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html",
                "tags": ["aws", "ml"],
            },
            {
                "integration-name": "MLS Batch Prediction Tables (DynamoDB)",
                "external-doc-url": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html",
                "tags": ["aws", "ml"],
            },
        ],
        "operators": [
            {
                "integration-name": "MLS",
                "python-modules": [
                    "airflow_provider_mls.operators.models",
                    "airflow_provider_mls.operators.automl",
                    "airflow_provider_mls.operators.buckets",
                    "airflow_provider_mls.operators.approval",
                ],
            },
            {
                "integration-name": "SageMaker Model Registry",
                "python-modules": ["airflow_provider_mls.operators.sagemaker_registry"],
            },
            {
                "integration-name": "MLS Model Registry (S3)",
                "python-modules": ["airflow_provider_mls.operators.model_registry"],
            },
            {
                "integration-name": "MLS Batch Prediction Tables (DynamoDB)",
                "python-modules": ["airflow_provider_mls.operators.prediction_table"],
            },
        ],
        "sensors": [
            {"integration-name": "MLS", "python-modules": ["airflow_provider_mls.sensors.automl"]},
            {
                "integration-name": "SageMaker Model Registry",
                "python-modules": ["airflow_provider_mls.sensors.sagemaker_registry"],
            },
            {
                "integration-name": "MLS Model Registry (S3)",
                "python-modules": ["airflow_provider_mls.sensors.model_registry"],
            },
            {
                "integration-name": "MLS Batch Prediction Tables (DynamoDB)",
                "python-modules": ["airflow_provider_mls.sensors.prediction_table"],
            },
        ],
        "hooks": [
            {
                "integration-name": "MLS",
                "python-modules": ["airflow_provider_mls.hooks.mls", "airflow_provider_mls.hooks.mls_async"],
            },
            {
                "integration-name": "SageMaker Model Registry",
                "python-modules": ["airflow_provider_mls.hooks.sagemaker_registry"],
            },
            {
                "integration-name": "MLS Model Registry (S3)",
                "python-modules": ["airflow_provider_mls.hooks.model_registry"],
            },
            {
                "integration-name": "MLS Batch Prediction Tables (DynamoDB)",
                "python-modules": ["airflow_provider_mls.hooks.prediction_table"],
            },
        ],
        "triggers": [
            {"integration-name": "MLS", "python-modules": ["airflow_provider_mls.triggers.mls"]},
            {
                "integration-name": "SageMaker Model Registry",
                "python-modules": [
                    "airflow_provider_mls.triggers.sagemaker_registry",
                    "airflow_provider_mls.triggers.model_package_events",
                ],
            },
        ],
        "extra-links": [
            "airflow_provider_mls.links.SageMakerModelPackageLink",
            "airflow_provider_mls.links.RegistryArtifactLink",
            "airflow_provider_mls.links.PredictionTableLink",
            "airflow_provider_mls.links.MLSModelLink",
        ],
        # The mls:// scheme of MLS model assets (Airflow 3) and datasets (Airflow 2.11).
        "asset-uris": [dict(_MLS_URIS)],
        "dataset-uris": [dict(_MLS_URIS)],
        "connection-types": [
            {
                "connection-type": "mls",
                "hook-class-name": "airflow_provider_mls.hooks.mls.MLSHook",
                "hook-name": "MLS",
                "ui-field-behaviour": declarative_ui_field_behaviour(),
                "conn-fields": declarative_conn_fields(),
            }
        ],
    }
