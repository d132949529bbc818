"""Many MLSCheckTriggers on one loop: bounded requests in flight, one shared request per check, own events.

Against the shared local MLS server. The server counts for us: a pass-through fault
(``status=None``) on a path is used up by each request there, so ``count - pending`` is how many
requests the server saw; a slow fault (``delay``) keeps a request in flight while others join it.
No timing assertions: delays only make an overlap certain, counts and events are what is checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_mls.checks import TableReadyCheck, table_path
from airflow_provider_mls.hooks import mls_async
from airflow_provider_mls.hooks.mls_async import MLSAsyncClient, shared_pool_count, shared_pool_stats
from airflow_provider_mls.triggers._shared import JITTER_MAX, shared_check, shared_check_stats, start_jitter
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_mls._compat import TriggerEvent
    from tests.triggers.conftest import Admin

FAST_RETRIES = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}
COUNTER = 10_000


def table_trigger(table: str, **kwargs: Any) -> MLSCheckTrigger:
    kwargs = {"deadline": time.time() + 120, **FAST_RETRIES, **kwargs}
    return MLSCheckTrigger(check=TableReadyCheck(table=table).to_dict(), **kwargs)


def one_payload(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, [e.payload for e in events]
    payload: dict[str, Any] = events[0].payload
    json.dumps(payload)
    return payload


def count_requests(admin: Admin, path: str) -> Callable[[], int]:
    """A pass-through fault on ``path``: returns a function giving how many requests the server saw."""
    admin.add_fault("GET", path, status=None, count=COUNTER)

    def seen() -> int:
        pending = [f for f in admin.pending_faults() if f["path"] == path and f["status"] is None]
        return COUNTER - (pending[0]["count"] if pending else 0)

    return seen


async def collect(trigger: MLSCheckTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def run(scenario: Awaitable[Any]) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(scenario, 60)

    return asyncio.run(guarded())


# ---- bounded requests in flight ------------------------------------------------------------------


def test_requests_in_flight_are_bounded(admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    """30 triggers, a pool limit of 3, a slow server: never more than 3 requests inside httpx."""
    monkeypatch.setattr(mls_async, "MAX_IN_FLIGHT", 3)
    tables = [f"tb_{unique}_{i}" for i in range(30)]
    for table in tables:
        admin.set_table(table)
    admin.add_fault("GET", table_path(f"tb_{unique}_"), status=None, delay=0.2, count=60)
    now, peak = 0, 0
    real = httpx.AsyncHTTPTransport.handle_async_request

    async def counted(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        try:
            return await real(self, request)
        finally:
            now -= 1

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", counted)
    stats: list[list[dict[str, int]]] = []

    async def scenario() -> list[list[TriggerEvent]]:
        runs = asyncio.gather(*(collect(table_trigger(t)) for t in tables))
        while not runs.done():
            stats.append(shared_pool_stats())
            await asyncio.sleep(0.02)
        assert shared_pool_count() == 0
        return await runs

    payloads = [one_payload(events) for events in run(scenario())]
    assert [p["status"] for p in payloads] == ["success"] * 30
    assert peak == 3  # bounded, and the bound is used: the others queued in the pool, not in httpx
    pools = [pool for sample in stats for pool in sample]
    assert pools and {pool["limit"] for pool in pools} == {3}
    assert max(pool["connections"] for pool in pools) <= 3
    assert max(pool["in_flight"] for pool in pools) <= 3


def test_a_cancelled_request_waiting_for_a_connection_gives_nothing_away(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """Requests queued for the pool's one connection, cancelled while they wait: the rest still run."""
    monkeypatch.setattr(mls_async, "MAX_IN_FLIGHT", 1)
    table = f"tq_{unique}"
    admin.set_table(table)
    admin.add_fault("GET", table_path(table, "/is_active"), status=None, delay=0.3, count=1)
    path = table_path(table, "/is_active")

    async def scenario() -> list[Any]:
        async with await MLSAsyncClient.from_connection("mls_default", **FAST_RETRIES) as client:
            first = asyncio.ensure_future(client.run("GET", path))
            queued = [asyncio.ensure_future(client.run("GET", path)) for _ in range(5)]
            await asyncio.sleep(0.05)  # the first holds the connection; the others queue
            assert shared_pool_stats()[0]["in_flight"] == 1
            for task in queued[::2]:
                task.cancel()
            results = await asyncio.gather(first, *queued, return_exceptions=True)
            assert shared_pool_stats()[0]["in_flight"] == 0
            return results

    first, *queued = run(scenario())
    assert first == {"is_active": True}
    assert [isinstance(r, asyncio.CancelledError) for r in queued] == [True, False, True, False, True]
    assert queued[1] == queued[3] == {"is_active": True}


# ---- coalescing ----------------------------------------------------------------------------------


def test_waits_on_one_table_share_one_request_each_with_its_own_event(
    admin: Admin, caplog: pytest.LogCaptureFixture, unique: str
) -> None:
    """20 triggers on one table: one request answers all of them; each has its own event and log line."""
    table = f"ts_{unique}"
    admin.set_table(table)
    active, loading = table_path(table, "/is_active"), table_path(table, "/is_loading")
    admin.add_fault("GET", active, status=None, delay=0.5, count=1)  # in flight while all 20 join
    seen_active, seen_loading = count_requests(admin, active), count_requests(admin, loading)
    triggers = []
    for i in range(20):
        trigger = table_trigger(table, deadline=time.time() + 100 + i)
        trigger._log = logging.getLogger(f"mls.test.waiter{i}")
        triggers.append(trigger)

    async def scenario() -> list[list[TriggerEvent]]:
        runs = asyncio.gather(*(collect(t) for t in triggers))
        await asyncio.sleep(0.1)
        (entry,) = [s for s in shared_check_stats() if s["check"]["table"] == table]
        assert entry["waiters"] == 20 and entry["requests"] == 1 and entry["in_flight"]
        results = await runs
        assert shared_check_stats() == [] and shared_pool_count() == 0
        return results

    with caplog.at_level(logging.INFO, logger="mls.test"):
        payloads = [one_payload(events) for events in run(scenario())]
    assert [p["status"] for p in payloads] == ["success"] * 20
    assert [p["checks"] for p in payloads] == [1] * 20
    assert all(p["value"] == {"table": table, "model_id": None} for p in payloads)
    payloads[0]["value"]["table"] = "changed"  # each event owns its payload
    assert payloads[1]["value"]["table"] == table
    # One is_active (the slow fault took it, before the counter) and one is_loading for all 20.
    assert (seen_active(), seen_loading()) == (0, 1)
    lines = [r for r in caplog.records if r.name.startswith("mls.test.waiter")]
    assert sorted(r.name for r in lines) == sorted(f"mls.test.waiter{i}" for i in range(20))
    assert all("active and not loading" in r.getMessage() for r in lines)


def test_a_waiter_never_takes_the_same_answer_twice(admin: Admin, unique: str) -> None:
    """A fresh shared answer is reused by another waiter, but a waiter's next check asks again."""
    table = f"tf_{unique}"
    seen = count_requests(admin, table_path(table, "/is_active"))

    async def scenario() -> None:
        base = await MLSAsyncClient.from_connection("mls_default", **FAST_RETRIES)
        check = TableReadyCheck(table=table)
        async with shared_check(base, check) as a, shared_check(base, check) as b:
            assert (await a.check(60)).state == "waiting"
            assert (await b.check(60)).state == "waiting"  # a's answer, seconds old at most
            assert seen() == 1
            assert (await a.check(60)).state == "waiting"  # a never gets its last answer again
            assert seen() == 2
            assert (await b.check(0)).state == "waiting"  # too old for b's interval: a new request
            assert seen() == 3
            assert (await a.check(60)).state == "waiting"  # b's answer is newer than a's last one
            assert seen() == 3
            await asyncio.to_thread(admin.set_table, table)
            assert (await a.check(0)).state == "done"
            assert (await b.check(60)).state == "done"  # a's fresh answer
            assert seen() == 4

    run(scenario())


def test_distinct_connections_and_checks_are_not_merged(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """Same table, other credentials or another check: separate requests and separate answers."""
    monkeypatch.setenv("AIRFLOW_CONN_MLS_WRONG", admin.conn_json(password="not-the-password"))
    table = f"td_{unique}"
    admin.set_table(table)
    active = table_path(table, "/is_active")
    admin.add_fault("GET", active, status=None, delay=0.5, count=3)  # all three in flight together
    right = table_trigger(table)
    wrong = table_trigger(table, mls_conn_id="mls_wrong")
    other = MLSCheckTrigger(check=TableReadyCheck(table=table, model_id=7).to_dict(), **FAST_RETRIES)

    async def scenario() -> list[list[TriggerEvent]]:
        runs = asyncio.gather(collect(right), collect(wrong), collect(other))
        await asyncio.sleep(0.2)
        # The two with the right password wait on the slow server (the wrong one is refused at once).
        entries = [s for s in shared_check_stats() if s["check"]["table"] == table]
        assert sorted(s["check"]["model_id"] or 0 for s in entries) == [0, 7]
        assert all(s["waiters"] == 1 and s["requests"] == 1 for s in entries)
        return await runs

    ok, refused, owned = (one_payload(events) for events in run(scenario()))
    assert ok["status"] == "success" and ok["value"]["model_id"] is None
    assert refused["status"] in ("failed", "error") and "401" in refused["message"]
    assert owned["status"] == "success" and owned["value"]["model_id"] == 7


# ---- errors and cancellation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        (
            400,
            {"code": 400, "error": "table: not a valid table name", "results": None},
            "failed",
            "valid table",
        ),
        (503, {"code": 503, "error": "maintenance", "results": None}, "error", "MLSServerError"),
    ],
    ids=["terminal-400", "error-503"],
)
def test_an_error_of_the_shared_request_goes_to_each_waiter(
    admin: Admin,
    monkeypatch: pytest.MonkeyPatch,
    unique: str,
    status: int,
    body: dict[str, Any],
    expected: str,
    text: str,
) -> None:
    """As in the unshared path: terminal answers fail each waiter, errors after the retries error each."""
    monkeypatch.setenv("AIRFLOW_CONN_MLS_NO_RETRIES", admin.conn_json(extra={"max_retries": 0}))
    table = f"te_{unique}"
    active = table_path(table, "/is_active")
    admin.add_fault(
        "GET", active, status=status, body=json.dumps(body), content_type="application/json", delay=0.5
    )
    seen = count_requests(admin, active)
    triggers = [table_trigger(table, mls_conn_id="mls_no_retries") for _ in range(6)]

    async def scenario() -> list[list[TriggerEvent]]:
        return await asyncio.gather(*(collect(t) for t in triggers))

    payloads = [one_payload(events) for events in run(scenario())]
    assert [p["status"] for p in payloads] == [expected] * 6
    assert all(text in p["message"] and p["checks"] == 1 for p in payloads)
    assert seen() == 0  # the one failing request answered all six


def test_cancelling_one_waiter_does_not_cancel_the_shared_request(admin: Admin, unique: str) -> None:
    table = f"tc_{unique}"
    admin.set_table(table)
    active = table_path(table, "/is_active")
    admin.add_fault("GET", active, status=None, delay=0.5, count=1)
    seen = count_requests(admin, active)
    triggers = [table_trigger(table) for _ in range(5)]

    async def scenario() -> list[Any]:
        tasks = [asyncio.ensure_future(collect(t)) for t in triggers]
        await asyncio.sleep(0.1)  # all five wait on the one slow request
        tasks[0].cancel()  # the triggerer cancels a trigger (its task was cleared)
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert shared_check_stats() == [] and shared_pool_count() == 0
        return results

    results = run(scenario())
    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[3], asyncio.CancelledError)
    for i in (1, 2, 4):
        payload = one_payload(results[i])
        assert payload["status"] == "success" and payload["checks"] == 1
    assert seen() == 0  # nobody asked again: the shared request survived the cancellations


def test_the_last_waiter_leaving_cancels_the_request_and_frees_the_pool(admin: Admin, unique: str) -> None:
    table = f"tl_{unique}"
    admin.add_fault("GET", table_path(table, "/is_active"), status=None, delay=5, count=1)

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(collect(table_trigger(table))) for _ in range(3)]
        await asyncio.sleep(0.2)
        (entry,) = [s for s in shared_check_stats() if s["check"]["table"] == table]
        assert entry["waiters"] == 3 and entry["in_flight"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert shared_check_stats() == [] and shared_pool_count() == 0

    run(scenario())


# ---- spreading a burst of starts -----------------------------------------------------------------


def test_start_jitter_grows_with_the_burst_and_stays_bounded() -> None:
    async def scenario() -> tuple[list[float], list[float], float]:
        alone = [start_jitter(60)]
        burst = [start_jitter(60) for _ in range(5000)]
        short = max(start_jitter(0.05) for _ in range(100))
        return alone, burst, short

    alone, burst, short = asyncio.run(scenario())
    assert 0 <= alone[0] <= 0.01  # a lone start is not held back
    assert all(0 <= j <= JITTER_MAX for j in burst)
    assert max(burst[-1000:]) > 0.5  # a burst of thousands is spread over about a second
    assert short <= 0.05  # never more than the wait's own interval


def test_a_quiet_pool_keeps_one_connection(admin: Admin, unique: str) -> None:
    """Requests one after another reuse the most recently used connection: no churn, no extra lanes."""
    table = f"tk_{unique}"
    admin.set_table(table)

    async def scenario() -> dict[str, int]:
        async with await MLSAsyncClient.from_connection("mls_default", **FAST_RETRIES) as client:
            for _ in range(20):
                assert (await client.run_check(TableReadyCheck(table=table))).done
            (stats,) = shared_pool_stats()
            return stats

    stats = run(scenario())
    assert stats["requests"] == 40 and stats["connections"] == 1 and stats["in_flight"] == 0


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({"HTTPS_PROXY": "proxy.example:3128"}, "https://mls.example.com", "http://proxy.example:3128"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "mls.example.com"}, "https://mls.example.com", None),
        ({"HTTP_PROXY": "http://p:1"}, "https://mls.example.com", None),
        ({"ALL_PROXY": "socks5://p:1"}, "http://mls.example.com", "socks5://p:1"),
        ({}, "https://mls.example.com", None),
    ],
)
def test_the_pool_takes_the_proxy_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert mls_async.environment_proxy(url) == expected
