"""Sensors that gate a DAG on MLS readiness: a batch prediction table, a registry artifact, a training.

Every sensor works in ``poke``, ``reschedule`` and deferrable modes (``deferrable=True``, default
``[operators] default_deferrable``); see ``MLSWaitingTask`` for how ``timeout``, ``soft_fail``
and ``poke_interval`` apply. The model is resolved once per task execution, so a check costs
1-2 requests. A terminal failure (a model that does not exist, a model with no table, a
training that FAILED) fails the task at once, without retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls._tasks import MLSWaitingTask, ModelRefMixin
from airflow_provider_mls.checks import ArtifactReadyCheck, Check, TableReadyCheck, TrainingDoneCheck
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_mls.checks import Outcome

__all__ = ["AutoMLTrainingDoneSensor", "BatchPredictionReadySensor", "OnlinePredictionReadySensor"]


class _MLSCheckSensor(ModelRefMixin, MLSWaitingTask):
    """A sensor whose every check is one ``Check``, built once from the resolved model.

    The model: ``model_id`` (an id, a rendered ``"12"``, or an upstream task's model dict) or
    ``name`` and ``version``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check: Check | None = None

    def _resolve(self) -> Check:  # pragma: no cover - abstract
        raise NotImplementedError

    def _watch(self) -> Check:
        if self._check is None:
            self._check = self._resolve()
            self.log.info("Waiting for %s", self._check.describe())
        return self._check

    def _step(self, context: Mapping[str, Any]) -> Outcome:
        return self.hook.run_check(self._watch())


class BatchPredictionReadySensor(_MLSCheckSensor):
    """Wait until a batch prediction table is ready: active and not loading.

    Give the table by name (``table``), or a manual model by ``model_id`` (an id, or the model
    dict an upstream task returned) or by ``name`` and ``version``, whose ``table`` is used. A
    model that does not exist or has no table fails at once.

    Returns ``{"table", "model_id"}``. A check costs 2 requests (1 while the table is not active);
    a model is read once per task execution.

    :param table: the batch prediction table name.
    :param model_id: or the model's id.
    :param name: or the model's name (with ``version``).
    :param version: the model's version.
    """

    template_fields: tuple[str, ...] = (
        *MLSWaitingTask.template_fields,
        "table",
        "model_id",
        "name",
        "version",
    )

    def __init__(
        self,
        *,
        table: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table

    def _resolve(self) -> Check:
        selector = self.selector
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


class OnlinePredictionReadySensor(_MLSCheckSensor):
    """Wait until a model version's artifact exists in the model registry.

    Give ``name`` and ``version`` (no model lookup at all: the artifact may be uploaded before
    the model is created), or ``model_id`` (an id or a model dict; read once). Returns
    ``{"model_id", "name", "version", "info"}``. A check costs 1 request.
    """

    template_fields: tuple[str, ...] = (*MLSWaitingTask.template_fields, "model_id", "name", "version")

    def _resolve(self) -> Check:
        id, name, version = self.selector.validate()
        if id is None:
            assert name is not None and version is not None
            return ArtifactReadyCheck(name=name, version=version)
        model = self.hook.get_model(id)
        return ArtifactReadyCheck(name=str(model["name"]), version=str(model["version"]), model_id=id)


class AutoMLTrainingDoneSensor(_MLSCheckSensor):
    """Wait until an AutoML model's training ends.

    ``DONE`` succeeds and returns the model (dict); ``FAILED`` fails at once with the service's
    error text (``automl_model_info["error"]``); any other status keeps waiting and says so in
    the log (only ``DONE`` is ever success). The model by ``model_id`` (an id or a model dict)
    or by ``name`` and ``version`` (looked up once). A check costs 1 request.
    """

    template_fields: tuple[str, ...] = (*MLSWaitingTask.template_fields, "model_id", "name", "version")

    def _resolve(self) -> Check:
        return TrainingDoneCheck(model_id=self._target_id(ModelType.AUTOML))
