"""The one place where Airflow 2.11 and Airflow 3.x differ for this provider.

``apache-airflow-providers-common-compat`` resolves each name to ``airflow.sdk`` on Airflow 3
and to the Airflow 2 location otherwise; everything else imports from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION_STRING
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,  # Dataset on Airflow 2.11
    AssetAlias,  # DatasetAlias on Airflow 2.11
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    PokeReturnValue,
    Variable,
    conf,
    mask_secret,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

AIRFLOW_V_3_0_PLUS = int(AIRFLOW_VERSION_STRING.split(".")[0]) >= 3

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk.exceptions import AirflowRescheduleException
else:
    from airflow.exceptions import AirflowRescheduleException

_TRIGGER_NAMES = ("BaseTrigger", "TriggerEvent", "BaseEventTrigger")


def __getattr__(name: str) -> Any:
    """The trigger classes, imported on first use: the triggerer needs them, a DAG file's parse does not.

    ``BaseEventTrigger`` is ``BaseTrigger`` on Airflow 2.11 (no event-driven scheduling there; event
    triggers still import, for provider discovery).
    """
    if name not in _TRIGGER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import airflow.triggers.base as triggers_base

    if name == "BaseEventTrigger" and not AIRFLOW_V_3_0_PLUS:
        value = triggers_base.BaseTrigger
    else:
        value = getattr(triggers_base, name)
    globals()[name] = value
    return value


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


def task_state(context: Any) -> Any | None:
    """The task state store of the running task instance (Airflow 3.3+, AIP-103), else None.

    ``context["task_state_store"]``: JSON values by key, kept for the task instance (its dag run,
    task and map index) across its tries, reschedules and deferrals, in the metadata database
    through the task execution API. Absent on Airflow 3.0-3.2 and 2.11 (and in a bare context).
    """
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None or not all(callable(getattr(store, name, None)) for name in ("get", "set", "delete")):
        return None
    return store


class TaskRecord:
    """One key of this provider in the task state store: read, write and delete without failing the task.

    ``load`` returns the stored dict (None when there is none, it is not a dict, or the store could
    not be read); ``unreadable`` then tells the last case apart: the caller must not take it for
    "nothing recorded" where that matters (a create falls back to the time window). ``save`` and
    ``drop`` log a failure and go on (``save`` returns False, ``warn=False`` leaves the warning to
    the caller): a record that could not be written costs the retry its reconnect, never this try
    its work.
    """

    def __init__(self, store: Any, key: str, log: Any) -> None:
        self.store, self.key, self.log = store, key, log
        self.unreadable = False

    def load(self) -> dict[str, Any] | None:
        try:
            value = self.store.get(self.key)
        except Exception as exc:
            self.unreadable = True
            self.log.warning(
                "Could not read %r from the task state store (%s): deciding as without a store "
                "(Airflow < 3.3)",
                self.key,
                exc,
            )
            return None
        self.unreadable = False
        return value if isinstance(value, dict) else None

    def save(self, value: dict[str, Any], *, warn: bool = True) -> bool:
        try:
            self.store.set(self.key, value)
        except Exception as exc:
            if warn:
                self.log.warning(
                    "Could not record %r in the task state store (%s): a retry cannot reconnect to it",
                    self.key,
                    exc,
                )
            return False
        return True

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            self.store.delete(self.key)


class WaitMemory:
    """What a reschedule-mode sensor resolved on its first check, kept until the try ends.

    Each reschedule is a new process, and both Airflow 2.11 and 3.x clear the task's XComs at the
    start of every run that does not resume a deferral (reschedules included). On Airflow 3.3+ the
    memory is the key ``mls_wait`` of the task state store (``task_state``), scoped to the task
    instance by Airflow itself and tagged with the try number. On Airflow 3.0-3.2 and 2.11 it is an
    Airflow Variable (``mls_provider_wait_<hash>``; the metadata DB on 2.11, the task execution API
    on 3.x) keyed by dag, task, run, map index and try number. Either holds the rendered inputs it
    was resolved from (changed inputs are resolved again) and the check. ``forget`` deletes it when
    the try ends (success, failure, timeout); a failure to read or write it costs one lookup,
    never the task. A worker killed mid-try leaves the Variable behind (a row of the deployment's
    Variables until deleted by hand); the task state store's row goes with the task instance's
    state ([state_store] default_retention_days).
    """

    prefix = "mls_provider_wait_"
    store_key = "mls_wait"

    def recall(self, context: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        store = task_state(context)
        if store is not None:
            try:
                stored = store.get(self.store_key)
            except Exception:
                return None
            if not isinstance(stored, dict) or stored.get("try_number") != _try_number(context):
                return None
            return self._matching(stored, inputs)
        key = self.key(context)
        if key is None:
            return None
        try:
            stored = self._get(key)
        except Exception:
            return None
        return self._matching(stored, inputs)

    @staticmethod
    def _matching(stored: Any, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        if not isinstance(stored, dict) or stored.get("inputs") != _jsonable(inputs):
            return None
        value = stored.get("value")
        return value if isinstance(value, dict) else None

    def remember(self, context: Mapping[str, Any], inputs: Mapping[str, Any], value: dict[str, Any]) -> None:
        store = task_state(context)
        if store is not None:
            with contextlib.suppress(Exception):
                store.set(
                    self.store_key,
                    {"try_number": _try_number(context), "inputs": _jsonable(inputs), "value": value},
                )
            return
        key = self.key(context)
        if key is None:
            return
        ti = context["ti"]
        with contextlib.suppress(Exception):
            self._set(
                key,
                {"inputs": _jsonable(inputs), "value": value},
                f"airflow-provider-mls: what {ti.dag_id}.{ti.task_id} (run {ti.run_id}) resolved on its "
                "first check; deleted when the try ends",
            )

    def forget(self, context: Mapping[str, Any]) -> None:
        store = task_state(context)
        if store is not None:
            with contextlib.suppress(Exception):
                store.delete(self.store_key)
            return
        key = self.key(context)
        if key is None:
            return
        with contextlib.suppress(Exception):
            self._delete(key)

    def key(self, context: Mapping[str, Any]) -> str | None:
        """The Variable's key (Airflow 3.0-3.2 and 2.11)."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is None:
            return None
        parts = [
            getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "map_index", "try_number")
        ]
        if any(part is None for part in parts[:3]):
            return None
        digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:40]
        return f"{self.prefix}{digest}"

    # The Variables store itself (tests may swap these three for an in-memory one).

    def _get(self, key: str) -> Any:
        # The default positionally: ``default`` on Airflow 3, ``default_var`` on 2.11.
        return Variable.get(key, None, deserialize_json=True)

    def _set(self, key: str, value: dict[str, Any], description: str) -> None:
        Variable.set(key, value, description=description, serialize_json=True)

    def _delete(self, key: str) -> None:
        Variable.delete(key)


def _try_number(context: Mapping[str, Any]) -> Any:
    return getattr(context.get("ti"), "try_number", None)


def _jsonable(value: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


wait_memory = WaitMemory()


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_VERSION_STRING",
    "AirflowException",
    "AirflowNotFoundException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "AssetAlias",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "PokeReturnValue",
    "TaskRecord",
    "TriggerEvent",
    "aget_connection",
    "conf",
    "default_deferrable",
    "mask_secret",
    "task_state",
    "wait_memory",
]
