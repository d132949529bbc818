"""Move the buckets served by one MLS model to another: ``MigrateBucketsOperator``.

Cheap to import: no requests at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.bases import MLSBaseOperator
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.refs import ModelSelector
from airflow_provider_mls.rules import check_prediction_type

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MigrateBucketsOperator"]


class MigrateBucketsOperator(MLSBaseOperator):
    """Move every bucket served by one model to another (``POST /api/v1/bucket_migrations``).

    The models by id (or model dict) or by name and version: ``from_model_id`` or
    ``from_name``/``from_version``, and ``to_model_id`` or ``to_name``/``to_version``.
    ``prediction_type`` defaults to ``online`` for a manual target and ``automl`` for an AutoML
    one; ``static`` needs ``static_value``; ``empty`` needs no target. Returns ``{"from_model_id",
    "to_model_id", "prediction_type", "buckets": [{"id", "name", "ml_model"}]}``.

    :param from_model_id: the model whose buckets move: its id or an upstream task's model dict.
    :param from_name: or its name (with ``from_version``).
    :param from_version: its version (with ``from_name``).
    :param to_model_id: the model they move to: its id or an upstream task's model dict.
    :param to_name: or its name (with ``to_version``).
    :param to_version: its version (with ``to_name``).
    :param prediction_type: ``online``, ``automl``, ``static`` or ``empty``.
    :param static_value: the value served with ``prediction_type="static"`` (a dict).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = (
        "mls_conn_id",
        "from_model_id",
        "from_name",
        "from_version",
        "to_model_id",
        "to_name",
        "to_version",
        "prediction_type",
        "static_value",
    )

    def __init__(
        self,
        *,
        from_model_id: int | str | dict[str, Any] | None = None,
        from_name: str | None = None,
        from_version: str | None = None,
        to_model_id: int | str | dict[str, Any] | None = None,
        to_name: str | None = None,
        to_version: str | None = None,
        prediction_type: str | None = None,
        static_value: dict[str, Any] | None = None,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.from_model_id = from_model_id
        self.from_name = from_name
        self.from_version = from_version
        self.to_model_id = to_model_id
        self.to_name = to_name
        self.to_version = to_version
        self.prediction_type = prediction_type
        self.static_value = static_value

    def _execute(self, context: Any) -> dict[str, Any]:
        source = ModelSelector(self.from_model_id, self.from_name, self.from_version, prefix="from_")
        target = ModelSelector(self.to_model_id, self.to_name, self.to_version, prefix="to_")
        from_id, _, _ = source.validate()
        # Checked before any lookup: bad input sends no request at all.
        if self.prediction_type is not None:
            check_prediction_type(self.prediction_type)
        if self.prediction_type == "static" and self.static_value is None:
            raise MLSValidationError("static_value", "prediction_type static needs static_value (a dict)")
        to_model: dict[str, Any] | None = None
        if target.given:
            to_id_given, _, _ = target.validate()
            if to_id_given is not None and self.prediction_type is not None:
                to_model = {"id": to_id_given}  # the id is all the migration needs: no read
            else:
                to_model = target.resolve(self.hook)  # by name, or for its type
        if from_id is None:
            from_id = int(source.resolve(self.hook)["id"])
        moved = self.hook.migrate_buckets(
            from_id, to_model, prediction_type=self.prediction_type, static_value=self.static_value
        )
        buckets = [
            {
                "id": b.get("id"),
                "name": b.get("name"),
                "ml_model": (b.get("prediction") or {}).get("ml_model"),
            }
            for b in moved
        ]
        to_id = to_model.get("id") if to_model else None
        self.log.info(
            "Moved %d bucket(s) from model %s to %s: %s",
            len(buckets),
            from_id,
            to_id if to_id is not None else self.prediction_type,
            ", ".join(str(b["name"]) for b in buckets) or "(none served by it)",
        )
        prediction_type = self.prediction_type
        if prediction_type is None and to_model is not None:
            prediction_type = "automl" if to_model.get("model_type") == ModelType.AUTOML.value else "online"
        return {
            "from_model_id": from_id,
            "to_model_id": to_id,
            "prediction_type": prediction_type,
            "buckets": buckets,
        }
