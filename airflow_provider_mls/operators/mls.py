"""The MLS operators, by their first import path (kept): each lives in the module of its resource.

``operators.models`` (manual models), ``operators.automl`` (AutoML models and their servers) and
``operators.buckets`` (bucket moves); the sensors are in ``sensors``. Import from either.
"""

from __future__ import annotations

from airflow_provider_mls.operators.automl import (
    CreateAutoMLModelOperator,
    StartAutoMLServerOperator,
    StopAutoMLServerOperator,
    UpdateAutoMLServerHandlerOperator,
)
from airflow_provider_mls.operators.buckets import MigrateBucketsOperator
from airflow_provider_mls.operators.models import (
    CreateManualModelOperator,
    DeleteModelOperator,
    UpdateManualModelOperator,
    UpdateModelComponentsOperator,
    UpdateModelMetaOperator,
)

__all__ = [
    "CreateAutoMLModelOperator",
    "CreateManualModelOperator",
    "DeleteModelOperator",
    "MigrateBucketsOperator",
    "StartAutoMLServerOperator",
    "StopAutoMLServerOperator",
    "UpdateAutoMLServerHandlerOperator",
    "UpdateManualModelOperator",
    "UpdateModelComponentsOperator",
    "UpdateModelMetaOperator",
]
