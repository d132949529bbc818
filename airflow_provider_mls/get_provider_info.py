"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_mls import __version__

    return {
        "package-name": "airflow-provider-mls",
        "name": "MLS",
        "description": "Apache Airflow provider for MLS, the ML service of the sktmls SDK: "
        "deploy and update models, train AutoML models, and wait for their readiness.",
        "versions": [__version__],
        "hook-class-names": ["airflow_provider_mls.hooks.mls.MLSHook"],
        "connection-types": [
            {
                "connection-type": "mls",
                "hook-class-name": "airflow_provider_mls.hooks.mls.MLSHook",
                "hook-name": "MLS",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "MLS username",
                        "password": "MLS password",
                        "host": "Base URL (optional, overrides env/runtime_env)",
                    },
                    "placeholders": {
                        "host": "http://127.0.0.1:8765",
                        "login": "mls_account",
                        "extra": '{"env": "stg", "runtime_env": "LOCAL"}',
                    },
                },
                "conn-fields": {
                    "env": {
                        "label": "MLS env",
                        "description": "dev, stg, prd, dev_land, stg_land, prd_land or local (default stg)",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["dev", "stg", "prd", "dev_land", "stg_land", "prd_land", "local", None],
                            "default": "stg",
                        },
                    },
                    "runtime_env": {
                        "label": "Runtime env",
                        "description": "Where the client runs: YE, EDD or LOCAL (default LOCAL)",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["YE", "EDD", "LOCAL", None],
                            "default": "LOCAL",
                        },
                    },
                },
            }
        ],
    }
