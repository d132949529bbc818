"""Sensors that gate a DAG on MLS readiness: a batch prediction table, a registry artifact, a training.

Every sensor works in ``poke``, ``reschedule`` and deferrable modes (``deferrable=True``, default
``[operators] default_deferrable``); see ``MLSBaseSensor`` for how ``timeout``, ``soft_fail``
and ``poke_interval`` apply. The model is resolved once per try (across reschedules too), so a
check that is not ready costs one request. A terminal failure (a model that does not exist, a
model with no table, a training that FAILED) fails the task at once, without retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls._tasks import MLSBaseSensor, ModelSelector
from airflow_provider_mls.checks import ArtifactReadyCheck, Check, TableReadyCheck, TrainingDoneCheck
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AutoMLTrainingDoneSensor", "BatchPredictionReadySensor", "OnlinePredictionReadySensor"]


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


class OnlinePredictionReadySensor(MLSBaseSensor):
    """Wait until a model version's artifact exists in the model registry.

    Give ``name`` and ``version`` (no model lookup at all: the artifact may be uploaded before the
    model is created), or ``model_id`` (read once per try). Returns ``{"model_id", "name",
    "version", "info"}``. A check costs 1 request.

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", "model_id", "name", "version")

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        mls_conn_id: str = "mls_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, deferrable=deferrable, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version

    def _inputs(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "name": self.name, "version": self.version}

    def _looks_up(self) -> bool:
        return self.model_id is not None

    def _resolve(self) -> Check:
        id, name, version = ModelSelector(self.model_id, self.name, self.version).validate()
        if id is None:
            assert name is not None and version is not None
            return ArtifactReadyCheck(name=name, version=version)
        model = self.hook.get_model(id)
        return ArtifactReadyCheck(name=str(model["name"]), version=str(model["version"]), model_id=id)


class AutoMLTrainingDoneSensor(MLSBaseSensor):
    """Wait until an AutoML model's training ends; returns the model's summary.

    ``DONE`` succeeds and returns the model's summary (``SUMMARY_FIELDS`` of
    ``airflow_provider_mls.checks``, as the create operators; the whole model is
    ``MLSHook.get_model(id)``), small whatever its meta; ``FAILED`` fails at once with the service's
    error text (``automl_model_info["error"]``); any other status keeps waiting and says so in the
    log (only ``DONE`` is ever success). A check costs 1 request; a model given by ``name`` and
    ``version`` is looked up once per try.

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", "model_id", "name", "version")

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        mls_conn_id: str = "mls_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, deferrable=deferrable, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version

    def _inputs(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "name": self.name, "version": self.version}

    def _looks_up(self) -> bool:
        return self.model_id is None

    def _resolve(self) -> Check:
        selector = ModelSelector(self.model_id, self.name, self.version)
        return TrainingDoneCheck(model_id=selector.target_id(self.hook, ModelType.AUTOML))
