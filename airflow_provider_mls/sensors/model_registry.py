"""Wait until a model version's artifact is in the MLS model registry: ``OnlinePredictionReadySensor``.

``poke``, ``reschedule`` and deferrable modes: the wait of every sensor (``bases.WaitSensor``),
its check ``ArtifactReadyCheck`` (``checks.py``), deferred to ``MLSCheckTrigger``. It asks MLS about the artifact (``MLSHook``, the MLS connection),
not AWS: it sits with the resource it waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import MLSBaseSensor
from airflow_provider_mls.refs import ModelSelector

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.checks import Check

__all__ = ["OnlinePredictionReadySensor"]


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
        from airflow_provider_mls.checks import ArtifactReadyCheck  # when the task runs: not at parse time

        id, name, version = ModelSelector(self.model_id, self.name, self.version).validate()
        if id is None:
            assert name is not None and version is not None
            return ArtifactReadyCheck(name=name, version=version)
        model = self.hook.get_model(id)
        return ArtifactReadyCheck(name=str(model["name"]), version=str(model["version"]), model_id=id)
