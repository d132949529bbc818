"""The bases of every task of this provider, the one wait they share, and its event protocol.

Top to bottom: how a task fails; the event protocol (the statuses, ``PollingTrigger``, which sends
a trigger's one event, ``event_value``, which reads it); the wait skeleton (poke, the in-process poll,
check-then-defer, the resume) of every sensor and of the AutoML server operators (the approval tasks
wait on Airflow's HITL instead); the bases. A deferred wait's logic reads in four files: its task's
module, this one, ``triggers/mls.py`` and ``checks.py`` (``refs.py`` finds the model; the hooks and
``triggers/_shared.py`` carry the requests). Cheap to import: no requests, httpx, boto3, hook or trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_mls._compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseOperator,
    BaseSensorOperator,
    PokeReturnValue,
    default_deferrable,
    wait_memory,
)
from airflow_provider_mls._integration import lineage_of, persist_aws_links, persist_mls_links
from airflow_provider_mls.exceptions import TERMINAL_ERRORS, MLSError, describe_error
from airflow_provider_mls.links import MLSModelLink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

    from airflow.triggers.base import BaseTrigger as _TriggerBase
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_mls.checks import Check, Outcome
    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook
else:
    _TriggerBase = object  # Airflow's BaseTrigger completes it in each trigger's module (see PollingTrigger)

# Airflow's deferral timeout past the trigger's deadline, so that the trigger's "timeout" event wins.
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


# ---- AWS: the fields and the hook of every AWS task ------------------------------------------------

AWS_FIELDS = ("aws_conn_id", "region_name", "endpoint_url")


def aws_hook_kwargs(task: Any) -> dict[str, Any]:
    """The (rendered) AWS fields of a task, as an ``AwsServiceHook`` takes them."""
    return {field: getattr(task, field) for field in AWS_FIELDS}


def registry_hook(task: Any) -> SageMakerModelRegistryHook:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    return SageMakerModelRegistryHook(**aws_hook_kwargs(task))


# ---- the event protocol: the one event a trigger sends, and how a task reads it ------------------

# Event statuses; ``execute_complete`` of the waiting tasks accepts exactly these.
SUCCESS, FAILED, TIMEOUT, ERROR = "success", "failed", "timeout", "error"


class PollingTrigger(_TriggerBase):
    """A trigger that runs one check every ``poke_interval`` seconds and fires exactly one event.

    A trigger names Airflow's ``BaseTrigger`` after it (``class T(PollingTrigger, BaseTrigger)``),
    so that a DAG file's parse does not import ``airflow.triggers.base``.

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
        from airflow_provider_mls._compat import TriggerEvent

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


class MLSAwsBaseOperator(BaseOperator):
    """Base of the operators on AWS (the MLS model registry, prediction tables, SageMaker Model Registry).

    A subclass names every argument in its own ``__init__`` and implements ``_execute(context)``,
    which returns a small JSON value; errors as ``MLSBaseOperator``'s (transient AWS errors fail
    the try: Airflow's ``retries`` apply). Credentials: ``aws_conn_id`` through the amazon provider
    when it is installed, boto3's default chain otherwise. ``persist_links(context, **refs)``:
    ``table=...``, ``model_package_arn=...``.

    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = AWS_FIELDS
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    def execute(self, context: Any) -> Any:
        with fail_fast(self):
            return self._execute(context)

    def _execute(self, context: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def persist_links(self, context: Any, **refs: Any) -> None:
        """Store what the task acts on for its extra links, before any wait (``_integration``)."""
        persist_aws_links(self, context, refs)

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
        return MLSCheckTrigger.for_task(self, self._check, deadline, carry)


class MLSAwsBaseSensor(WaitSensor):
    """Base of the sensors on AWS: ``_outcome()`` is one check, ``_trigger(deadline, carry)`` repeats it deferred.

    The wait is ``WaitSensor``'s, as for the MLS sensors: ``poke`` runs the check; with
    ``deferrable=True`` ``execute`` checks once, then defers; ``execute_complete`` reads the
    trigger's one event and fails loudly on anything but success; ``soft_fail`` skips a terminal
    failure or a timeout, with the reason in the log.

    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = AWS_FIELDS
    ui_color = "#ffe8cc"

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    @cached_property
    def registry(self) -> SageMakerModelRegistryHook:
        return registry_hook(self)
