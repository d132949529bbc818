"""Wait until a batch prediction table is ready (active, not loading): ``BatchPredictionReadySensor``.

``poke``, ``reschedule`` and deferrable modes: the wait of every sensor (``bases.WaitSensor``),
its check ``TableReadyCheck`` (``checks.py``), deferred to ``MLSCheckTrigger``. It asks MLS about the table (``MLSHook``, the MLS connection),
not AWS: it sits with the resource it waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import MLSBaseSensor
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.refs import ModelSelector

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.checks import Check

__all__ = ["BatchPredictionReadySensor"]


class BatchPredictionReadySensor(MLSBaseSensor):
    """Wait until a batch prediction table is ready: active and not loading.

    Give the table by name (``table``), or a manual model by ``model_id`` or by ``name`` and
    ``version``, whose ``table`` is used. A model that does not exist or has no table fails at once.
    Returns ``{"table", "model_id"}``. A check costs 2 requests (1 while the table is not active);
    the model is read once per try.

    :param table: the batch prediction table name.
    :param model_id: or the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", "table", "model_id", "name", "version")

    def __init__(
        self,
        *,
        table: str | None = None,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        mls_conn_id: str = "mls_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, deferrable=deferrable, **kwargs)
        self.table = table
        self.model_id = model_id
        self.name = name
        self.version = version

    def _inputs(self) -> dict[str, Any]:
        return {"table": self.table, "model_id": self.model_id, "name": self.name, "version": self.version}

    def _looks_up(self) -> bool:
        return self.table is None

    def _resolve(self) -> Check:
        from airflow_provider_mls.checks import TableReadyCheck  # when the task runs: not at parse time

        selector = ModelSelector(self.model_id, self.name, self.version)
        if self.table is not None:
            if selector.given:
                raise MLSValidationError(
                    "table", "give either table or a model (model_id, or name and version)"
                )
            if not isinstance(self.table, str) or not self.table.strip():
                raise MLSValidationError("table", f"expected a table name, got {self.table!r}")
            return TableReadyCheck(table=self.table)
        if not selector.given:
            raise MLSValidationError("table", "give table, model_id, or name and version")
        model = selector.resolve(self.hook, ModelType.MANUAL)
        table = model.get("table")
        if not table:
            raise MLSValidationError(
                "table",
                f"model {model.get('id')} ({model.get('name')}/{model.get('version')}) has no table, "
                "so it has no batch prediction",
            )
        return TableReadyCheck(table=str(table), model_id=model.get("id"))
