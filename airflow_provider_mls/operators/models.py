"""Operators on MLS manual models: create (deploy), update any field, the meta, the components, delete.

Thin over ``MLSHook``: each operator names every argument in its own ``__init__``, stores it
verbatim (it may still be Jinja), validates it in ``execute`` (errors name the field) and returns
a small JSON value: the create and update operators return a model *summary* (``SUMMARY_FIELDS``
of ``airflow_provider_mls.checks``; the whole model is ``MLSHook.get_model(id)``). Bad input, an
unknown model and a duplicate fail the task at once (``AirflowFailException``, no retries);
transient MLS errors are retried by the hook and then by Airflow's task retries. Also here:
``CreateRecord``, a create's trace in the task state store (the AutoML create uses it too).
Cheap to import: no requests at module level.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import TaskRecord, task_state
from airflow_provider_mls._integration import add_model_versions_outlet, record_model_version
from airflow_provider_mls.bases import MLSBaseOperator
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import MLSConflictError, MLSError, MLSNotFoundError, MLSValidationError
from airflow_provider_mls.refs import MODEL_REF_FIELDS, ModelSelector
from airflow_provider_mls.rules import MANUAL_FIELDS, check_if_exists, coerce_bool

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CreateManualModelOperator",
    "DeleteModelOperator",
    "UpdateManualModelOperator",
    "UpdateModelComponentsOperator",
    "UpdateModelMetaOperator",
]


def retry_not_before(context: Any) -> datetime | None:
    """For a create on a retry of its task (try 2 or later): the earliest its first try began.

    The DAG run's start, by Airflow's clock: a model an earlier try created (its answer lost) is
    not older than it. Clearing a finished run restarts the run (its start moves): a model of the
    earlier run is then not adopted. None on a first try, or when the run has no start.
    """
    try_number = getattr(context.get("ti"), "try_number", None)
    if isinstance(try_number, bool) or not isinstance(try_number, int) or try_number <= 1:
        return None
    dag_run = context.get("dag_run")
    start = getattr(dag_run, "start_date", None)
    if isinstance(start, datetime) and start.tzinfo is not None:
        return start
    return None


class CreateRecord:
    """A create's trace in the task state store (Airflow 3.3+): its retry reconnects by id, not by time.

    Key ``mls_create``: ``{"model_type", "name", "version", "values", "sent_at"}`` just before the
    POST is sent (``on_sending``), then ``"id"`` the moment MLS answers it (``on_created``);
    ``values`` holds a digest of each value the create was given. A later try of the task
    instance (a retry after a dead worker, or the task cleared) then knows exactly what the earlier
    ones did: ``known_id`` (the model it created, returned by identity), or nothing sent (a model
    holding the name and version is somebody else's: ``if_exists`` decides), or sent but never
    answered (the only case left to the time window of ``retry_not_before``). Without a task state
    store (Airflow 3.0-3.2, 2.11), or when the store cannot be read, the window decides the retry, as
    ``retry_not_before`` says. A store that cannot be written before the POST fails the try unsent.

    A later run whose values differ from the recorded create's (the task cleared after its DAG
    changed) is told so: ``if_exists="fail"`` raises ``MLSConflictError`` naming the fields,
    ``"skip"`` warns naming them and returns the model unchanged, ``"update"`` stores the new values.
    A person's edit of the model between the tries is not such a difference (the values are the task's).
    """

    key = "mls_create"

    def __init__(self, task: Any, context: Any, model_type: ModelType, name: str, version: str) -> None:
        store = task_state(context)
        self.record = TaskRecord(store, self.key, task.log) if store is not None else None
        self.context, self.log = context, task.log
        self.what = {"model_type": model_type.value, "name": name, "version": version}
        self._sent = False
        self._recorded: int | None = None
        self.values: dict[str, str] = {}

    @staticmethod
    def digests(values: Mapping[str, Any]) -> dict[str, str]:
        """A short digest of each value a create is given (what the record compares, not the values)."""
        import hashlib
        import json

        skip = ("name", "version", "if_exists")
        return {
            k: hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest()[:16]
            for k, v in values.items()
            if k not in skip and v is not None
        }

    def _changed(self, stored: Mapping[str, Any], known: int, if_exists: str | None) -> None:
        """The earlier create was given other values than this run: fail or warn as ``if_exists`` says."""
        recorded = stored.get("values")
        if not isinstance(recorded, dict):
            return
        changed = sorted(k for k in {*recorded, *self.values} if recorded.get(k) != self.values.get(k))
        if not changed or if_exists == "update":
            return
        what = f"model {known} ({self.what['name']}/{self.what['version']})"
        fields = ", ".join(changed)
        if if_exists == "skip":
            self.log.warning(
                "%s is this task's earlier create, given other values of %s than this run; "
                "if_exists=skip: returning it unchanged",
                what,
                fields,
            )
            return
        raise MLSConflictError(
            f"{what} is this task's earlier create, which was given other values of {fields} than this "
            f"run (the task's arguments changed since); if_exists={if_exists!r} does not change it: use "
            "if_exists='update' to store this run's values, or create a new version",
            code=409,
        )

    def prior(self, if_exists: str | None = None) -> dict[str, Any]:
        """``known_id`` and ``not_before`` for the hook's create, from what earlier tries recorded."""
        if self.record is None:
            return {"not_before": retry_not_before(self.context)}
        stored = self.record.load() or {}
        if self.record.unreadable:  # an earlier try may have sent it: the window decides, as before 3.3
            return {"not_before": retry_not_before(self.context)}
        if any(stored.get(k) != v for k, v in self.what.items()):
            return {}  # no earlier try sent this create
        known = stored.get("id")
        if isinstance(known, int) and not isinstance(known, bool):
            self._changed(stored, known, if_exists)
            return {"known_id": known}
        self.log.info("An earlier try sent this create at %s and lost the answer", stored.get("sent_at"))
        return {"not_before": retry_not_before(self.context)}

    def sending(self) -> None:
        """Record the create before its first POST; a store that cannot be written fails the try first.

        Nothing is sent yet, so the retry is clean; sent unrecorded, a retry would take the model
        this try created for somebody else's.
        """
        if self.record is not None and not self._sent:
            sent = {**self.what, "values": self.values, "sent_at": datetime.now(tz=UTC).isoformat()}
            if not self.record.save(sent, warn=False):
                raise MLSError(
                    f"Could not record the create of {self.what['name']}/{self.what['version']} in the "
                    "task state store: not sending it (a retry of the task sends it)"
                )
            self._sent = True

    def created(self, id: int) -> None:
        if self.record is not None:
            self._recorded = id
            self.record.save({**self.what, "values": self.values, "id": id})
            self.log.info("Recorded model %s in the task state store: a retry reconnects to it", id)

    def create(self, call: Any, **kwargs: Any) -> dict[str, Any]:
        """``call(**kwargs, known_id=..., not_before=..., on_created=...)`` with this record."""
        self.values = self.digests(kwargs)
        prior = self.prior(kwargs.get("if_exists"))
        model: dict[str, Any] = call(**kwargs, **prior, on_sending=self.sending, on_created=self.created)
        if self.record is not None and model.get("id") not in (prior.get("known_id"), self._recorded):
            self.created(int(model["id"]))  # e.g. if_exists skip/update on another's model
        elif self.record is not None and "known_id" in prior and kwargs.get("if_exists") == "update":
            self.created(int(model["id"]))  # it now holds this run's values
        return model


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
        *MODEL_REF_FIELDS,
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
        *MODEL_REF_FIELDS,
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

    template_fields: Sequence[str] = ("mls_conn_id", *MODEL_REF_FIELDS, "components")

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

    template_fields: Sequence[str] = ("mls_conn_id", *MODEL_REF_FIELDS, "delete_table", "ignore_missing")

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


def summary(model: Mapping[str, Any]) -> dict[str, Any]:
    """The model's summary (``checks.summary``), imported when a task runs, not when a DAG file is parsed."""
    from airflow_provider_mls.checks import summary as summary_of

    return summary_of(model)
