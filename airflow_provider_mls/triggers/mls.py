"""The trigger behind every deferred MLS wait: one readiness check, repeated until it settles."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseTrigger, TriggerEvent
from airflow_provider_mls.checks import check_from_dict
from airflow_provider_mls.exceptions import TERMINAL_ERRORS, describe_error
from airflow_provider_mls.hooks._retry import DEFAULT_RETRY_MAX_WAIT, DEFAULT_RETRY_MIN_WAIT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Event statuses; ``execute_complete`` of the tasks accepts exactly these.
SUCCESS, FAILED, TIMEOUT, ERROR = "success", "failed", "timeout", "error"


class MLSCheckTrigger(BaseTrigger):
    """Run an MLS readiness check every ``poke_interval`` seconds and fire exactly one event.

    The event payload is ``{"status", "message", "value", "checks", "check"}`` with status
    ``success`` (the check is done; ``value`` is its result), ``failed`` (a terminal failure,
    e.g. a training that ended FAILED), ``timeout`` (the wall-clock ``deadline`` passed) or
    ``error`` (the check could not be made: connection, credentials, MLS errors after retries).
    An answer that no retry can change (400, 404, 409, bad input) is ``failed``, as in poke mode.

    :param check: ``Check.to_dict()`` of the check (see ``airflow_provider_mls.checks``).
    :param mls_conn_id: the MLS connection, read asynchronously once per run.
    :param poke_interval: seconds between checks.
    :param deadline: Unix time after which the trigger reports ``timeout`` (None: no deadline).
        Absolute, so a triggerer restart does not extend the wait.
    """

    def __init__(
        self,
        check: dict[str, Any],
        mls_conn_id: str = "mls_default",
        poke_interval: float = 60.0,
        deadline: float | None = None,
        retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT,
        retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.check = check
        self.mls_conn_id = mls_conn_id
        self.poke_interval = float(poke_interval)
        self.deadline = float(deadline) if deadline is not None else None
        self.retry_min_wait = float(retry_min_wait)
        self.retry_max_wait = float(retry_max_wait)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "check": self.check,
                "mls_conn_id": self.mls_conn_id,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "retry_min_wait": self.retry_min_wait,
                "retry_max_wait": self.retry_max_wait,
            },
        )

    def _event(self, status: str, message: str, checks: int, value: Any = None) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "value": value,
                "checks": checks,
                "check": self.check,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

        checks = 0
        try:
            check = check_from_dict(self.check)
            client = await MLSAsyncClient.from_connection(
                self.mls_conn_id,
                retry_min_wait=self.retry_min_wait,
                retry_max_wait=self.retry_max_wait,
                logger=self.log,
            )
        except Exception as exc:
            status = FAILED if isinstance(exc, TERMINAL_ERRORS) else ERROR
            yield self._event(status, f"could not start the MLS check: {describe_error(exc)}", checks)
            return
        what = check.describe()
        async with client:
            while True:
                checks += 1
                try:
                    outcome = await client.run_check(check)
                except Exception as exc:
                    # Bad input, unknown resource, duplicate: terminal, as in poke mode (no retries).
                    status = FAILED if isinstance(exc, TERMINAL_ERRORS) else ERROR
                    yield self._event(status, f"checking {what} failed: {describe_error(exc)}", checks)
                    return
                if outcome.done:
                    self.log.info("MLS check %d of %s: %s", checks, what, outcome.message)
                    yield self._event(SUCCESS, outcome.message, checks, outcome.value)
                    return
                if outcome.failed:
                    self.log.info("MLS check %d of %s: %s", checks, what, outcome.message)
                    yield self._event(FAILED, outcome.message, checks)
                    return
                wait = self.poke_interval
                if self.deadline is not None:
                    remaining = self.deadline - time.time()
                    if remaining <= 0:
                        yield self._event(
                            TIMEOUT,
                            f"timed out waiting for {what} after {checks} check(s); last: {outcome.message}",
                            checks,
                        )
                        return
                    wait = min(wait, remaining)
                self.log.info(
                    "MLS check %d of %s: %s; next check in %.1fs", checks, what, outcome.message, wait
                )
                await asyncio.sleep(wait)
