"""Wait until an AutoML model's training ends: ``AutoMLTrainingDoneSensor``.

``poke``, ``reschedule`` and deferrable modes: the wait of every sensor (``bases.WaitSensor``),
its check ``TrainingDoneCheck`` (``checks.py``), deferred to ``MLSCheckTrigger``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import MLSBaseSensor
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.refs import ModelSelector

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.checks import Check

__all__ = ["AutoMLTrainingDoneSensor"]


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
        from airflow_provider_mls.checks import TrainingDoneCheck  # when the task runs: not at parse time

        selector = ModelSelector(self.model_id, self.name, self.version)
        return TrainingDoneCheck(model_id=selector.target_id(self.hook, ModelType.AUTOML))
