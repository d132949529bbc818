"""The one place where Airflow 2.11 and Airflow 3.x differ for this provider.

``apache-airflow-providers-common-compat`` resolves each name to ``airflow.sdk`` on Airflow 3
and to the Airflow 2 location otherwise; everything else imports from here.
"""

from __future__ import annotations

from airflow import __version__ as AIRFLOW_VERSION_STRING
from airflow.providers.common.compat.sdk import (
    AirflowException,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    conf,
    mask_secret,
)

AIRFLOW_V_3_0_PLUS = int(AIRFLOW_VERSION_STRING.split(".")[0]) >= 3

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_VERSION_STRING",
    "AirflowException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "conf",
    "mask_secret",
]
