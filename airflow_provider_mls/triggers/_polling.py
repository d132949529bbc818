"""The poll loop every trigger of this provider shares: one check, repeated until it settles."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseTrigger, TriggerEvent
from airflow_provider_mls.exceptions import TERMINAL_ERRORS, describe_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from airflow_provider_mls.checks import Outcome

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
