"""What the MLS operators and sensors share: model references, fail-fast errors and the wait machinery.

Cheap to import (DAG files import the operators on every parse): no requests, httpx or hook
import at module level; the hook is built on first use inside ``execute``.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    default_deferrable,
)
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import (
    TERMINAL_ERRORS,
    MLSError,
    MLSNotFoundError,
    MLSValidationError,
    describe_error,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow_provider_mls.checks import Check, Outcome
    from airflow_provider_mls.hooks.mls import MLSHook


# Extra seconds Airflow's own deferral timeout adds on top of the trigger's deadline, so that
# the trigger's clearer "timeout" event normally wins.
DEFERRAL_TIMEOUT_GRACE = 60.0


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Turn terminal MLS errors into ``AirflowFailException`` (no retries); the message keeps the field."""
    try:
        yield
    except TERMINAL_ERRORS as exc:
        raise AirflowFailException(describe_error(exc)) from exc


def coerce_id(value: object, field: str) -> int:
    """An id from an int, a rendered template (``"12"``) or a model dict of an upstream task (its ``id``)."""
    if isinstance(value, dict):
        if "id" not in value:
            raise MLSValidationError(field, f"expected a model id or a dict with 'id', got {value!r}")
        value = value["id"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MLSValidationError(field, f"expected a model id (a non-negative integer), got {value!r}")
    return value


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


class ModelRefMixin:
    """The ``model_id`` / ``name`` / ``version`` arguments of a task that acts on one model."""

    hook: MLSHook

    def __init__(
        self,
        *,
        model_id: int | str | dict[str, Any] | None = None,
        name: str | None = None,
        version: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id
        self.name = name
        self.version = version

    @property
    def selector(self) -> ModelSelector:
        return ModelSelector(self.model_id, self.name, self.version)

    def _target(self, model_type: ModelType | None = None) -> int | dict[str, Any]:
        """The model's id when given (no request), else the model looked up by (name, version)."""
        id, _, _ = self.selector.validate()
        return id if id is not None else self.selector.resolve(self.hook, model_type)

    def _target_id(self, model_type: ModelType | None = None) -> int:
        target = self._target(model_type)
        return target if isinstance(target, int) else int(target["id"])


class MLSHookMixin:
    """``self.hook``: the task's ``MLSHook``, built on first use (not at DAG parse time)."""

    mls_conn_id: str

    @cached_property
    def hook(self) -> MLSHook:
        from airflow_provider_mls.hooks.mls import MLSHook

        return MLSHook(mls_conn_id=self.mls_conn_id)


class WaitingTask(BaseSensorOperator):
    """Base of every task of this provider that waits (on MLS, or on SageMaker for an approval).

    Each check is ``_step(context)``: an ``Outcome`` (done with a value, waiting, or failed).
    ``mode="poke"`` and ``"reschedule"`` run it through ``BaseSensorOperator``; with
    ``deferrable=True`` the first check runs on the worker (done or failed ends the task at once)
    and the wait goes to the triggerer (``_trigger(deadline)``), with a wall-clock deadline of
    ``timeout`` seconds from that first check. ``timeout``, ``soft_fail`` and ``poke_interval``
    mean the same in every mode: a terminal failure (``AirflowFailException``) and a timeout
    (``AirflowSensorTimeout``) become a skip with ``soft_fail``.

    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    ui_color = "#e6f2ff"

    def __init__(self, *, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def _trigger(self, deadline: float) -> Any:  # pragma: no cover - abstract
        """The trigger that repeats the check while the task is deferred (after a waiting ``_step``)."""
        raise NotImplementedError

    def _describe_wait(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- what subclasses define ----------------------------------------------------------------

    def _step(self, context: Mapping[str, Any]) -> Outcome:  # pragma: no cover - abstract
        """One check (1-2 requests after the first); may act (start a server) on the way."""
        raise NotImplementedError

    def _after_trigger(self, context: Mapping[str, Any], value: Any, deadline: float) -> Any:
        """The trigger's check is done: by default its value is the result."""
        return value

    def _wait_state(self) -> dict[str, Any]:
        """What ``_step`` remembers across a deferral (JSON); restored by ``_restore_wait_state``."""
        return {}

    def _restore_wait_state(self, state: Mapping[str, Any]) -> None:
        return None

    # ---- machinery -----------------------------------------------------------------------------

    def _settle(self, outcome: Outcome) -> Any:
        """Log a check's outcome; done -> its value, failed -> ``AirflowFailException``, waiting -> None."""
        if outcome.failed:
            raise AirflowFailException(outcome.message)
        if outcome.done:
            self.log.info("%s", outcome.message)
            return outcome.value
        return None

    def poke(self, context: Any) -> PokeReturnValue | bool:
        with fail_fast():
            outcome = self._step(context)
        value = self._settle(outcome)
        if outcome.done:
            return PokeReturnValue(is_done=True, xcom_value=value)
        self.log.info("%s; next check in %ss (mode %s)", outcome.message, self.poke_interval, self.mode)
        return False

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        return self._check_or_defer(context, time.time() + float(self.timeout))

    def _check_or_defer(self, context: Any, deadline: float) -> Any:
        try:
            with fail_fast():
                outcome = self._step(context)
            value = self._settle(outcome)
        except (AirflowFailException, AirflowSensorTimeout) as exc:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping due to soft_fail: {exc}") from exc
            raise
        if outcome.done:
            return value
        remaining = deadline - time.time()
        if remaining <= 0:
            message = f"timed out after {self.timeout}s: {outcome.message}"
            raise AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)
        trigger = self._trigger(deadline)
        self.log.info(
            "%s; deferring to the triggerer: %s, checked every %ss for up to %.0fs more",
            outcome.message,
            self._describe_wait(),
            self.poke_interval,
            remaining,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            kwargs={"deadline": deadline, "state": self._wait_state()},
            timeout=timedelta(seconds=remaining + DEFERRAL_TIMEOUT_GRACE),
        )

    def execute_complete(
        self,
        context: Any,
        event: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Any:
        """Resume after the trigger: its one event decides (unknown or malformed events fail loudly).

        ``failed`` and ``timeout`` raise what poke mode raises (so ``soft_fail`` skips them); an
        ``error`` (MLS unreachable, credentials, 5xx after the retries) raises ``MLSError``, as in
        poke mode: the task fails and Airflow's ``retries`` apply, whatever ``soft_fail`` says.
        """
        if not isinstance(event, dict) or "status" not in event:
            raise MLSError(f"MLS trigger sent an unexpected event: {event!r}")
        status, message = event["status"], str(event.get("message") or "")
        if status == "success":
            self.log.info("Trigger: %s (after %s check(s))", message, event.get("checks"))
            self._restore_wait_state(state or {})
            return self._after_trigger(context, event.get("value"), deadline or time.time())
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "error":
            raise MLSError(f"MLS trigger error: {message}")
        raise MLSError(f"MLS trigger sent an event with unknown status {status!r}: {event!r}")


class MLSWaitingTask(MLSHookMixin, WaitingTask):
    """A waiting task on MLS: deferred, it hands ``_watch()`` to ``MLSCheckTrigger``.

    :param mls_conn_id: the MLS connection.
    """

    template_fields: tuple[str, ...] = ("mls_conn_id",)

    def __init__(self, *, mls_conn_id: str = "mls_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mls_conn_id = mls_conn_id

    def _watch(self) -> Check:  # pragma: no cover - abstract
        """The check the trigger repeats while the task is deferred (after a waiting ``_step``)."""
        raise NotImplementedError

    def _describe_wait(self) -> str:
        return self._watch().describe()

    def _trigger(self, deadline: float) -> Any:
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        return MLSCheckTrigger(
            check=self._watch().to_dict(),
            mls_conn_id=self.mls_conn_id,
            poke_interval=float(self.poke_interval),
            deadline=deadline,
        )
