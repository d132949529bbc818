"""The one place where Airflow 2.11 and Airflow 3.x differ for this provider.

``apache-airflow-providers-common-compat`` resolves each name to ``airflow.sdk`` on Airflow 3
and to the Airflow 2 location otherwise; everything else imports from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION_STRING
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
    mask_secret,
)
from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

AIRFLOW_V_3_0_PLUS = int(AIRFLOW_VERSION_STRING.split(".")[0]) >= 3


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` (False when unset), the default of every ``deferrable`` argument."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


async def aget_connection(conn_id: str) -> tuple[Any, Mapping[str, Any]]:
    """(connection, extras) without blocking the event loop, for triggers.

    A synchronous ``get_connection`` (or ``extra_dejson``) inside a trigger's ``run()`` breaks in
    the Airflow 3 triggerer; common-compat picks ``aget_connection`` where it is safe and a worker
    thread elsewhere. Called once per trigger run, never per check.
    """
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id)
    extras = await get_async_extra_dejson(conn)
    return conn, extras or {}


def is_first_reschedule_poke(context: Mapping[str, Any]) -> bool:
    """In reschedule mode: is this the first execution of the try (no reschedule recorded yet)?"""
    if AIRFLOW_V_3_0_PLUS:
        return int(context.get("task_reschedule_count", 0) or 0) == 0
    from airflow.sensors.base import _orig_start_date

    ti = context["ti"]
    first_try_number = (ti.max_tries or 0) - (ti.task.retries or 0) + 1
    return (
        _orig_start_date(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=ti.map_index,
            try_number=first_try_number,
        )
        is None
    )


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_VERSION_STRING",
    "AirflowException",
    "AirflowNotFoundException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "PokeReturnValue",
    "TriggerEvent",
    "aget_connection",
    "conf",
    "default_deferrable",
    "is_first_reschedule_poke",
    "mask_secret",
]
