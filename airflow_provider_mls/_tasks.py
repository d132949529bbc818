"""The two bases every MLS task stands on, ``MLSBaseOperator`` and ``MLSBaseSensor``, and what they share.

Also here: model references (``ModelSelector``), input coercion, fail-fast errors, and the few
functions of a wait (settle a check's outcome, defer, read the trigger's one event) that the AWS
bases (``_registry_tasks.py``) reuse. Cheap to import (DAG files import the operators on every
parse): no requests, httpx or hook import at module level; the hook is built on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_mls._compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseOperator,
    BaseSensorOperator,
    BaseTrigger,
    PokeReturnValue,
    TaskRecord,
    TriggerEvent,
    default_deferrable,
    task_state,
    wait_memory,
)
from airflow_provider_mls._integration import lineage_of, persist_mls_links
from airflow_provider_mls.checks import SUMMARY_FIELDS as SUMMARY_FIELDS  # re-exported: the XCom summary
from airflow_provider_mls.checks import summary as summary
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import (
    TERMINAL_ERRORS,
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSValidationError,
    describe_error,
)
from airflow_provider_mls.links import MLSModelLink
from airflow_provider_mls.rules import check_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

    from airflow_provider_mls.checks import Check, Outcome
    from airflow_provider_mls.hooks.mls import MLSHook


# Extra seconds Airflow's own deferral timeout adds on top of the trigger's deadline, so that
# the trigger's clearer "timeout" event normally wins.
DEFERRAL_TIMEOUT_GRACE = 60.0

# ---- failing ----------------------------------------------------------------------------------------


def fail(task: Any, message: str, cause: BaseException | None = None) -> NoReturn:
    """A terminal failure: ``AirflowFailException``; with ``soft_fail`` a skip that keeps the reason."""
    if getattr(task, "soft_fail", False):
        task.log.warning("soft_fail: skipping the task because %s", message)
        raise AirflowSkipException(f"Skipping due to soft_fail: {message}") from cause
    raise AirflowFailException(message) from cause


def time_out(task: Any, message: str) -> NoReturn:
    """A wait that ran out of time: ``AirflowSensorTimeout``; with ``soft_fail`` a skip with the reason."""
    if getattr(task, "soft_fail", False):
        task.log.warning("soft_fail: skipping the task because it %s", message)
        raise AirflowSkipException(f"Skipping due to soft_fail: {message}")
    raise AirflowSensorTimeout(message)


@contextlib.contextmanager
def fail_fast(task: Any = None) -> Iterator[None]:
    """Terminal MLS errors (bad input naming the field, unknown model, duplicate) fail the task at once.

    ``AirflowFailException`` (no retries), or a skip with the reason when ``task.soft_fail``.
    Transient errors (``MLSError`` after the hook's retries) pass through: Airflow's retries apply.
    """
    try:
        yield
    except TERMINAL_ERRORS as exc:
        fail(task, describe_error(exc), exc)


def coerce_id(value: object, field: str) -> int:
    """An id from an int, a rendered template (``"12"``) or a model dict of an upstream task (its ``id``)."""
    if isinstance(value, dict):
        if "id" not in value:
            raise MLSValidationError(field, f"expected a model id or a dict with 'id', got {value!r}")
        value = value["id"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return check_id(value, field)


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


def coerce_bool(value: object, field: str) -> bool:
    """A bool, also from a rendered template (``"True"``/``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MLSValidationError(field, f"expected true or false, got {value!r}")


class ModelSelector:
    """A model given by ``id`` (an int, ``"12"``, or a model dict) or by ``name`` and ``version``."""

    def __init__(self, id: object, name: object, version: object, *, prefix: str = "") -> None:
        self.id, self.name, self.version, self.prefix = id, name, version, prefix

    def field(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def given(self) -> bool:
        return self.id is not None or self.name is not None or self.version is not None

    def validate(self) -> tuple[int | None, str | None, str | None]:
        """(id, None, None) or (None, name, version); bad or missing input names the field."""
        if self.id is not None:
            if self.name is not None or self.version is not None:
                raise MLSValidationError(
                    self.field("model_id"),
                    f"give either {self.field('model_id')} or {self.field('name')} and "
                    f"{self.field('version')}, not both",
                )
            return coerce_id(self.id, self.field("model_id")), None, None
        for key, value in (("name", self.name), ("version", self.version)):
            if not isinstance(value, str) or not value.strip():
                raise MLSValidationError(
                    self.field(key if self.name is not None or self.version is not None else "model_id"),
                    f"give {self.field('model_id')}, or {self.field('name')} and {self.field('version')} "
                    f"(got {key}={value!r})",
                )
        return None, str(self.name), str(self.version)

    def resolve(self, hook: MLSHook, model_type: ModelType | None = None) -> dict[str, Any]:
        """The model (1 request; 2 for a (name, version) of unknown type). Missing: ``MLSNotFoundError``."""
        id, name, version = self.validate()
        if id is not None:
            if model_type is ModelType.MANUAL:
                return hook.get_manual_model(id=id)
            if model_type is ModelType.AUTOML:
                return hook.get_automl_model(id=id)
            return hook.get_model(id)
        assert name is not None and version is not None
        if model_type is ModelType.AUTOML:
            return hook.get_automl_model(name=name, version=version)
        if model_type is ModelType.MANUAL:
            return hook.get_manual_model(name=name, version=version)
        try:
            return hook.get_manual_model(name=name, version=version)
        except MLSNotFoundError:
            try:
                return hook.get_automl_model(name=name, version=version)
            except MLSNotFoundError:
                raise MLSNotFoundError(
                    f"no model named {name!r} with version {version!r}", code=404
                ) from None

    def target(self, hook: MLSHook, model_type: ModelType | None = None) -> int | dict[str, Any]:
        """The model's id when given (no request), else the model looked up by (name, version)."""
        id, _, _ = self.validate()
        return id if id is not None else self.resolve(hook, model_type)

    def target_id(self, hook: MLSHook, model_type: ModelType | None = None) -> int:
        target = self.target(hook, model_type)
        return target if isinstance(target, int) else int(target["id"])


# ---- the event protocol: the one event a trigger sends, and how a task reads it ------------------

# Event statuses; ``execute_complete`` of the waiting tasks accepts exactly these.
SUCCESS, FAILED, TIMEOUT, ERROR = "success", "failed", "timeout", "error"


class PollingTrigger(BaseTrigger):
    """A trigger that runs one check every ``poke_interval`` seconds and fires exactly one event.

    The payload is ``{"status", "message", "value", "checks", **_event_extra()}`` with status
    ``success`` (done; ``value`` is the check's result), ``failed`` (terminal: waiting longer
    cannot help, including an answer no retry changes, such as 400/404/409), ``timeout`` (the
    wall-clock ``deadline`` passed) or ``error`` (the check could not be made).

    :param poke_interval: seconds between checks.
    :param deadline: Unix time after which the trigger reports ``timeout`` (None: no deadline).
        Absolute, so a triggerer restart does not extend the wait.
    :param carry: JSON facts the deferring task needs when it resumes (e.g. whether it acted),
        returned unchanged in the event as ``"carry"``, next to the trigger's ``"deadline"``: the
        one channel across a deferral. Serialized only when given (older kwargs stay valid).
    """

    label = "check"

    def __init__(
        self,
        *,
        poke_interval: float = 60.0,
        deadline: float | None = None,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.poke_interval = float(poke_interval)
        self.deadline = float(deadline) if deadline is not None else None
        self.carry = carry

    def _serialized(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(classpath, kwargs) with the polling arguments; ``carry`` only when given."""
        kwargs = {**kwargs, "poke_interval": self.poke_interval, "deadline": self.deadline}
        if self.carry is not None:
            kwargs["carry"] = self.carry
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _event_extra(self) -> dict[str, Any]:
        return {}

    def _event(self, status: str, message: str, checks: int, value: Any = None) -> TriggerEvent:
        payload = {"status": status, "message": message, "value": value, "checks": checks}
        if self.carry is not None:
            payload.update(carry=self.carry, deadline=self.deadline)
        return TriggerEvent({**payload, **self._event_extra()})  # type: ignore[no-untyped-call]

    def _setup_failed(self, exc: Exception) -> TriggerEvent:
        status = FAILED if isinstance(exc, TERMINAL_ERRORS) else ERROR
        return self._event(status, f"could not start the {self.label}: {describe_error(exc)}", 0)

    async def _poll(
        self, what: str, check_once: Callable[[], Awaitable[Outcome]]
    ) -> AsyncIterator[TriggerEvent]:
        """Check until done, failed, an error or the deadline; yields exactly one event."""
        checks = 0
        while True:
            checks += 1
            try:
                outcome = await check_once()
            except Exception as exc:
                # Bad input, unknown resource, duplicate: terminal, as in poke mode (no retries).
                status = FAILED if isinstance(exc, TERMINAL_ERRORS) else ERROR
                yield self._event(status, f"checking {what} failed: {describe_error(exc)}", checks)
                return
            if outcome.done or outcome.failed:
                self.log.info("%s %d of %s: %s", self.label, checks, what, outcome.message)
                status = SUCCESS if outcome.done else FAILED
                # A copy: waits that share a check share its outcome, each event owns its value.
                value = copy.deepcopy(outcome.value) if outcome.done else None
                yield self._event(status, outcome.message, checks, value)
                return
            wait = self.poke_interval
            if self.deadline is not None:
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    message = f"timed out waiting for {what} after {checks} check(s); last: {outcome.message}"
                    yield self._event(TIMEOUT, message, checks)
                    return
                wait = min(wait, remaining)
            self.log.info(
                "%s %d of %s: %s; next check in %.1fs", self.label, checks, what, outcome.message, wait
            )
            await asyncio.sleep(wait)


def event_value(task: Any, event: Mapping[str, Any] | None) -> Any:
    """The value of a trigger's one event; anything but success fails loudly.

    ``failed`` and ``timeout`` raise what poke mode raises (``soft_fail`` skips them, keeping the
    reason); ``error`` (MLS or AWS unreachable, credentials, 5xx after the retries) raises
    ``MLSError``: the task fails and Airflow's ``retries`` apply; an unknown or malformed event
    raises ``MLSError`` too.
    """
    if not isinstance(event, dict) or "status" not in event:
        raise MLSError(f"MLS trigger sent an unexpected event: {event!r}")
    status, message = event["status"], str(event.get("message") or "")
    if status == SUCCESS:
        task.log.info("Trigger: %s (after %s check(s))", message, event.get("checks"))
        return event.get("value")
    if status == FAILED:
        fail(task, message)
    if status == TIMEOUT:
        time_out(task, message)
    if status == ERROR:
        raise MLSError(f"MLS trigger error: {message}")
    raise MLSError(f"MLS trigger sent an event with unknown status {status!r}: {event!r}")


# ---- the wait: one skeleton for every sensor and every act-then-wait operator ---------------------
#
# A waiting task (every sensor; the AutoML server operators) gives
#   _outcome(context) -> Outcome       one check, on the worker;
#   _describe_wait() -> str            what it waits for, for the log;
#   _trigger(deadline, carry)          the same check, repeated by the triggerer until ``deadline``
#                                      (Unix time), ``carry`` (JSON facts of the task) in its event;
#   _resume(context, value, carry, deadline)  what a success event means (a sensor: its value);
# and Airflow's ``timeout``, ``poke_interval``, ``soft_fail`` and ``deferrable``. These functions are
# the wait: a poke (sensors), the in-process poll (operators), check-then-defer, and the resume.


def checked(task: Any, context: Any) -> Outcome:
    """One check on the worker; terminal errors (bad input, unknown resource) fail the task at once."""
    with fail_fast(task):
        outcome: Outcome = task._outcome(context)
    return outcome


def settle(task: Any, outcome: Outcome) -> Any:
    """Log a check's outcome; done -> its value, failed -> ``fail`` (terminal), waiting -> None."""
    if outcome.failed:
        fail(task, outcome.message)
    if outcome.done:
        task.log.info("%s", outcome.message)
        return outcome.value
    return None


def wait_poke(task: Any, context: Any) -> PokeReturnValue | bool:
    """A sensor's ``poke`` (modes ``poke`` and ``reschedule``): one check, settled."""
    outcome = checked(task, context)
    value = settle(task, outcome)
    if outcome.done:
        return PokeReturnValue(is_done=True, xcom_value=value)
    task.log.info("%s; next check in %ss (mode %s)", outcome.message, task.poke_interval, task.mode)
    return False


def wait_here(task: Any, context: Any, deadline: float, waiting: str) -> Any:
    """An operator's wait in its own process, checking every ``poke_interval``: the done check's value."""
    while True:
        if time.time() >= deadline:
            time_out(task, f"timed out after {task.timeout}s: {waiting}")
        task.log.info("%s; next check in %ss", waiting, task.poke_interval)
        time.sleep(max(0.0, min(float(task.poke_interval), deadline - time.time())))
        outcome = checked(task, context)
        if outcome.failed:
            fail(task, outcome.message)
        if outcome.done:
            return outcome.value
        waiting = outcome.message


def check_then_defer(task: Any, context: Any) -> Any:
    """A deferrable sensor's ``execute``: check once here (done or failed ends the task), then defer.

    The deadline is wall-clock, ``timeout`` seconds from this first check, across the deferral.
    """
    deadline = time.time() + float(task.timeout)
    outcome = checked(task, context)
    value = settle(task, outcome)
    if outcome.done:
        return value
    wait_defer(task, deadline=deadline, waiting=outcome.message)


def wait_defer(task: Any, *, deadline: float, waiting: str, carry: dict[str, Any] | None = None) -> NoReturn:
    """Hand the wait to the triggerer until ``deadline``; it resumes in ``execute_complete``.

    No deferral kwargs: what the task needs when it resumes (``carry``) travels in the trigger and
    comes back in its event, the one channel (``airflow dags test`` on 3.3 resumes with the event
    alone). Airflow's own deferral timeout is the deadline plus ``DEFERRAL_TIMEOUT_GRACE``.
    """
    remaining = deadline - time.time()
    if remaining <= 0:
        time_out(task, f"timed out after {task.timeout}s: {waiting}")
    task.log.info(
        "%s; deferring to the triggerer: %s, checked every %ss for up to %.0fs more",
        waiting,
        task._describe_wait(),
        task.poke_interval,
        remaining,
    )
    task.defer(
        trigger=task._trigger(deadline, carry),
        method_name="execute_complete",
        timeout=timedelta(seconds=remaining + DEFERRAL_TIMEOUT_GRACE),
    )
    raise AssertionError("defer() returned")  # pragma: no cover - defer always raises


def wait_resume(task: Any, context: Any, event: Mapping[str, Any] | None) -> Any:
    """``execute_complete``: the trigger's one event decides (``event_value``), then ``task._resume``.

    The event is the only channel: its ``carry`` and ``deadline``. An event of a trigger deferred by
    the previous release holds the deadline in its ``carry``: read there too.
    """
    with fail_fast(task):
        value = event_value(task, event)
        assert event is not None  # event_value raised otherwise
        carry = dict(event.get("carry") or {})
        deadline = event.get("deadline", carry.pop("deadline", None))
        return task._resume(context, value, carry, deadline)


# ---- the bases ----------------------------------------------------------------------------------------


class MLSBaseOperator(BaseOperator):
    """Base of the MLS operators: the connection, ``self.hook`` (built on first use), fail-fast errors.

    A subclass names every argument in its own ``__init__`` and implements ``_execute(context)``,
    which returns a small JSON value. Bad input (the error names the field), an unknown model and
    a duplicate fail the task at once (``AirflowFailException``, no retries); transient MLS errors
    are retried by the hook, then by the task's ``retries``.

    Extension point: ``persist_links(context, **refs)`` is called with what the task acts on
    (``model_id=...``) as soon as it is known, before any wait.

    :param mls_conn_id: the MLS connection (default ``mls_default``).
    """

    template_fields: Sequence[str] = ("mls_conn_id",)
    ui_color = "#d9ecff"
    operator_extra_links: tuple[Any, ...] = (MLSModelLink(),)

    def __init__(self, *, mls_conn_id: str = "mls_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mls_conn_id = mls_conn_id

    @cached_property
    def hook(self) -> MLSHook:
        from airflow_provider_mls.hooks.mls import MLSHook

        return MLSHook(mls_conn_id=self.mls_conn_id)

    def execute(self, context: Any) -> Any:
        with fail_fast(self):
            return self._execute(context)

    def _execute(self, context: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def persist_links(self, context: Any, **refs: Any) -> None:
        """Store what the task acts on for its extra links, before any wait (``_integration``)."""
        persist_mls_links(self, context, refs)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The OpenLineage datasets this run read and wrote (see ``airflow_provider_mls.lineage``)."""
        from airflow_provider_mls.lineage import operator_lineage

        return operator_lineage(lineage_of(self))


class WaitSensor(BaseSensorOperator):
    """The one sensor base of this package: every sensor's wait is the skeleton above.

    ``poke`` runs one check (``mode="poke"`` or ``"reschedule"``). With ``deferrable=True``
    ``execute`` checks once on the worker (done or failed ends the task without deferring), then
    defers to the subclass's ``_trigger``, which repeats the same check until it settles or the
    wall-clock deadline (``timeout`` seconds from that first check) passes; ``execute_complete``
    reads its one event and fails loudly on anything but success. A terminal failure raises
    ``AirflowFailException``, a timeout ``AirflowSensorTimeout``; with ``soft_fail`` both skip the
    task and the log says why. A subclass whose first check looks something up (``_looks_up``)
    may keep what it resolved across reschedules (``wait_memory``); it is forgotten when the try ends.

    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    def __init__(self, *, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def _outcome(self, context: Any) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def _describe_wait(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _trigger(self, deadline: float, carry: dict[str, Any] | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _resume(self, context: Any, value: Any, carry: dict[str, Any], deadline: float | None) -> Any:
        return value

    def _looks_up(self) -> bool:
        """Does the first check send a lookup worth keeping across reschedules (``wait_memory``)?"""
        return False

    def _remembers(self) -> bool:
        """Is the resolution kept across reschedules? Only a rescheduled poke (a deferred wait resolves once)."""
        return self.reschedule and not self.deferrable and self._looks_up()

    def _forget(self, context: Any) -> None:
        if self._remembers():
            wait_memory.forget(context)

    def poke(self, context: Any) -> PokeReturnValue | bool:
        return wait_poke(self, context)

    def execute(self, context: Any) -> Any:
        if self.deferrable:
            return check_then_defer(self, context)
        try:
            result = super().execute(context)
        except AirflowRescheduleException:
            raise
        except BaseException:
            self._forget(context)
            raise
        self._forget(context)
        return result

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Resume after the trigger: its one event decides (``wait_resume``); extra kwargs (a deferral
        of an older release) are ignored."""
        if self.reschedule and self._looks_up():
            wait_memory.forget(context)  # one an older version kept for a deferrable reschedule-mode wait
        return wait_resume(self, context, event)


class MLSBaseSensor(WaitSensor):
    """Base of the MLS sensors: each check is one ``Check`` of ``airflow_provider_mls.checks``.

    A subclass implements ``_resolve()`` (validate the inputs, look the model up if needed, build
    the check) and ``_inputs()`` (the rendered arguments ``_resolve`` depends on). The check is
    resolved once per task run; in reschedule mode once per try (kept in ``wait_memory`` across
    reschedules), so a check that is not ready costs one request (two for a table that is active
    but loading) in every mode. Deferred, ``MLSCheckTrigger`` repeats the same check.

    :param mls_conn_id: the MLS connection (default ``mls_default``).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("mls_conn_id",)
    ui_color = "#e6f2ff"

    def __init__(
        self, *, mls_conn_id: str = "mls_default", deferrable: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
        self.mls_conn_id = mls_conn_id
        self._check: Check | None = None

    @cached_property
    def hook(self) -> MLSHook:
        from airflow_provider_mls.hooks.mls import MLSHook

        return MLSHook(mls_conn_id=self.mls_conn_id)

    def _resolve(self) -> Check:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inputs(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _looks_up(self) -> bool:
        """Does ``_resolve`` send a request (a model lookup)? Only then is the check kept across reschedules."""
        return True

    def check(self, context: Any) -> Check:
        """The check of this wait, resolved once (in reschedule mode, once per try)."""
        if self._check is None:
            from airflow_provider_mls.checks import check_from_dict

            inputs = self._inputs()
            remember = self._remembers()
            stored = wait_memory.recall(context, inputs) if remember else None
            if stored is not None:
                self._check = check_from_dict(stored)
                self.log.info(
                    "Waiting for %s (resolved by the first check of this try)", self._check.describe()
                )
            else:
                self._check = self._resolve()
                self.log.info("Waiting for %s", self._check.describe())
                if remember:
                    wait_memory.remember(context, inputs, self._check.to_dict())
        return self._check

    def _outcome(self, context: Any) -> Outcome:
        return self.hook.run_check(self.check(context))

    def _describe_wait(self) -> str:
        assert self._check is not None  # resolved by the first check
        return self._check.describe()

    def _trigger(self, deadline: float, carry: dict[str, Any] | None) -> Any:
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        assert self._check is not None  # resolved by the first check
        return MLSCheckTrigger(
            check=self._check.to_dict(),
            mls_conn_id=self.mls_conn_id,
            poke_interval=float(self.poke_interval),
            deadline=deadline,
            carry=carry,
        )
