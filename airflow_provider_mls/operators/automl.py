"""Operators on MLS AutoML models: create one (its training starts), replace its online handler, and
start or stop its model server and wait for it (``AutoMLTrainingDoneSensor`` waits for a training).

The server operators act, then wait with the skeleton every sensor uses (``airflow_provider_mls.bases``):
in the worker, or deferred to ``MLSCheckTrigger``. Cheap to import: no requests at module level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_mls._compat import TaskRecord, task_state
from airflow_provider_mls.bases import (
    MLSBaseOperator,
    fail,
    fail_fast,
    wait_defer,
    wait_here,
    wait_resume,
)
from airflow_provider_mls.constants import SERVER_START_FAILURE_STATUSES, ModelType, ServerStatus
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.refs import MODEL_REF_FIELDS, ModelSelector
from airflow_provider_mls.rules import check_if_exists, coerce_bool, coerce_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_mls.checks import Outcome

__all__ = [
    "CreateAutoMLModelOperator",
    "StartAutoMLServerOperator",
    "StopAutoMLServerOperator",
    "UpdateAutoMLServerHandlerOperator",
]


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
        from airflow_provider_mls.operators.models import CreateRecord

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
        from airflow_provider_mls.checks import summary

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
        *MODEL_REF_FIELDS,
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
    stop, in every mode. The waiting itself is the skeleton of ``bases`` (``wait_here``,
    ``wait_defer``, ``wait_resume``), as for every sensor. The deadline is wall-clock: ``timeout`` seconds
    from the start of
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

    template_fields: Sequence[str] = ("mls_conn_id", *MODEL_REF_FIELDS, "wait_for_completion")
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

    # The wait of the skeleton (``bases``): the status check of the current step.

    def _outcome(self, context: Any) -> Outcome:
        return self.hook.run_check(self._waiting)

    def _describe_wait(self) -> str:
        return self._waiting.describe()

    def _trigger(self, deadline: float, carry: dict[str, Any] | None) -> Any:
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        id, acted = self._waiting.model_id, bool(carry and carry.get("acted"))
        stop = id if acted and self.cancel_on_kill and self._action == "start" else None
        return MLSCheckTrigger.for_task(self, self._waiting, deadline, carry, stop_server_on_kill=stop)

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
            from airflow_provider_mls.checks import ServerStatusCheck

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
    start); after this try's start they fail the try at once. Waits in the worker (every ``poke_interval``,
    default 15 s) or, with ``deferrable``, in
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
