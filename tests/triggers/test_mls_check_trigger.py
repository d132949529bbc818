"""MLSCheckTrigger against the shared local MLS server: one event per run, retries, a cheap shared pool."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS, BaseHook
from airflow_provider_mls.checks import (
    ArtifactReadyCheck,
    ServerStatusCheck,
    TableReadyCheck,
    TrainingDoneCheck,
)
from airflow_provider_mls.exceptions import TERMINAL_ERRORS, MLSAuthError
from airflow_provider_mls.hooks._retry import DEFAULT_RETRY_MAX_WAIT, DEFAULT_RETRY_MIN_WAIT
from airflow_provider_mls.hooks.mls_async import MLSAsyncClient, shared_pool_count
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_mls._compat import TriggerEvent
    from tests.triggers.conftest import Admin

    RunTrigger = Callable[[MLSCheckTrigger], list[TriggerEvent]]

FAST_RETRIES = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}
MISSING_ID = 987654321


def one_event(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, [e.payload for e in events]
    payload: dict[str, Any] = events[0].payload
    assert set(payload) == {"status", "message", "value", "checks", "check"}
    json.dumps(payload)  # an event must be storable
    return payload


def table_trigger(table: str, **kwargs: Any) -> MLSCheckTrigger:
    return MLSCheckTrigger(check=TableReadyCheck(table=table).to_dict(), **{**FAST_RETRIES, **kwargs})


# ---- serialize -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"check": TableReadyCheck(table="t", model_id=3).to_dict()},
        {
            "check": ServerStatusCheck(model_id=4, wait_while=("STARTING", "STOPPING")).to_dict(),
            "mls_conn_id": "mls_other",
            "poke_interval": 2,
            "deadline": 1_900_000_000.5,
            "retry_min_wait": 0.5,
            "retry_max_wait": 4,
        },
        {"check": ArtifactReadyCheck(name="m", version="v1").to_dict(), "deadline": None},
        {"check": TrainingDoneCheck(model_id=5).to_dict(), "poke_interval": "30"},
        {"check": ServerStatusCheck(model_id=6).to_dict(), "carry": {"acted": True, "deadline": 1.5}},
    ],
)
def test_serialize_round_trip(kwargs: dict[str, Any]) -> None:
    trigger = MLSCheckTrigger(**kwargs)
    classpath, serialized = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    module, _, name = classpath.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is MLSCheckTrigger
    stored = json.loads(json.dumps(serialized))  # JSON-serializable, as the triggerer stores it
    rebuilt = MLSCheckTrigger(**stored)
    assert rebuilt.serialize() == (classpath, serialized)
    assert stored == serialized
    assert isinstance(serialized["poke_interval"], float)


def test_serialize_defaults() -> None:
    _, kwargs = MLSCheckTrigger(check={"kind": "training_done", "model_id": 1}).serialize()
    assert kwargs == {
        "check": {"kind": "training_done", "model_id": 1},
        "mls_conn_id": "mls_default",
        "poke_interval": 60.0,
        "deadline": None,
        "retry_min_wait": DEFAULT_RETRY_MIN_WAIT,
        "retry_max_wait": DEFAULT_RETRY_MAX_WAIT,
    }


# ---- terminal events -------------------------------------------------------------------------------


def test_success(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    table = f"ts_{unique}"
    admin.set_table(table)
    trigger = table_trigger(table, deadline=time.time() + 600)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "success" and payload["checks"] == 1
    assert payload["value"] == {"table": table, "model_id": None}
    assert payload["check"] == {"kind": "table_ready", "table": table, "model_id": None}
    assert "active and not loading" in payload["message"]


def test_success_of_other_checks(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    admin.set_artifact(f"ta-{unique}", "v1", {"size": 11})
    artifact = ArtifactReadyCheck(name=f"ta-{unique}", version="v1")
    payload = one_event(run_trigger(MLSCheckTrigger(check=artifact.to_dict(), **FAST_RETRIES)))
    assert payload["status"] == "success" and payload["value"]["info"] == {"size": 11}

    model = admin.create_automl_model(f"tm-{unique}")
    admin.finish_training(model["id"], "DONE")
    payload = one_event(run_trigger(MLSCheckTrigger(check=TrainingDoneCheck(model_id=model["id"]).to_dict())))
    assert payload["status"] == "success"
    assert payload["value"]["id"] == model["id"] and payload["value"]["status"] == "DONE"

    server = ServerStatusCheck(model_id=model["id"])  # never started: STOPPED, not STARTING
    payload = one_event(run_trigger(MLSCheckTrigger(check=server.to_dict())))
    assert payload["status"] == "success"
    assert payload["value"] == {"model_id": model["id"], "status": "STOPPED"}


def test_failed_training(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    model = admin.create_automl_model(f"tf-{unique}")
    admin.finish_training(model["id"], "FAILED", error=f"GPU quota exceeded {unique}")
    trigger = MLSCheckTrigger(check=TrainingDoneCheck(model_id=model["id"]).to_dict(), poke_interval=0.01)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "failed" and payload["checks"] == 1
    assert f"GPU quota exceeded {unique}" in payload["message"]
    assert payload["value"] is None


def test_failed_unknown_model(admin: Admin, run_trigger: RunTrigger) -> None:
    for check in (TrainingDoneCheck(model_id=MISSING_ID), ServerStatusCheck(model_id=MISSING_ID)):
        payload = one_event(run_trigger(MLSCheckTrigger(check=check.to_dict(), poke_interval=0.01)))
        assert payload["status"] == "failed" and "does not exist" in payload["message"]


def test_waits_then_succeeds(
    admin: Admin, run_trigger: RunTrigger, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    table = f"tw_{unique}"
    admin.set_table(table, is_active=True, is_loading=True)
    real = MLSAsyncClient.run_check
    outcomes: list[str] = []

    async def run_check(self: MLSAsyncClient, check: Any) -> Any:
        outcome = await real(self, check)
        outcomes.append(outcome.state)
        if len(outcomes) == 2:  # make it ready after the second check
            await asyncio.to_thread(admin.set_table, table, is_active=True, is_loading=False)
        return outcome

    monkeypatch.setattr(MLSAsyncClient, "run_check", run_check)
    payload = one_event(run_trigger(table_trigger(table, poke_interval=0.01, deadline=time.time() + 600)))
    assert payload["status"] == "success" and payload["checks"] == 3
    assert outcomes == ["waiting", "waiting", "done"]


# ---- timeout ---------------------------------------------------------------------------------------


def test_deadline_in_the_past_still_checks_once(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    table = f"tp_{unique}"
    payload = one_event(run_trigger(table_trigger(table, poke_interval=0.01, deadline=time.time() - 5)))
    assert payload["status"] == "timeout" and payload["checks"] == 1
    assert "is not active yet" in payload["message"]  # the last outcome is reported
    admin.set_table(table)  # ready: a late deadline does not hide success
    payload = one_event(run_trigger(table_trigger(table, poke_interval=0.01, deadline=time.time() - 5)))
    assert payload["status"] == "success"


def test_near_deadline_times_out_once(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    trigger = table_trigger(f"tn_{unique}", poke_interval=0.02, deadline=time.time() + 0.2)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "timeout" and payload["checks"] >= 1


def test_deadline_caps_the_wait_between_checks(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    """A poke_interval of an hour does not sleep past the deadline: the run ends (within the 60 s guard)."""
    trigger = table_trigger(f"tc_{unique}", poke_interval=3600, deadline=time.time() + 0.3)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "timeout" and payload["checks"] in (1, 2)


# ---- errors ----------------------------------------------------------------------------------------


def test_error_unknown_connection(mls_conn: Any, run_trigger: RunTrigger) -> None:
    trigger = MLSCheckTrigger(check=TableReadyCheck(table="t").to_dict(), mls_conn_id="mls_no_such_conn")
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "error" and payload["checks"] == 0
    assert "mls_no_such_conn" in payload["message"]


def test_bad_check_is_a_terminal_failure(mls_conn: Any, run_trigger: RunTrigger) -> None:
    """A malformed check can never succeed: ``failed`` (no retries), not ``error``."""
    payload = one_event(run_trigger(MLSCheckTrigger(check={"kind": "tea_ready"})))
    assert payload["status"] == "failed" and payload["checks"] == 0
    assert "MLSValidationError" in payload["message"] and "check" in payload["message"]


def test_error_wrong_password(
    admin: Admin, run_trigger: RunTrigger, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_WRONG", admin.conn_json(password="not-the-password"))
    trigger = MLSCheckTrigger(check=TableReadyCheck(table=f"tx_{unique}").to_dict(), mls_conn_id="mls_wrong")
    payload = one_event(run_trigger(trigger))
    # Wrong credentials: terminal if the provider says so (TERMINAL_ERRORS), as in poke mode.
    expected = "failed" if issubclass(MLSAuthError, TERMINAL_ERRORS) else "error"
    assert payload["status"] == expected and payload["checks"] == 1
    assert "MLSAuthError" in payload["message"] and "401" in payload["message"]
    assert "not-the-password" not in payload["message"]


def test_error_when_503_outlasts_the_retries(
    admin: Admin, run_trigger: RunTrigger, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_FEW_RETRIES", admin.conn_json(extra={"max_retries": 2}))
    table = f"t5_{unique}"
    path = f"/api/v1/dynamodb/tables/{table}/is_active"
    admin.set_table(table)
    admin.add_fault("GET", path, status=503, count=10)
    trigger = table_trigger(table, mls_conn_id="mls_few_retries", poke_interval=0.01)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "error" and payload["checks"] == 1
    assert "MLSServerError" in payload["message"] and "503" in payload["message"]
    (fault,) = admin.pending_faults()
    assert fault["count"] == 10 - 3  # 1 attempt + max_retries=2, then the trigger gives up


def test_one_503_is_retried(admin: Admin, run_trigger: RunTrigger, unique: str) -> None:
    table = f"t1_{unique}"
    admin.set_table(table)
    admin.add_fault("GET", f"/api/v1/dynamodb/tables/{table}/is_loading", status=503, count=1)
    payload = one_event(run_trigger(table_trigger(table)))
    assert payload["status"] == "success" and payload["checks"] == 1
    assert admin.pending_faults() == []


def test_read_timeout_is_retried(
    admin: Admin, run_trigger: RunTrigger, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_SHORT_READ", admin.conn_json(extra={"read_timeout": 0.3}))
    table = f"tr_{unique}"
    admin.set_table(table)
    admin.add_fault("GET", f"/api/v1/dynamodb/tables/{table}/is_active", status=None, delay=1.5, count=1)
    payload = one_event(run_trigger(table_trigger(table, mls_conn_id="mls_short_read")))
    assert payload["status"] == "success" and payload["checks"] == 1
    assert admin.pending_faults() == []


def test_error_when_mls_is_unreachable(
    mls_conn: Any, run_trigger: RunTrigger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_CLOSED",
        json.dumps(
            {
                "conn_type": "mls",
                "host": f"http://127.0.0.1:{port}",
                "login": "mls",
                "password": "secret-pw",
                "extra": {"max_retries": 1},
            }
        ),
    )
    trigger = table_trigger("t", mls_conn_id="mls_closed", poke_interval=0.01)
    payload = one_event(run_trigger(trigger))
    assert payload["status"] == "error" and payload["checks"] == 1
    assert "could not reach MLS" in payload["message"] and "after 2 attempt(s)" in payload["message"]


def test_a_4xx_answer_to_a_check_is_a_terminal_failure(
    admin: Admin, run_trigger: RunTrigger, unique: str
) -> None:
    table = f"t4_{unique}"
    body = json.dumps({"code": 400, "error": "table: not a valid table name", "results": None})
    admin.add_fault(
        "GET", f"/api/v1/dynamodb/tables/{table}", status=400, body=body, content_type="application/json"
    )
    payload = one_event(run_trigger(table_trigger(table)))
    assert "not a valid table name" in payload["message"]
    assert payload["status"] == "failed", payload


def test_cancelled_trigger_releases_the_pool(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """The triggerer cancels a trigger whose task timed out or was cleared: nothing may leak."""
    real = MLSAsyncClient.run_check
    checked = asyncio.Event()  # created inside the loop below

    async def run_check(self: MLSAsyncClient, check: Any) -> Any:
        outcome = await real(self, check)
        checked.set()
        return outcome

    monkeypatch.setattr(MLSAsyncClient, "run_check", run_check)

    async def scenario() -> tuple[int, int]:
        nonlocal checked
        checked = asyncio.Event()
        events: list[Any] = []

        async def consume() -> None:
            async for event in table_trigger(f"tq_{unique}", poke_interval=3600).run():
                events.append(event)

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(checked.wait(), 30)
        during = shared_pool_count()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert events == []
        return during, shared_pool_count()

    assert asyncio.run(scenario()) == (1, 0)


def test_consumer_that_stops_after_the_event_releases_the_pool(admin: Admin, unique: str) -> None:
    """A triggerer takes the first event and drops the generator: closing it gives the client back."""
    table = f"tg_{unique}"
    admin.set_table(table)

    async def scenario() -> tuple[int, int]:
        events = table_trigger(table).run()
        first = await events.__anext__()
        assert first.payload["status"] == "success"
        held = shared_pool_count()  # suspended at the yield, inside ``async with client``
        await events.aclose()
        return held, shared_pool_count()

    assert asyncio.run(scenario()) == (1, 0)

    async def drain() -> None:  # and a consumer that asks again gets nothing more
        events = table_trigger(table).run()
        await events.__anext__()
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()
        assert shared_pool_count() == 0

    asyncio.run(drain())


# ---- many triggers on one loop ---------------------------------------------------------------------


def test_many_triggers_share_one_pool_and_no_threads(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    n = 50
    tables = [f"tm_{unique}_{i}" for i in range(n)]
    for table in tables[::2]:  # half are active but still loading, half not active at all
        admin.set_table(table, is_active=True, is_loading=True)
    checks: dict[str, int] = {}
    pool_samples: list[int] = []
    thread_samples: list[int] = []
    real = MLSAsyncClient.run_check

    async def run_check(self: MLSAsyncClient, check: Any) -> Any:
        outcome = await real(self, check)
        checks[check.table] = checks.get(check.table, 0) + 1
        pool_samples.append(shared_pool_count())
        thread_samples.append(threading.active_count())
        return outcome

    monkeypatch.setattr(MLSAsyncClient, "run_check", run_check)

    async def scenario() -> list[list[TriggerEvent]]:
        async def collect(table: str) -> list[TriggerEvent]:
            trigger = table_trigger(table, poke_interval=0.02, deadline=time.time() + 120)
            return [event async for event in trigger.run()]

        runs = asyncio.gather(*(collect(t) for t in tables))
        while len(checks) < n or min(checks.values()) < 2:  # every trigger waited at least twice
            assert not runs.done(), "the triggers ended before the tables were ready"
            await asyncio.sleep(0.01)
        # Make every table ready from this loop (httpx, no thread), as a real service would.
        async with httpx.AsyncClient(auth=(admin.conn["login"], admin.conn["password"])) as local:
            for table in tables:
                response = await local.put(
                    f"{admin.url}/local/tables/{table}", json={"is_active": True, "is_loading": False}
                )
                assert response.status_code == 200
        results = await asyncio.wait_for(runs, 60)
        assert shared_pool_count() == 0  # the last trigger closed the shared client
        return results

    threads_before = threading.active_count()
    results = asyncio.run(scenario())

    payloads = [one_event(events) for events in results]
    assert [p["status"] for p in payloads] == ["success"] * n
    assert [p["value"]["table"] for p in payloads] == tables
    assert all(p["checks"] >= 3 for p in payloads)
    total_checks = sum(checks.values())
    assert total_checks >= 3 * n
    assert set(pool_samples) == {1}  # one shared httpx client for all of them, the whole time
    # Airflow may read the connection in one worker thread (asgiref's single thread executor);
    # a thread per trigger or per check would add 50 or 150+.
    assert max(thread_samples) - threads_before <= 3, (threads_before, max(thread_samples))


# ---- the connection is read without blocking the loop --------------------------------------------


def test_connection_is_not_read_synchronously_on_the_loop(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, run_trigger: RunTrigger, unique: str
) -> None:
    from airflow.providers.common.compat.sdk import Connection

    loop_thread: list[int] = []
    lookups: list[tuple[str, bool]] = []  # (what, on the loop thread?)
    real_get_connection = BaseHook.get_connection
    real_extra_dejson = Connection.extra_dejson

    def on_loop() -> bool:
        return bool(loop_thread) and threading.get_ident() == loop_thread[0]

    def guarded_get_connection(cls: Any, conn_id: str) -> Any:
        lookups.append(("get_connection", on_loop()))
        if on_loop():
            raise AssertionError("synchronous BaseHook.get_connection on the event loop")
        return real_get_connection(conn_id)

    def guarded_extra_dejson(self: Any) -> Any:
        lookups.append(("extra_dejson", on_loop()))
        if on_loop():
            raise AssertionError("synchronous Connection.extra_dejson on the event loop")
        return real_extra_dejson.fget(self)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(guarded_get_connection))
    monkeypatch.setattr(Connection, "extra_dejson", property(guarded_extra_dejson))

    table = f"tl_{unique}"
    admin.set_table(table)

    async def scenario() -> list[TriggerEvent]:
        loop_thread.append(threading.get_ident())
        with pytest.raises(AssertionError, match="on the event loop"):  # the guard is armed
            BaseHook.get_connection("mls_default")
        lookups.clear()
        return [event async for event in table_trigger(table).run()]

    payload = one_event(asyncio.run(scenario()))
    assert payload["status"] == "success", payload
    assert not [what for what, looped in lookups if looped]
    if AIRFLOW_V_3_0_PLUS:
        assert lookups == []  # aget_connection + aextra_dejson: no synchronous lookup at all
    else:
        assert ("get_connection", False) in lookups  # common-compat: sync_to_async, a worker thread
