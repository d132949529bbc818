"""Operators for the MLS model lifecycle: every ``MLModelClient`` step of ``sktmls`` as a task.

Thin over ``MLSHook``: each operator names every argument in its own ``__init__``, stores it
verbatim (it may still be Jinja), validates it in ``execute`` (errors name the field) and returns
a small JSON value: the create and update operators return a model *summary* (``SUMMARY_FIELDS``;
the whole model is ``MLSHook.get_model(id)``). Bad input, an unknown model and a duplicate fail
the task at once (``AirflowFailException``, no retries); transient MLS errors are retried by the
hook and then by Airflow's task retries. Cheap to import: no requests at module level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_mls._compat import TaskRecord, task_state
from airflow_provider_mls._integration import add_model_versions_outlet, record_model_version
from airflow_provider_mls._tasks import (
    CreateRecord,
    MLSBaseOperator,
    ModelSelector,
    coerce_bool,
    coerce_id,
    fail,
    fail_fast,
    summary,
    wait_defer,
    wait_here,
    wait_resume,
)
from airflow_provider_mls.checks import ServerStatusCheck
from airflow_provider_mls.constants import (
    PREDICTION_TYPES,
    SERVER_START_FAILURE_STATUSES,
    ModelType,
    ServerStatus,
)
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSValidationError
from airflow_provider_mls.rules import MANUAL_FIELDS, check_if_exists

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_mls.checks import Outcome

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

_MODEL_REF_FIELDS = ("model_id", "name", "version")


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that were given (``None``: not given, keep the stored value)."""
    return {key: value for key, value in fields.items() if value is not None}


class CreateManualModelOperator(MLSBaseOperator):
    """Create (deploy) a manual model: ``MLModelClient.create_model_deployment``.

    ``if_exists`` decides what a model with the same (name, version) means, so that a retried
    task or a re-run DAG does not break: ``fail`` (default), ``skip`` (return the existing model
    untouched) or ``update`` (update it in place with the fields given here; ``None`` fields are
    kept). Components are given by name (or as component dicts). Returns the model's summary
    (``{"id", "name", "version", "model_type", "status", "model_lib", "model_data", "table",
    "created_at", "updated_at"}``); ``MLSHook.get_model(id)`` reads the rest.

    :param name: the model's name.
    :param version: the model's version.
    :param if_exists: ``fail``, ``skip`` or ``update`` when (name, version) exists.
    :param description: the model's description.
    :param creator: who made it.
    :param model_lib: ``sklearn``, ``xgboost``, ``lightgbm``, ``catboost``, ``rule``, ``autogluon`` or ``etc``.
    :param model_data: where the model's data is (e.g. the registry's ``model.joblib``).
    :param model_meta: the model's meta (a dict, e.g. the registry's ``model.json``).
    :param features: the features: a list, or a comma-separated string.
    :param table: its batch prediction table.
    :param components: its components, by name (or component dicts).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", "name", "version", "if_exists", *MANUAL_FIELDS)
    template_fields_renderers = {"model_meta": "json"}

    def __init__(
        self,
        *,
        name: str,
        version: str,
        if_exists: str = "fail",
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: dict[str, Any] | None = None,
        features: str | list[str] | None = None,
        table: str | None = None,
        components: list[str] | None = None,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        add_model_versions_outlet(self)
        self.name = name
        self.version = version
        self.if_exists = if_exists
        self.description = description
        self.creator = creator
        self.model_lib = model_lib
        self.model_data = model_data
        self.model_meta = model_meta
        self.features = features
        self.table = table
        self.components = components

    def _manual_fields(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in MANUAL_FIELDS if getattr(self, field) is not None}

    def _execute(self, context: Any) -> dict[str, Any]:
        check_if_exists(self.if_exists)
        fields = self._manual_fields()
        # The hook decides if_exists: it never returns a model that is not this task's write
        # (on a retry, the one an earlier try created: by its recorded id, else by not_before).
        record = CreateRecord(self, context, ModelType.MANUAL, self.name, self.version)
        model = record.create(
            self.hook.create_manual_model,
            name=self.name,
            version=self.version,
            if_exists=self.if_exists,
            **fields,
        )
        self.persist_links(context, model_id=model["id"])
        # skip may return a version that existed: no event then (the hook does not say which it was)
        record_model_version(self, context, model, new=self.if_exists != "skip")
        self.log.info(
            "Manual model %s/%s (id %s), if_exists=%s", self.name, self.version, model["id"], self.if_exists
        )
        return summary(model)


class UpdateManualModelOperator(MLSBaseOperator):
    """Update any field of a manual model given by ``model_id`` or by ``name`` and ``version``.

    ``None`` keeps a field; ``""`` clears a string field (not ``model_lib``), ``{}`` the meta,
    ``[]`` the components.
    ``new_name``/``new_version`` rename it. Returns the updated model's summary (see
    ``CreateManualModelOperator``).

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param new_name: rename the model.
    :param new_version: give the model another version.
    :param description: the model's description.
    :param creator: who made it.
    :param model_lib: ``sklearn``, ``xgboost``, ``lightgbm``, ``catboost``, ``rule``, ``autogluon`` or ``etc``.
    :param model_data: where the model's data is.
    :param model_meta: the whole meta (replaced; ``UpdateModelMetaOperator`` merges).
    :param features: the features: a list, or a comma-separated string.
    :param table: its batch prediction table.
    :param components: its components, by name (or component dicts).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = (
        "mls_conn_id",
        *_MODEL_REF_FIELDS,
        "new_name",
        "new_version",
        *MANUAL_FIELDS,
    )
    template_fields_renderers = {"model_meta": "json"}

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        new_name: str | None = None,
        new_version: str | None = None,
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: dict[str, Any] | None = None,
        features: str | list[str] | None = None,
        table: str | None = None,
        components: list[str] | None = None,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        add_model_versions_outlet(self)
        self.model_id = model_id
        self.name = name
        self.version = version
        self.new_name = new_name
        self.new_version = new_version
        self.description = description
        self.creator = creator
        self.model_lib = model_lib
        self.model_data = model_data
        self.model_meta = model_meta
        self.features = features
        self.table = table
        self.components = components

    def _execute(self, context: Any) -> dict[str, Any]:
        selector = ModelSelector(self.model_id, self.name, self.version)
        selector.validate()
        fields = {field: getattr(self, field) for field in MANUAL_FIELDS if getattr(self, field) is not None}
        fields.update(_given(name=self.new_name, version=self.new_version))
        if not fields:
            raise MLSValidationError("fields", "nothing to update: give at least one field to change")
        target = selector.target(self.hook, ModelType.MANUAL)
        self.persist_links(context, model_id=target if isinstance(target, int) else target["id"])
        model = self.hook.update_manual_model(target, **fields)
        # A new version (or its artifact) is news for the model's asset; a new table or meta is not.
        record_model_version(
            self, context, model, new=any(f in fields for f in ("name", "version", "model_data"))
        )
        self.log.info("Updated manual model %s: %s", model["id"], ", ".join(sorted(fields)))
        return summary(model)


class UpdateModelMetaOperator(MLSBaseOperator):
    """Update a manual model's ``model_meta``: ``MLModelClient.update_model_deployment_meta``.

    ``partial_update=True`` merges ``model_meta`` into the stored meta; ``False`` (the SDK's
    default) replaces it. ``remove_keys`` are then removed. Returns the model's summary and
    ``model_meta_keys`` (the keys now stored); ``MLSHook.get_model(id)["model_meta"]`` reads the
    meta itself.

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param model_meta: the meta to merge in (``partial_update``) or to store instead.
    :param partial_update: merge into the stored meta instead of replacing it.
    :param remove_keys: top-level keys to remove afterwards.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = (
        "mls_conn_id",
        *_MODEL_REF_FIELDS,
        "model_meta",
        "partial_update",
        "remove_keys",
    )
    template_fields_renderers = {"model_meta": "json"}

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        model_meta: dict[str, Any] | None = None,
        partial_update: bool | str = False,
        remove_keys: list[str] | None = None,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version
        self.model_meta = model_meta
        self.partial_update = partial_update
        self.remove_keys = remove_keys

    def _execute(self, context: Any) -> dict[str, Any]:
        selector = ModelSelector(self.model_id, self.name, self.version)
        selector.validate()
        partial = coerce_bool(self.partial_update, "partial_update")
        remove_keys = self.remove_keys or []
        if self.model_meta is None and not remove_keys:
            raise MLSValidationError("model_meta", "give model_meta, remove_keys or both")
        if self.model_meta is None:
            partial = True  # only removing keys: keep the rest
        target = selector.target(self.hook, ModelType.MANUAL)
        self.persist_links(context, model_id=target if isinstance(target, int) else target["id"])
        model = self.hook.update_manual_model_meta(
            target, self.model_meta or {}, partial_update=partial, remove_keys=remove_keys
        )
        keys = sorted(model.get("model_meta") or {})
        self.log.info(
            "Model %s meta %s; keys now: %s",
            model["id"],
            "merged" if partial else "replaced",
            ", ".join(keys) or "(none)",
        )
        return {**summary(model), "model_meta_keys": keys}


class UpdateModelComponentsOperator(MLSBaseOperator):
    """Set a manual model's components (names or component dicts; ``[]`` clears).

    Returns the model's summary and ``components`` (the names now set).

    :param components: the components: names, or component dicts.
    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", *_MODEL_REF_FIELDS, "components")

    def __init__(
        self,
        *,
        components: list[str] | list[dict[str, Any]],
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.components = components
        self.model_id = model_id
        self.name = name
        self.version = version

    def _execute(self, context: Any) -> dict[str, Any]:
        target = ModelSelector(self.model_id, self.name, self.version).target(self.hook, ModelType.MANUAL)
        self.persist_links(context, model_id=target if isinstance(target, int) else target["id"])
        model = self.hook.update_manual_model_components(target, self.components)
        names = [c.get("name") for c in model.get("components") or [] if isinstance(c, dict)]
        self.log.info("Model %s components: %s", model["id"], ", ".join(map(str, names)) or "(none)")
        return {**summary(model), "components": names}


class DeleteModelOperator(MLSBaseOperator):
    """Delete a model (manual or AutoML); with ``delete_table``, then its batch prediction table.

    ``ignore_missing=True`` makes a model that does not exist a success (``deleted: False``), so
    a re-run clean-up task does not fail. Returns ``{"id", "deleted", "table_dropped"}``.

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param delete_table: then drop its batch prediction table.
    :param ignore_missing: a model that does not exist is a success.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = ("mls_conn_id", *_MODEL_REF_FIELDS, "delete_table", "ignore_missing")

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        delete_table: bool | str = False,
        ignore_missing: bool | str = False,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version
        self.delete_table = delete_table
        self.ignore_missing = ignore_missing

    def _execute(self, context: Any) -> dict[str, Any]:
        selector = ModelSelector(self.model_id, self.name, self.version)
        given = selector.validate()[0]
        delete_table = coerce_bool(self.delete_table, "delete_table")
        ignore_missing = coerce_bool(self.ignore_missing, "ignore_missing")
        try:
            model = selector.resolve(self.hook)
        except MLSNotFoundError as exc:
            if not ignore_missing:
                raise
            self.log.info("Nothing to delete (ignore_missing=True): %s", exc)
            return {"id": given, "deleted": False, "table_dropped": False}
        return self.hook.delete_model(model, delete_table=delete_table)


class CreateAutoMLModelOperator(MLSBaseOperator):
    """Create an AutoML model (its training starts): ``MLModelClient.create_automl_model``.

    The dataset by ``dataset_id`` or ``dataset_name`` (exactly one). ``if_exists``: ``fail``
    (default) or ``skip`` (return the existing model, e.g. when a DAG is re-run). Returns the
    model's summary (with ``dataset_id``); wait for the training with ``AutoMLTrainingDoneSensor``.

    :param name: the model's name.
    :param version: the model's version.
    :param description: the model's description.
    :param dataset_id: the dataset by id.
    :param dataset_name: or by name.
    :param if_exists: ``fail`` or ``skip`` when (name, version) exists.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = (
        "mls_conn_id",
        "name",
        "version",
        "description",
        "dataset_id",
        "dataset_name",
        "if_exists",
    )

    def __init__(
        self,
        *,
        name: str,
        version: str,
        description: str = "",
        dataset_id: int | str | None = None,
        dataset_name: str | None = None,
        if_exists: str = "fail",
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.name = name
        self.version = version
        self.description = description
        self.dataset_id = dataset_id
        self.dataset_name = dataset_name
        self.if_exists = if_exists

    def _execute(self, context: Any) -> dict[str, Any]:
        check_if_exists(self.if_exists, ("fail", "skip"))
        dataset_id = coerce_id(self.dataset_id, "dataset_id") if self.dataset_id is not None else None
        # A retry reconnects to the training its earlier try started (MLS cannot cancel a training).
        record = CreateRecord(self, context, ModelType.AUTOML, self.name, self.version)
        model = record.create(
            self.hook.create_automl_model,
            name=self.name,
            version=self.version,
            description=self.description,
            dataset_id=dataset_id,
            dataset_name=self.dataset_name,
            if_exists=self.if_exists,
        )
        self.persist_links(context, model_id=model["id"])
        self.log.info(
            "AutoML model %s/%s (id %s, if_exists=%s); training from dataset %s",
            self.name,
            self.version,
            model["id"],
            self.if_exists,
            model.get("dataset_id"),
        )
        return summary(model)


class UpdateAutoMLServerHandlerOperator(MLSBaseOperator):
    """Replace an AutoML model's online prediction handler.

    Exactly one source: ``handler`` (Python source), ``handler_path`` (a file read at run time)
    or ``handler_from_model_id`` (copy another model's handler, as the SDK's upgrade does). The
    source must parse as Python before anything is sent. With ``only_if_missing=True`` a model
    that already has a handler keeps it (the SDK's upgrade copies the old handler only then).
    Returns ``{"model_id", "source", "chars", "replaced"}`` (``source`` is ``"kept"`` and
    ``replaced`` false when the model's own handler was kept).

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param handler: the handler's Python source (not a template field: Jinja would eat its braces).
    :param handler_path: or a file with the source, read on the worker.
    :param handler_from_model_id: or the model whose handler to copy.
    :param only_if_missing: keep a handler the model already has.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = (
        "mls_conn_id",
        *_MODEL_REF_FIELDS,
        "handler_path",
        "handler_from_model_id",
        "only_if_missing",
    )

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        handler: str | None = None,
        handler_path: str | None = None,
        handler_from_model_id: int | str | dict[str, Any] | None = None,
        only_if_missing: bool | str = False,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version
        self.handler = handler
        self.handler_path = handler_path
        self.handler_from_model_id = handler_from_model_id
        self.only_if_missing = only_if_missing

    def _source(self) -> tuple[str, str]:
        given = [
            k for k in ("handler", "handler_path", "handler_from_model_id") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise MLSValidationError(
                "handler", f"give exactly one of handler, handler_path, handler_from_model_id (got {given})"
            )
        if self.handler is not None:
            return self.handler, "handler"
        if self.handler_path is not None:
            path = Path(str(self.handler_path)).expanduser()
            try:
                return path.read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise MLSValidationError("handler_path", f"cannot read {str(path)!r}: {exc}") from None
        source_id = coerce_id(self.handler_from_model_id, "handler_from_model_id")
        handler = self.hook.get_automl_model_server_handler(source_id)
        if handler is None:
            raise MLSValidationError("handler_from_model_id", f"model {source_id} has no handler to copy")
        return handler, f"model {source_id}"

    def _execute(self, context: Any) -> dict[str, Any]:
        selector = ModelSelector(self.model_id, self.name, self.version)
        selector.validate()
        if coerce_bool(self.only_if_missing, "only_if_missing"):
            id = selector.target_id(self.hook, ModelType.AUTOML)
            current = self.hook.get_automl_model_server_handler(id)
            if current:
                self.log.info(
                    "Model %s has a handler (%d characters): kept (only_if_missing)", id, len(current)
                )
                return {"model_id": id, "source": "kept", "chars": len(current), "replaced": False}
            source, origin = self._source()
        else:
            source, origin = self._source()
            id = selector.target_id(self.hook, ModelType.AUTOML)
        self.persist_links(context, model_id=id)
        self.hook.update_automl_model_server_handler(id, source)
        self.log.info("Replaced the handler of model %s with %s (%d characters)", id, origin, len(source))
        return {"model_id": id, "source": origin, "chars": len(source), "replaced": True}


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
        if self.prediction_type is not None and self.prediction_type not in PREDICTION_TYPES:
            raise MLSValidationError(
                "prediction_type",
                f"expected one of {', '.join(PREDICTION_TYPES)}, got {self.prediction_type!r}",
            )
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


# ---- act, then wait: the AutoML model server ---------------------------------------------------------


class Step(NamedTuple):
    """What a server operator does next, given the status it saw.

    ``kind``: ``done``, ``failed``, ``act`` (send the start/stop) or ``wait`` (until the status
    leaves ``wait_while``, then decide again).
    """

    kind: str
    message: str
    wait_while: tuple[str, ...] = ()


class _AutoMLServerOperator(MLSBaseOperator):
    """Act on an AutoML model's server (start or stop), then wait: in-process polls, or deferred.

    dbt Cloud's run operator's shape: ``execute`` reads the status and acts (``_act``) once it
    may; with ``wait_for_completion`` it then polls every ``poke_interval`` (in the worker) or,
    with ``deferrable``, defers to ``MLSCheckTrigger`` with a ``ServerStatusCheck``; the trigger's
    event brings the settled status back to ``execute_complete``, which decides again (e.g.
    starts a server that was STOPPING). ``acted`` travels in the trigger's event (``carry``, next
    to the trigger's ``deadline``), so ``acted`` is true exactly when this task sent the start or
    stop, in every mode. The waiting itself is the skeleton of ``_tasks`` (``wait_here``,
    ``wait_defer``, ``wait_resume``), as for every sensor. The deadline is wall-clock: ``timeout`` seconds from the start of
    ``execute``, across deferrals.

    On Airflow 3.3+ the start or stop is also recorded in the task state store (key
    ``mls_server``, ``{"model_id", "action"}``) the moment MLS accepts it, so a retry after a dead
    worker, or a resume, still knows that this task instance acted: it reports ``acted`` and a kill
    stops the server it started (``cancel_on_kill``). Each try decides afresh (``sent``: this try
    sent it): a server that failed after an earlier try's start is started again, as on a retry
    without the store; only a failure after this try's own start fails the task at once.
    """

    _action = ""  # "start" or "stop"
    cancel_on_kill = False

    template_fields: Sequence[str] = ("mls_conn_id", *_MODEL_REF_FIELDS, "wait_for_completion")
    # Statuses waited out before acting, even without wait_for_completion (a start while STOPPING is a 409).
    _settle_before_acting: tuple[str, ...] = ()
    # What is waited out once this task has acted (and only then).
    _after_act: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None,
        name: str | None,
        version: str | None,
        wait_for_completion: bool | str,
        deferrable: bool,
        poke_interval: float,
        timeout: float,
        soft_fail: bool,
        mls_conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(mls_conn_id=mls_conn_id, **kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poke_interval = poke_interval
        self.timeout = timeout
        self.soft_fail = soft_fail

    def _decide(self, id: int, status: ServerStatus, sent: bool) -> Step:  # pragma: no cover - abstract
        """The next step; ``sent``: this try sent the start/stop (an earlier try's does not count)."""
        raise NotImplementedError

    def _act(self, id: int) -> Any:  # pragma: no cover - abstract
        """Send the start or stop; its answer."""
        raise NotImplementedError

    def _result(self, id: int, status: str, acted: bool) -> dict[str, Any]:
        return {"model_id": id, "status": status, "acted": acted}

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast(self):
            wait = coerce_bool(self.wait_for_completion, "wait_for_completion")
            deadline = time.time() + float(self.timeout)
            selector = ModelSelector(self.model_id, self.name, self.version)
            id = selector.target_id(self.hook, ModelType.AUTOML)
            self.persist_links(context, model_id=id)
            acted = self._acted_before(context, id)
            return self._run(context, id, acted=acted, sent=False, wait=wait, deadline=deadline)

    def _record(self, context: Any) -> TaskRecord | None:
        store = task_state(context)
        return TaskRecord(store, "mls_server", self.log) if store is not None else None

    def _acted_before(self, context: Any, id: int) -> bool:
        """Did an earlier try of this task instance send the start/stop (task state store, 3.3+)?"""
        record = self._record(context)
        stored = record.load() if record is not None else None
        if stored is not None and stored.get("model_id") == id and stored.get("action") == self._action:
            self.log.info("An earlier try of this task sent the %s of model %s's server", self._action, id)
            self._acted_on = id
            return True
        return False

    def on_kill(self) -> None:
        """Killed while waiting in the worker: stop the server this task started (``cancel_on_kill``)."""
        id = getattr(self, "_acted_on", None)
        if self.cancel_on_kill and self._action == "start" and id is not None:
            self.log.info(
                "Killed: stopping the server of model %s, which this task started (cancel_on_kill)", id
            )
            self.hook.stop_automl_model_server(id)

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Resume after the trigger: the settled status decides what comes next (done, fail, act, wait).

        ``model_id``, ``acted`` and ``sent`` come back in the trigger's event (``carry``), with the
        trigger's ``deadline``: the event is the one channel (``airflow dags test`` on Airflow 3.3
        resumes with the event alone). Extra kwargs (a deferral of the previous release) are
        ignored. Nothing is inferred: without a fact the task fails naming it (``sent`` alone,
        absent from a deferral of an older version, is taken to be ``acted``).
        """
        return wait_resume(self, context, event)

    def _resume(self, context: Any, value: Any, carry: dict[str, Any], deadline: float | None) -> Any:
        facts: dict[str, Any] = {
            "model_id": carry.get("model_id"),
            "acted": carry.get("acted"),
            "deadline": deadline,
        }
        for field, fact in facts.items():
            if fact is None:
                raise MLSValidationError(field, "the trigger's event does not carry it")
        status = value.get("status") if isinstance(value, dict) else None
        return self._run(
            context,
            int(facts["model_id"]),
            acted=bool(facts["acted"]),
            sent=bool(carry.get("sent", facts["acted"])),
            wait=True,
            deadline=float(facts["deadline"]),
            status=ServerStatus.parse(status) if status is not None else None,
        )

    # The wait of the skeleton (``_tasks``): the status check of the current step.

    def _outcome(self, context: Any) -> Outcome:
        return self.hook.run_check(self._waiting)

    def _describe_wait(self) -> str:
        return self._waiting.describe()

    def _trigger(self, deadline: float, carry: dict[str, Any] | None) -> Any:
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        id, acted = self._waiting.model_id, bool(carry and carry.get("acted"))
        return MLSCheckTrigger(
            check=self._waiting.to_dict(),
            mls_conn_id=self.mls_conn_id,
            poke_interval=float(self.poke_interval),
            deadline=deadline,
            carry=carry,
            stop_server_on_kill=id if acted and self.cancel_on_kill and self._action == "start" else None,
        )

    def _status(self, id: int) -> ServerStatus:
        return ServerStatus.parse(self.hook.get_automl_model_server_status(id))

    def _run(
        self,
        context: Any,
        id: int,
        *,
        acted: bool,
        sent: bool,
        wait: bool,
        deadline: float,
        status: ServerStatus | None = None,
    ) -> dict[str, Any]:
        """Decide, act, wait, until done. ``acted``: this task instance sent the start/stop (any try:
        reported, and what ``cancel_on_kill`` stops); ``sent``: this try did (what ``_decide`` reads)."""
        while True:
            if status is None:
                status = self._status(id)
            step = self._decide(id, status, sent)
            if step.kind == "done":
                self.log.info("%s", step.message)
                return self._result(id, status.value, acted)
            if step.kind == "failed":
                fail(self, step.message)
            if step.kind == "act":
                answer = self._act(id)
                acted = sent = True
                self._acted_on = id
                record = self._record(context)
                if record is not None:
                    record.save({"model_id": id, "action": self._action})
                self.log.info("%s", step.message)
                if not wait:
                    # The status the start/stop answered, when it answered one (no extra read).
                    said = answer.get("status") if isinstance(answer, dict) else None
                    known = said if said in {s.value for s in ServerStatus} else None
                    current = known or self._status(id).value
                    self.log.info(
                        "Server of model %s is %s (wait_for_completion=False: not waiting)", id, current
                    )
                    return self._result(id, current, acted)
            elif not wait and status.value not in self._settle_before_acting:
                self.log.info("%s (wait_for_completion=False: not waiting)", step.message)
                return self._result(id, status.value, acted)
            if acted:
                self._acted_on = id
            self._waiting = ServerStatusCheck(model_id=id, wait_while=step.wait_while)
            if self.deferrable and wait:
                carry = {"model_id": id, "acted": acted, "sent": sent}
                wait_defer(self, deadline=deadline, waiting=step.message, carry=carry)
            status = ServerStatus.parse(wait_here(self, context, deadline, step.message)["status"])


class StartAutoMLServerOperator(_AutoMLServerOperator):
    """Start an AutoML model's server and, by default, wait until it is ``RUNNING``.

    Already ``RUNNING`` is success without a new start; ``STARTING`` is waited for; ``STOPPING``
    waits for ``STOPPED`` and then starts; ``STOPPED`` starts. ``FAILED``/``UNKNOWN`` before this
    try started anything starts it again (as the SDK does; a retry too, after its earlier try's
    start); after this try's start they fail the try at once. Waits in the worker (every ``poke_interval``, default 15 s) or, with ``deferrable``, in
    the triggerer; ``timeout`` (default 20 minutes, the SDK's limit) ends the wait with
    ``AirflowSensorTimeout``; ``soft_fail`` skips a failure or a timeout instead. Returns
    ``{"model_id", "status", "acted"}`` (``acted``: this task sent the start).

    ``cancel_on_kill`` (default true, as the Databricks operators): when a person kills the task
    while it waits (mark failed or success, clear), the server it started is stopped: in the worker
    through ``on_kill``, deferred through the trigger's ``on_kill`` (Airflow 3.3+; older versions
    stop nothing on a kill of a deferred task). A server this task did not start is never stopped.

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param wait_for_completion: wait until ``RUNNING`` (default); else return after the start.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks while waiting.
    :param timeout: seconds to wait at most, from the start of the task.
    :param soft_fail: skip the task instead of failing it when the server fails or the wait times out.
    :param cancel_on_kill: stop the server this task started when the task is killed while it waits.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    _action = "start"
    _settle_before_acting = (ServerStatus.STOPPING.value,)
    _after_act = (ServerStatus.STOPPED.value, ServerStatus.STARTING.value)

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        wait_for_completion: bool | str = True,
        deferrable: bool | None = None,
        poke_interval: float = 15,
        timeout: float = 20 * 60,
        soft_fail: bool = False,
        cancel_on_kill: bool = True,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_mls._compat import default_deferrable

        super().__init__(
            model_id=model_id,
            name=name,
            version=version,
            wait_for_completion=wait_for_completion,
            deferrable=default_deferrable() if deferrable is None else deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            soft_fail=soft_fail,
            mls_conn_id=mls_conn_id,
            **kwargs,
        )
        self.cancel_on_kill = cancel_on_kill

    def _act(self, id: int) -> Any:
        return self.hook.start_automl_model_server(id)

    def _decide(self, id: int, status: ServerStatus, sent: bool) -> Step:
        what = f"server of model {id}"
        if status is ServerStatus.RUNNING:
            return Step("done", f"{what} is RUNNING")
        if status is ServerStatus.STARTING:
            return Step("wait", f"{what} is STARTING", (ServerStatus.STARTING.value,))
        if status is ServerStatus.STOPPING:
            return Step("wait", f"{what} is STOPPING; it starts once STOPPED", (ServerStatus.STOPPING.value,))
        if status in SERVER_START_FAILURE_STATUSES and sent:
            return Step("failed", f"{what} is {status.value} after the start")
        return Step("act", f"{what} was {status.value}; start requested", self._after_act)


class StopAutoMLServerOperator(_AutoMLServerOperator):
    """Stop an AutoML model's server; with ``wait_for_completion`` (default False) wait for ``STOPPED``.

    Already ``STOPPED`` is success without a stop; ``STOPPING`` is waited for. A server that ends
    ``FAILED``/``UNKNOWN`` after the stop fails the task. Waits, defers, times out and soft-fails
    as ``StartAutoMLServerOperator`` does. Returns ``{"model_id", "status", "acted"}`` (``acted``:
    this task sent the stop).

    :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
    :param name: or the model's name (with ``version``).
    :param version: the model's version (with ``name``).
    :param wait_for_completion: wait until ``STOPPED``; by default return after the stop.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks while waiting.
    :param timeout: seconds to wait at most, from the start of the task.
    :param soft_fail: skip the task instead of failing it when the server fails or the wait times out.
    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        wait_for_completion: bool | str = False,
        deferrable: bool | None = None,
        poke_interval: float = 15,
        timeout: float = 20 * 60,
        soft_fail: bool = False,
        mls_conn_id: str = "mls_default",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_mls._compat import default_deferrable

        super().__init__(
            model_id=model_id,
            name=name,
            version=version,
            wait_for_completion=wait_for_completion,
            deferrable=default_deferrable() if deferrable is None else deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            soft_fail=soft_fail,
            mls_conn_id=mls_conn_id,
            **kwargs,
        )

    _action = "stop"
    _after_act = (ServerStatus.STOPPING.value, ServerStatus.RUNNING.value, ServerStatus.STARTING.value)

    def _act(self, id: int) -> Any:
        return self.hook.stop_automl_model_server(id)

    def _decide(self, id: int, status: ServerStatus, sent: bool) -> Step:
        what = f"server of model {id}"
        after_stop = self._after_act
        if status is ServerStatus.STOPPED:
            return Step("done", f"{what} is STOPPED")
        if status is ServerStatus.STOPPING:
            return Step("wait", f"{what} is STOPPING", after_stop if sent else (ServerStatus.STOPPING.value,))
        if status in SERVER_START_FAILURE_STATUSES and sent:
            return Step("failed", f"{what} is {status.value} after the stop")
        if status in (ServerStatus.RUNNING, ServerStatus.STARTING) and sent:
            return Step("wait", f"{what} is still {status.value} after the stop", after_stop)
        return Step("act", f"{what} was {status.value}; stop requested", after_stop)
