"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


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
            }
        ],
        "operators": [{"integration-name": "MLS", "python-modules": ["airflow_provider_mls.operators.mls"]}],
        "sensors": [{"integration-name": "MLS", "python-modules": ["airflow_provider_mls.sensors.mls"]}],
        "hooks": [
            {
                "integration-name": "MLS",
                "python-modules": ["airflow_provider_mls.hooks.mls", "airflow_provider_mls.hooks.mls_async"],
            }
        ],
        "triggers": [{"integration-name": "MLS", "python-modules": ["airflow_provider_mls.triggers.mls"]}],
        "hook-class-names": ["airflow_provider_mls.hooks.mls.MLSHook"],
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
