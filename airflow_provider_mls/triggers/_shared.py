"""Waits on the same thing share one request per interval, and a burst of starts is spread out.

A triggerer may hold a thousand sensors on ten tables. Waits on the same check (same connection
settings, same retry policy, same check) on one event loop share a ``SharedCheck``: at most one
request of it is in flight, and its latest outcome is reused by the other waiters while it is
younger than their own ``poke_interval``. Each waiter keeps its own schedule, deadline, check
count, log line and event; only the HTTP request is shared.

Freshness: a waiter takes a finished outcome only if its request started within the waiter's
own interval and after the request of the waiter's previous outcome (it never sees the same
answer twice); otherwise it joins the request in flight (if that started after its previous
one) or starts a new one. So a late joiner waits at most one request, and a waiter never gets
an answer older than its interval. An error (after the retries) goes to the waiters of that
request only, each as in the unshared path; it is not reused by later checks.

Cancelling a waiter (the triggerer cancels a trigger) never cancels the shared request: the
waiters await it through ``asyncio.shield``. The last waiter to leave cancels what is in flight
and gives the HTTP client back.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_mls.checks import Check, Outcome
    from airflow_provider_mls.hooks._config import MLSSettings


_Key = tuple["MLSSettings", float, float, str]


class SharedCheck:
    """The request in flight and the latest outcome of one check on one loop, for all its waiters."""

    def __init__(self, check: Check, client: MLSAsyncClient) -> None:
        self.check = check
        self.client = client
        self.waiters = 0
        self.requests = 0  # shared check runs started (each is 1-2 HTTP requests)
        self.task: asyncio.Task[Outcome] | None = None
        self.task_started = -math.inf
        self.outcome: Outcome | None = None
        self.outcome_started = -math.inf

    def start(self, now: float) -> asyncio.Task[Outcome]:
        task = asyncio.get_running_loop().create_task(self.client.run_check(self.check))
        self.task, self.task_started = task, now
        self.requests += 1

        def done(finished: asyncio.Task[Outcome]) -> None:
            if self.task is finished:
                self.task = None
            if finished.cancelled() or finished.exception() is not None:
                return  # exception() marks it retrieved: its waiters have it, nobody else needs it
            if now > self.outcome_started:
                self.outcome, self.outcome_started = finished.result(), now

        task.add_done_callback(done)
        return task


class Waiter:
    """One waiting trigger's handle on a ``SharedCheck``: ``await waiter.check(max_age)``."""

    def __init__(self, shared: SharedCheck) -> None:
        self.shared = shared
        self.seen = -math.inf  # when the request of the last outcome this waiter got started

    async def check(self, max_age: float) -> Outcome:
        """An outcome no older than ``max_age`` seconds and newer than this waiter's previous one."""
        shared = self.shared
        now = asyncio.get_running_loop().time()
        if (
            shared.outcome is not None
            and self.seen < shared.outcome_started
            and now - shared.outcome_started <= max_age
        ):
            self.seen = shared.outcome_started
            return shared.outcome
        if shared.task is not None and self.seen < shared.task_started:
            task, self.seen = shared.task, shared.task_started
        else:
            task, self.seen = shared.start(now), now
        return await asyncio.shield(task)


# Per event loop: key -> SharedCheck. Weak on the loop, so a closed loop's entries go with it.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, SharedCheck]] = (
    weakref.WeakKeyDictionary()
)


def _key(client: MLSAsyncClient, check: Check) -> _Key:
    what = json.dumps(check.to_dict(), sort_keys=True, separators=(",", ":"))
    return (client.settings, client.retry_min_wait, client.retry_max_wait, what)


@asynccontextmanager
async def shared_check(client: MLSAsyncClient, check: Check) -> AsyncIterator[Waiter]:
    """``async with shared_check(client, check) as waiter:`` join (or open) the check's shared entry.

    ``client`` gives the settings and retry policy (it is not entered); the entry has its own client.
    """
    entries = _SHARED.setdefault(asyncio.get_running_loop(), {})
    key = _key(client, check)
    shared = entries.get(key)
    if shared is None:
        own = MLSAsyncClient(
            client.settings,
            retry_min_wait=client.retry_min_wait,
            retry_max_wait=client.retry_max_wait,
            logger=client.log,  # retries are logged by the wait that opened the entry
        )
        await own.__aenter__()
        shared = entries[key] = SharedCheck(check, own)
    shared.waiters += 1
    try:
        yield Waiter(shared)
    finally:
        shared.waiters -= 1
        if shared.waiters <= 0:
            if entries.get(key) is shared:
                del entries[key]
            if shared.task is not None:
                shared.task.cancel()  # nobody is left to take its answer
            await shared.client.aclose()


def shared_check_stats() -> list[dict[str, Any]]:
    """Waiters and check runs of each shared check on the running loop (for tests and benchmarks)."""
    return [
        {
            "check": s.check.to_dict(),
            "waiters": s.waiters,
            "requests": s.requests,
            "in_flight": s.task is not None,
        }
        for s in _SHARED.get(asyncio.get_running_loop(), {}).values()
    ]


# ---- spreading a burst of starts ---------------------------------------------------------------------

# A triggerer restart starts every deferred wait at once. Each start delays its first check by a
# random share of a window that grows with the starts of the last second on this loop (STAGGER
# per start, at most JITTER_MAX and the wait's own interval): one start waits a few milliseconds,
# a thousand are spread over a second. No check is ever later than its interval plus JITTER_MAX.
JITTER_MAX = 1.0
STAGGER = 0.002
_BURSTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[float]] = weakref.WeakKeyDictionary()


def start_jitter(poke_interval: float) -> float:
    """Seconds to delay a wait's first check so that a burst of starts is spread (0 to 1 s)."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    burst = _BURSTS.setdefault(loop, [now, 0.0])  # [window start, starts in the window]
    if now - burst[0] > JITTER_MAX:
        burst[0], burst[1] = now, 0.0
    burst[1] += 1
    window = min(JITTER_MAX, max(poke_interval, 0.0), burst[1] * STAGGER)
    return random.uniform(0.0, window)
