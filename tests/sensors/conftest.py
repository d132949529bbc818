"""Fixtures of the sensor tests: the shared local MLS server, its helper endpoints, request counting."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger

FAST = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}


class Admin(LocalMLSAdmin):
    """Set the scene on the shared server: ``/local/...`` and raw API calls, manual models through a hook."""

    def __init__(self, server: LocalMLSServer) -> None:
        super().__init__(server.url, server.auth)
        self.hook = MLSHook(**FAST)  # type: ignore[arg-type]

    def manual_model(self, name: str, version: str = "v1", table: str | None = None) -> dict[str, Any]:
        return self.hook.create_manual_model(name, version, table=table)

    def close(self) -> None:
        self.hook.close()
        super().close()


@pytest.fixture
def admin(mls_conn: LocalMLSServer) -> Iterator[Admin]:
    with Admin(mls_conn) as adm, adm.isolated_faults():
        yield adm


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


class Calls:
    """The HTTP requests a sensor's hook sends (retries included): one entry per request on the wire."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.calls)

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Calls]:
    """``count_calls(sensor)``: record (method, path) of every request the sensor's own hook sends."""

    def install(sensor: Any) -> Calls:
        calls = Calls()
        session = sensor.hook.get_conn()
        send = session.send

        def counting_send(request: Any, **kwargs: Any) -> Any:
            calls.calls.append((str(request.method).upper(), urlsplit(str(request.url)).path))
            return send(request, **kwargs)

        monkeypatch.setattr(session, "send", counting_send)
        return calls

    return install


class LogRecorder:
    """Stands in for a task's ``log`` (Airflow 3 logs through structlog, which ``caplog`` misses)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _record(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.messages.append(msg % args if args else msg)

    debug = info = warning = error = exception = _record


@pytest.fixture
def record_log(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], LogRecorder]:
    """``record_log(SensorClass)``: every message its instances log, formatted."""

    def install(cls: type) -> LogRecorder:
        recorder = LogRecorder()
        monkeypatch.setattr(cls, "log", recorder)
        return recorder

    return install


@pytest.fixture
def on_async_check(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[int], Any]], list[int]]:
    """``on_async_check(action)``: after every check a trigger makes, call ``action(n)`` in a thread.

    The action runs off the event loop (it may make blocking requests). Returns the list of check
    numbers seen so far.
    """
    from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

    def install(action: Callable[[int], Any]) -> list[int]:
        seen: list[int] = []
        real = MLSAsyncClient.run_check

        async def run_check(self: MLSAsyncClient, check: Any) -> Any:
            outcome = await real(self, check)
            seen.append(len(seen) + 1)
            await asyncio.to_thread(action, len(seen))
            return outcome

        monkeypatch.setattr(MLSAsyncClient, "run_check", run_check)
        return seen

    return install


@pytest.fixture
def run_trigger() -> Callable[[MLSCheckTrigger], list[TriggerEvent]]:
    """``run_trigger(trigger)``: every event it yields (the whole generator), on a fresh event loop."""

    def run(trigger: MLSCheckTrigger) -> list[TriggerEvent]:
        async def collect() -> list[TriggerEvent]:
            return [event async for event in trigger.run()]

        return asyncio.run(asyncio.wait_for(collect(), 60))

    return run
