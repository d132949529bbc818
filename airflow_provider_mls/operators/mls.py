"""Operators for the MLS model lifecycle: every ``MLModelClient`` step of ``sktmls`` as a task.

Thin over ``MLSHook``: each operator stores its (templated) arguments verbatim in ``__init__``,
validates them in ``execute`` (errors name the field) and returns a small JSON-serializable
value. Bad input, an unknown model and a duplicate fail the task at once (``AirflowFailException``,
no retries); transient MLS errors are retried by the hook and then by Airflow's task retries.
Cheap to import: no requests at module level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseOperator,
    is_first_reschedule_poke,
)
from airflow_provider_mls._tasks import (
    MLSHookMixin,
    MLSWaitingTask,
    ModelRefMixin,
    ModelSelector,
    coerce_bool,
    coerce_id,
    fail_fast,
)
from airflow_provider_mls.checks import Check, Outcome, ServerStatusCheck
from airflow_provider_mls.constants import (
    PREDICTION_TYPES,
    SERVER_START_FAILURE_STATUSES,
    ModelType,
    ServerStatus,
)
from airflow_provider_mls.exceptions import MLSConflictError, MLSNotFoundError, MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

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

IF_EXISTS = ("fail", "skip", "update")
# The fields of a manual model that the create/update operators carry.
MANUAL_FIELDS = (
    "description",
    "creator",
    "model_lib",
    "model_data",
    "model_meta",
    "features",
    "table",
    "components",
)
_MODEL_REF_FIELDS = ("model_id", "name", "version")


class MLSBaseOperator(MLSHookMixin, BaseOperator):
    """Base of the MLS operators: ``mls_conn_id`` and a lazily built ``self.hook``."""

    template_fields: Sequence[str] = ("mls_conn_id",)
    ui_color = "#d9ecff"

    def __init__(self, *, mls_conn_id: str = "mls_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mls_conn_id = mls_conn_id

    def execute(self, context: Any) -> Any:
        with fail_fast():
            return self._execute(context)

    def _execute(self, context: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _ModelOperator(ModelRefMixin, MLSBaseOperator):
    """An operator on one model: ``model_id`` (id, ``"12"`` or a model dict) or ``name`` and ``version``."""


def _existing(conflict: MLSConflictError, lookup: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The model a create collided with; a model of the other type holding the pair is still a conflict."""
    try:
        return lookup()
    except MLSNotFoundError:
        raise MLSConflictError(
            f"{conflict.message}; the (name, version) belongs to a model of the other type, "
            "so if_exists cannot reuse it",
            code=conflict.code,
            status=conflict.status,
            method=conflict.method,
            url=conflict.url,
        ) from conflict


class _ManualFieldsMixin:
    """The fields of a manual model, as the create and update operators take them (``None``: not given)."""

    def __init__(
        self,
        *,
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: dict[str, Any] | None = None,
        features: str | list[str] | None = None,
        table: str | None = None,
        components: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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


class CreateManualModelOperator(_ManualFieldsMixin, MLSBaseOperator):
    """Create (deploy) a manual model: ``MLModelClient.create_model_deployment``.

    ``if_exists`` decides what a model with the same (name, version) means, so that a retried
    task or a re-run DAG does not break: ``fail`` (default), ``skip`` (return the existing model
    untouched) or ``update`` (update it in place with the fields given here; ``None`` fields are
    kept). Components are given by name (or as component dicts). Returns the model (dict).
    """

    template_fields: Sequence[str] = ("mls_conn_id", "name", "version", "if_exists", *MANUAL_FIELDS)
    template_fields_renderers = {"model_meta": "json"}

    def __init__(
        self,
        *,
        name: str,
        version: str,
        if_exists: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.version = version
        self.if_exists = if_exists

    def _execute(self, context: Any) -> dict[str, Any]:
        if self.if_exists not in IF_EXISTS:
            raise MLSValidationError(
                "if_exists", f"expected one of {', '.join(IF_EXISTS)}, got {self.if_exists!r}"
            )
        fields = self._manual_fields()
        try:
            model = self.hook.create_manual_model(self.name, self.version, **fields)
        except MLSConflictError as conflict:
            if self.if_exists == "fail":
                raise
            existing = _existing(
                conflict, lambda: self.hook.get_manual_model(name=self.name, version=self.version)
            )
            if self.if_exists == "skip":
                self.log.info(
                    "Manual model %s/%s exists (id %s); if_exists=skip: returning it unchanged",
                    self.name,
                    self.version,
                    existing["id"],
                )
                return existing
            self.log.info(
                "Manual model %s/%s exists (id %s); if_exists=update: updating %s",
                self.name,
                self.version,
                existing["id"],
                ", ".join(sorted(fields)) or "nothing",
            )
            return self.hook.update_manual_model(existing, **fields) if fields else existing
        self.log.info("Created manual model %s/%s (id %s)", self.name, self.version, model["id"])
        return model


class UpdateManualModelOperator(_ManualFieldsMixin, _ModelOperator):
    """Update any field of a manual model given by ``model_id`` or by ``name`` and ``version``.

    ``None`` keeps a field; ``""`` clears a string field, ``{}`` the meta, ``[]`` the components.
    ``new_name``/``new_version`` rename it. Returns the updated model.
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
        new_name: str | None = None,
        new_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.new_name = new_name
        self.new_version = new_version

    def _execute(self, context: Any) -> dict[str, Any]:
        self.selector.validate()
        fields = self._manual_fields()
        if self.new_name is not None:
            fields["name"] = self.new_name
        if self.new_version is not None:
            fields["version"] = self.new_version
        if not fields:
            raise MLSValidationError("fields", "nothing to update: give at least one field to change")
        model = self.hook.update_manual_model(self._target(ModelType.MANUAL), **fields)
        self.log.info("Updated manual model %s: %s", model["id"], ", ".join(sorted(fields)))
        return model


class UpdateModelMetaOperator(_ModelOperator):
    """Update a manual model's ``model_meta``: ``MLModelClient.update_model_deployment_meta``.

    ``partial_update=True`` merges ``model_meta`` into the stored meta; ``False`` (the SDK's
    default) replaces it. ``remove_keys`` are then removed. Returns the meta now stored.
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
        model_meta: dict[str, Any] | None = None,
        partial_update: bool = False,
        remove_keys: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_meta = model_meta
        self.partial_update = partial_update
        self.remove_keys = remove_keys

    def _execute(self, context: Any) -> dict[str, Any]:
        self.selector.validate()
        partial = coerce_bool(self.partial_update, "partial_update")
        remove_keys = self.remove_keys or []
        if self.model_meta is None and not remove_keys:
            raise MLSValidationError("model_meta", "give model_meta, remove_keys or both")
        if self.model_meta is None:
            partial = True  # only removing keys: keep the rest
        model = self.hook.update_manual_model_meta(
            self._target(ModelType.MANUAL),
            self.model_meta or {},
            partial_update=partial,
            remove_keys=remove_keys,
        )
        meta: dict[str, Any] = model.get("model_meta") or {}
        self.log.info(
            "Model %s meta %s; keys now: %s",
            model["id"],
            "merged" if partial else "replaced",
            ", ".join(sorted(meta)) or "(none)",
        )
        return meta


class UpdateModelComponentsOperator(_ModelOperator):
    """Set a manual model's components (names or component dicts; ``[]`` clears). Returns the model."""

    template_fields: Sequence[str] = ("mls_conn_id", *_MODEL_REF_FIELDS, "components")

    def __init__(
        self,
        *,
        components: list[str] | list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.components = components

    def _execute(self, context: Any) -> dict[str, Any]:
        model = self.hook.update_manual_model_components(self._target(ModelType.MANUAL), self.components)
        names = [c.get("name") for c in model.get("components") or [] if isinstance(c, dict)]
        self.log.info("Model %s components: %s", model["id"], ", ".join(map(str, names)) or "(none)")
        return model


class DeleteModelOperator(_ModelOperator):
    """Delete a model (manual or AutoML); with ``delete_table``, then its batch prediction table.

    ``ignore_missing=True`` makes a model that does not exist a success (``deleted: False``), so
    a re-run clean-up task does not fail. Returns ``{"id", "deleted", "table_dropped"}``.
    """

    template_fields: Sequence[str] = ("mls_conn_id", *_MODEL_REF_FIELDS, "delete_table", "ignore_missing")

    def __init__(
        self,
        *,
        delete_table: bool = False,
        ignore_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.delete_table = delete_table
        self.ignore_missing = ignore_missing

    def _execute(self, context: Any) -> dict[str, Any]:
        selector = self.selector
        selector.validate()
        delete_table = coerce_bool(self.delete_table, "delete_table")
        ignore_missing = coerce_bool(self.ignore_missing, "ignore_missing")
        try:
            model = selector.resolve(self.hook)
        except MLSNotFoundError as exc:
            if not ignore_missing:
                raise
            self.log.info("Nothing to delete (ignore_missing=True): %s", exc)
            given = selector.validate()[0]
            return {"id": given, "deleted": False, "table_dropped": False}
        return self.hook.delete_model(model, delete_table=delete_table)


class CreateAutoMLModelOperator(MLSBaseOperator):
    """Create an AutoML model (its training starts): ``MLModelClient.create_automl_model``.

    The dataset by ``dataset_id`` or ``dataset_name`` (exactly one). ``if_exists``: ``fail``
    (default) or ``skip`` (return the existing model, e.g. when a DAG is re-run). Returns the
    model; wait for the training with ``AutoMLTrainingDoneSensor``.
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.version = version
        self.description = description
        self.dataset_id = dataset_id
        self.dataset_name = dataset_name
        self.if_exists = if_exists

    def _execute(self, context: Any) -> dict[str, Any]:
        if self.if_exists not in ("fail", "skip"):
            raise MLSValidationError("if_exists", f"expected fail or skip, got {self.if_exists!r}")
        dataset_id = coerce_id(self.dataset_id, "dataset_id") if self.dataset_id is not None else None
        try:
            model = self.hook.create_automl_model(
                self.name,
                self.version,
                self.description,
                dataset_id=dataset_id,
                dataset_name=self.dataset_name,
            )
        except MLSConflictError as conflict:
            if self.if_exists == "fail":
                raise
            existing = _existing(
                conflict, lambda: self.hook.get_automl_model(name=self.name, version=self.version)
            )
            self.log.info(
                "AutoML model %s/%s exists (id %s, %s); if_exists=skip: returning it",
                self.name,
                self.version,
                existing["id"],
                existing.get("status"),
            )
            return existing
        self.log.info(
            "Created AutoML model %s/%s (id %s); training from dataset %s",
            self.name,
            self.version,
            model["id"],
            model.get("dataset_id"),
        )
        return model


class UpdateAutoMLServerHandlerOperator(_ModelOperator):
    """Replace an AutoML model's online prediction handler.

    Exactly one source: ``handler`` (Python source), ``handler_path`` (a file read at run time)
    or ``handler_from_model_id`` (copy another model's handler, as the SDK's upgrade does). The
    source must parse as Python before anything is sent. With ``only_if_missing=True`` a model
    that already has a handler keeps it (the SDK's upgrade copies the old handler only then).
    Returns ``{"model_id", "source", "chars", "replaced"}`` (``source`` is ``"kept"`` and
    ``replaced`` false when the model's own handler was kept).
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
        handler: str | None = None,
        handler_path: str | None = None,
        handler_from_model_id: int | str | dict[str, Any] | None = None,
        only_if_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.only_if_missing = only_if_missing
        # Not a template field: Python source is full of braces that Jinja would eat.
        self.handler = handler
        self.handler_path = handler_path
        self.handler_from_model_id = handler_from_model_id

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
        self.selector.validate()
        if coerce_bool(self.only_if_missing, "only_if_missing"):
            id = self._target_id(ModelType.AUTOML)
            current = self.hook.get_automl_model_server_handler(id)
            if current:
                self.log.info(
                    "Model %s has a handler (%d characters): kept (only_if_missing)", id, len(current)
                )
                return {"model_id": id, "source": "kept", "chars": len(current), "replaced": False}
            source, origin = self._source()
        else:
            source, origin = self._source()
            id = self._target_id(ModelType.AUTOML)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
            target.validate()
            to_model = target.resolve(self.hook)
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


class _AutoMLServerTask(ModelRefMixin, MLSWaitingTask):
    """An operator that acts on an AutoML model server and can wait for it to settle."""

    template_fields: tuple[str, ...] = (
        *MLSWaitingTask.template_fields,
        *_MODEL_REF_FIELDS,
        "wait_for_completion",
    )

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self._resolved_id: int | None = None
        self._acted = False
        self._watch_while: tuple[str, ...] = ()
        self._last_status: str | None = None

    def _id(self) -> int:
        if self._resolved_id is None:
            self._resolved_id = self._target_id(ModelType.AUTOML)
        return self._resolved_id

    def _watch(self) -> Check:
        return ServerStatusCheck(model_id=self._id(), wait_while=self._watch_while)

    def _wait_state(self) -> dict[str, Any]:
        return {"model_id": self._id(), "acted": self._acted}

    def _restore_wait_state(self, state: Mapping[str, Any]) -> None:
        if state.get("model_id") is not None:
            self._resolved_id = int(state["model_id"])
        self._acted = bool(state.get("acted", self._acted))

    def _after_trigger(self, context: Mapping[str, Any], value: Any, deadline: float) -> Any:
        # The server settled: decide on a fresh status (start after STOPPING, fail on FAILED, ...).
        return self._check_or_defer(context, deadline)

    def _acted_before(self, context: Mapping[str, Any]) -> bool:
        """Did this task already act (start/stop)? Reschedule mode keeps no memory between runs."""
        if self._acted:
            return True
        return bool(self.reschedule and not is_first_reschedule_poke(context))

    def _result(self, status: str) -> dict[str, Any]:
        return {"model_id": self._id(), "status": status, "acted": self._acted}

    # Statuses that must pass before this task can act, even without waiting for the result.
    _settle_before_acting: tuple[str, ...] = ()

    def execute(self, context: Any) -> Any:
        try:
            with fail_fast():
                wait = coerce_bool(self.wait_for_completion, "wait_for_completion")
                if wait:
                    return super().execute(context)
                return self._act_without_waiting(context)
        except (AirflowFailException, AirflowSensorTimeout) as exc:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping due to soft_fail: {exc}") from exc
            raise

    def _act_without_waiting(self, context: Any) -> dict[str, Any]:
        """Send the start/stop and return; only a status it can't act on yet (STOPPING) is waited out."""
        started = time.monotonic()
        while True:
            outcome = self._step(context)
            self._settle(outcome)
            if outcome.done or self._acted or self._last_status not in self._settle_before_acting:
                break
            if time.monotonic() - started > float(self.timeout):
                raise AirflowSensorTimeout(f"timed out after {self.timeout}s: {outcome.message}")
            self.log.info("%s; checking again in %ss before acting", outcome.message, self.poke_interval)
            time.sleep(float(self.poke_interval))
        self.log.info("%s (wait_for_completion=False: not waiting)", outcome.message)
        if outcome.done:
            return dict(outcome.value)
        return self._result(self.hook.get_automl_model_server_status(self._id()))

    def _status(self) -> ServerStatus:
        status = ServerStatus.parse(self.hook.get_automl_model_server_status(self._id()))
        self._last_status = status.value
        return status


class StartAutoMLServerOperator(_AutoMLServerTask):
    """Start an AutoML model's server and, by default, wait until it is ``RUNNING``.

    Already ``RUNNING`` is success without a new start; ``STARTING`` is waited for; ``STOPPING``
    waits for ``STOPPED`` and then starts; ``STOPPED`` starts. ``FAILED``/``UNKNOWN`` before this
    task started anything starts it again (as the SDK does); after its start they fail the task at
    once. Waits in ``poke``, ``reschedule`` or deferrable mode like a sensor (``timeout`` default
    20 minutes, the SDK's limit; ``poke_interval`` default 15 s). Returns ``{"model_id",
    "status", "acted"}`` (``acted``: this task sent a start). In reschedule mode each reschedule is a
    new process: a FAILED/UNKNOWN seen after the first execution of the try counts as "after the
    start", and ``acted`` reports the last execution only.
    """

    _settle_before_acting = (ServerStatus.STOPPING.value,)

    def __init__(self, *, timeout: float = 20 * 60, poke_interval: float = 15, **kwargs: Any) -> None:
        super().__init__(timeout=timeout, poke_interval=poke_interval, **kwargs)

    def _start(self, status: str) -> Outcome:
        self.hook.start_automl_model_server(self._id())
        self._acted = True
        self._watch_while = (ServerStatus.STOPPED.value, ServerStatus.STARTING.value)
        return Outcome("waiting", f"server of model {self._id()} was {status}; start requested")

    def _step(self, context: Mapping[str, Any]) -> Outcome:
        id = self._id()
        status = self._status()
        if status is ServerStatus.RUNNING:
            return Outcome("done", f"server of model {id} is RUNNING", self._result(status.value))
        if status is ServerStatus.STARTING:
            self._watch_while = (ServerStatus.STARTING.value,)
            return Outcome("waiting", f"server of model {id} is STARTING")
        if status is ServerStatus.STOPPING:
            self._watch_while = (ServerStatus.STOPPING.value,)
            return Outcome("waiting", f"server of model {id} is STOPPING; it starts once STOPPED")
        if status in SERVER_START_FAILURE_STATUSES:
            if self._acted_before(context):
                return Outcome("failed", f"server of model {id} is {status.value} after the start")
            return self._start(status.value)
        return self._start(status.value)  # STOPPED


class StopAutoMLServerOperator(_AutoMLServerTask):
    """Stop an AutoML model's server; with ``wait_for_completion`` (default False) wait for ``STOPPED``.

    Already ``STOPPED`` is success without a stop; ``STOPPING`` is waited for. A server that ends
    ``FAILED``/``UNKNOWN`` after the stop fails the task. Returns ``{"model_id", "status", "acted"}``.
    """

    def __init__(
        self,
        *,
        wait_for_completion: bool = False,
        timeout: float = 20 * 60,
        poke_interval: float = 15,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            wait_for_completion=wait_for_completion, timeout=timeout, poke_interval=poke_interval, **kwargs
        )

    def _step(self, context: Mapping[str, Any]) -> Outcome:
        id = self._id()
        status = self._status()
        if status is ServerStatus.STOPPED:
            return Outcome("done", f"server of model {id} is STOPPED", self._result(status.value))
        waiting = (ServerStatus.STOPPING.value, ServerStatus.RUNNING.value, ServerStatus.STARTING.value)
        if status is ServerStatus.STOPPING:
            self._watch_while = waiting
            return Outcome("waiting", f"server of model {id} is STOPPING")
        if status in SERVER_START_FAILURE_STATUSES and self._acted_before(context):
            return Outcome("failed", f"server of model {id} is {status.value} after the stop")
        if status in (ServerStatus.RUNNING, ServerStatus.STARTING) and self._acted_before(context):
            self._watch_while = waiting
            return Outcome("waiting", f"server of model {id} is still {status.value} after the stop")
        self.hook.stop_automl_model_server(id)
        self._acted = True
        self._watch_while = waiting
        return Outcome("waiting", f"server of model {id} was {status.value}; stop requested")
