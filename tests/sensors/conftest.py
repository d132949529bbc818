"""Fixtures of the sensor tests: the shared local MLS server, its helper endpoints, request counting."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger

FAST = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}


class Admin:
    """Set the scene on the shared server: models through a hook, readiness through ``/local/...``."""

    def __init__(self, server: Any) -> None:
        conn = json.loads(server.conn_json())
        self.url = server.url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (conn["login"], conn["password"])
        self.hook = MLSHook(**FAST)  # type: ignore[arg-type]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        body = response.json()
        assert not body.get("error"), body
        return body["results"]

    def table(self, table: str, *, is_active: bool = True, is_loading: bool = False) -> None:
        self.call("PUT", f"/local/tables/{table}", json={"is_active": is_active, "is_loading": is_loading})

    def artifact(self, name: str, version: str, info: dict[str, Any] | None = None) -> None:
        self.call("PUT", f"/local/artifacts/{name}/{version}", json={"info": info} if info else {})

    def training(self, model_id: int, status: str, error: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if error is not None:
            body["error"] = error
        result: dict[str, Any] = self.call("POST", f"/local/models/{model_id}/training", json=body)
        return result

    def fault(self, method: str, path: str, status: int | None = 503, count: int = 1, **kwargs: Any) -> None:
        self.call(
            "POST",
            "/local/faults",
            json={"method": method, "path": path, "status": status, "count": count, **kwargs},
        )

    def clear_faults(self) -> None:
        self.call("DELETE", "/local/faults")

    def manual_model(self, name: str, version: str = "v1", table: str | None = None) -> dict[str, Any]:
        return self.hook.create_manual_model(name, version, table=table)

    def automl_model(self, name: str, version: str = "v1") -> dict[str, Any]:
        dataset = self.call(
            "POST",
            "/api/v1/datasets",
            json={
                "name": f"ds-{name}-{version}",
                "type": "classification",
                "base_feature_conf": {"features": ["age"]},
                "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
            },
        )
        return self.hook.create_automl_model(name, version, "sensor test", dataset_id=dataset["id"])

    def close(self) -> None:
        self.hook.close()
        self.session.close()


@pytest.fixture
def admin(mls_conn: Any) -> Iterator[Admin]:
    adm = Admin(mls_conn)
    adm.clear_faults()
    yield adm
    adm.clear_faults()
    adm.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


class Calls:
    """The MLS calls (``hook.run``) a sensor makes: one entry per logical request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.calls)

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Calls]:
    """``count_calls(sensor)``: wrap the sensor's own hook's ``run`` and record every call."""

    def install(sensor: Any) -> Calls:
        calls = Calls()
        hook = sensor.hook
        real = hook.run

        def counting_run(method: str, path: str, **kwargs: Any) -> Any:
            calls.calls.append((method.upper(), path))
            return real(method, path, **kwargs)

        monkeypatch.setattr(hook, "run", counting_run)
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
