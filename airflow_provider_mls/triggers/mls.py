"""The trigger behind every deferred MLS wait: one readiness check, repeated until it settles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import BaseTrigger
from airflow_provider_mls.bases import ERROR, FAILED, SUCCESS, TIMEOUT, PollingTrigger
from airflow_provider_mls.checks import check_from_dict
from airflow_provider_mls.hooks._retry import DEFAULT_RETRY_MAX_WAIT, DEFAULT_RETRY_MIN_WAIT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.checks import Check

__all__ = ["ERROR", "FAILED", "SUCCESS", "TIMEOUT", "MLSCheckTrigger"]


class MLSCheckTrigger(PollingTrigger, BaseTrigger):
    """Run an MLS readiness check every ``poke_interval`` seconds and fire exactly one event.

    Triggers on one triggerer waiting on the same check (same connection, same check) share one
    request per interval; each keeps its own deadline, check count, log line and event. The
    first check is delayed by a small jitter (under a second) when many waits start at once.

    The event payload (see ``PollingTrigger``) also carries ``"check"`` (and ``"carry"`` with
    ``"deadline"`` when given): ``failed`` is a terminal failure such as a training that ended FAILED; ``error`` means
    the check could not be made (connection, credentials, MLS errors after the retries).

    :param check: ``Check.to_dict()`` of the check (see ``airflow_provider_mls.checks``).
    :param mls_conn_id: the MLS connection, read asynchronously once per run.
    :param poke_interval: seconds between checks.
    :param deadline: Unix time after which the trigger reports ``timeout`` (None: no deadline).
        Absolute, so a triggerer restart does not extend the wait.
    :param carry: JSON facts the deferring task needs when it resumes (e.g. whether it acted),
        returned unchanged in the event as ``"carry"``, next to the trigger's ``"deadline"``: the
        one channel across a deferral. Serialized only when given (older kwargs stay valid).
    :param stop_server_on_kill: the AutoML model whose server this wait's task started: when a
        person kills the deferred task (mark failed or success, clear; Airflow 3.3+ calls
        ``on_kill``), the trigger stops that server. None (default): killing the task stops nothing
        remote. Serialized only when given.

    Whatever else it holds (its share of a request, the HTTP pool's lanes) a trigger gives back on
    every exit (``async with``), kill included: the other waits on the same check keep their
    request and their schedule.
    """

    def __init__(
        self,
        check: dict[str, Any],
        mls_conn_id: str = "mls_default",
        poke_interval: float = 60.0,
        deadline: float | None = None,
        retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT,
        retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT,
        carry: dict[str, Any] | None = None,
        stop_server_on_kill: int | None = None,
    ) -> None:
        super().__init__(poke_interval=poke_interval, deadline=deadline, carry=carry)
        self.check = check
        self.stop_server_on_kill = stop_server_on_kill
        self.mls_conn_id = mls_conn_id
        self.retry_min_wait = float(retry_min_wait)
        self.retry_max_wait = float(retry_max_wait)

    @classmethod
    def for_task(
        cls, task: Any, check: Check, deadline: float, carry: dict[str, Any] | None, **kwargs: Any
    ) -> MLSCheckTrigger:
        """The trigger repeating ``check`` for a waiting MLS task (its connection and ``poke_interval``)."""
        return cls(
            check=check.to_dict(),
            mls_conn_id=task.mls_conn_id,
            poke_interval=float(task.poke_interval),
            deadline=deadline,
            carry=carry,
            **kwargs,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "check": self.check,
            "mls_conn_id": self.mls_conn_id,
            "retry_min_wait": self.retry_min_wait,
            "retry_max_wait": self.retry_max_wait,
        }
        if self.stop_server_on_kill is not None:
            kwargs["stop_server_on_kill"] = self.stop_server_on_kill
        return self._serialized(kwargs)

    label = "MLS check"

    def _event_extra(self) -> dict[str, Any]:
        return {"check": self.check}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import asyncio

        from airflow_provider_mls.hooks.mls_async import MLSAsyncClient
        from airflow_provider_mls.triggers._shared import shared_check, start_jitter

        try:
            check = check_from_dict(self.check)
            client = await MLSAsyncClient.from_connection(
                self.mls_conn_id,
                retry_min_wait=self.retry_min_wait,
                retry_max_wait=self.retry_max_wait,
                logger=self.log,
            )
        except Exception as exc:
            yield self._setup_failed(exc)
            return
        # Waits on the same check on this loop share one request per interval (see _shared).
        async with shared_check(client, check) as waiter:
            await asyncio.sleep(start_jitter(self.poke_interval))
            async for event in self._poll(check.describe(), lambda: waiter.check(self.poke_interval)):
                yield event

    async def on_kill(self) -> None:
        """A person killed the deferred task (Airflow 3.3+): stop the server its task started, if any.

        Not called on a triggerer restart, a redistribution, a timeout or the trigger's own event.
        One ``DELETE`` (retried like any idempotent call), bounded by ``[triggerer] on_kill_timeout``.
        """
        if self.stop_server_on_kill is None:
            return
        from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

        model_id = int(self.stop_server_on_kill)
        client = await MLSAsyncClient.from_connection(
            self.mls_conn_id,
            retry_min_wait=self.retry_min_wait,
            retry_max_wait=self.retry_max_wait,
            logger=self.log,
        )
        async with client:
            await client.run("DELETE", f"/api/v1/models/{model_id}/automl_model_server")
        self.log.info(
            "The task was killed: stopped the server of model %s, which it had started (cancel_on_kill)",
            model_id,
        )
