"""The async MLS client of the triggers: httpx, with the hook's retry policy and envelope parsing.

Many deferred sensors share one triggerer, so the client is cheap per check: the connection is
read once per trigger run (asynchronously), and every client on the same event loop and base
URL/timeouts shares one ``httpx.AsyncClient`` (one connection pool, reference-counted, closed
with its last user). A check is a coroutine on the triggerer's loop: no thread and no new
session per poke.

At most ``MAX_IN_FLIGHT`` requests of a shared pool are in flight at once; the others wait in
the pool's own FIFO queue (O(1) per request), never inside httpx. httpcore rescans every queued
request against every connection whenever one is queued or finishes, so an httpx pool holding
hundreds of queued requests costs the square of the queue and stalls the whole loop. Every
connection is kept alive while it is in use (no churn), see ``SharedPool``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying

from airflow_provider_mls.checks import Check, Outcome, Request, arun_check
from airflow_provider_mls.exceptions import MLSAuthError, auth_error, unreachable_error
from airflow_provider_mls.hooks._config import MLSSettings, read_settings
from airflow_provider_mls.hooks._envelope import encode_params, parse_envelope
from airflow_provider_mls.hooks._retry import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    IDEMPOTENT_METHODS,
    retry_policy,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from types import TracebackType

log = logging.getLogger(__name__)

# Requests of one shared pool in flight at once (= its connections, all kept alive): enough for
# a fast service to answer thousands of checks a second. Read when a pool is created.
MAX_IN_FLIGHT = 32
KEEPALIVE_EXPIRY = 30.0
USER_AGENT = "airflow-provider-mls"
_CACHE_SIZE = 4096  # parsed URLs and header sets a pool keeps


def environment_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (``*_PROXY``, ``NO_PROXY``), as httpx's ``trust_env``."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies_environment, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class SharedPool:
    """The HTTP connections of one loop and base URL/timeouts, their users and their request queue.

    Each connection is its own single-connection ``httpx.AsyncHTTPTransport`` (a "lane"), handed
    out by this pool: most recently used first (so a quiet pool keeps one warm connection and
    lets the others expire), to waiting requests in arrival order, at most ``limit`` at a time.
    httpcore's own pool bookkeeping scans every connection (with a ``poll`` of each idle socket)
    per request; with one connection per transport it is a constant, so a request costs the same
    with 1 or 64 connections. Requests go straight to the transport (no client layer: no cookies,
    redirects or auth flow, which MLS calls never use); the proxy of the environment
    (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``) is honoured as ``httpx.AsyncClient`` does.
    """

    def __init__(self, settings: MLSSettings, limit: int) -> None:
        self.settings = settings
        self.limit = max(1, int(limit))
        self.users = 0
        self.requests = 0
        self.peak_in_flight = 0
        self.closed = False
        self._lanes: list[httpx.AsyncHTTPTransport] = []  # every lane made, idle or busy
        self._idle: list[httpx.AsyncHTTPTransport] = []  # a stack: the most recently used on top
        self._waiting: deque[asyncio.Future[httpx.AsyncHTTPTransport]] = deque()
        self._ssl: ssl.SSLContext | None = None
        connect, read = settings.timeout
        self._extensions = {"timeout": httpx.Timeout(read, connect=connect).as_dict()}
        self._urls: dict[str, httpx.URL] = {}
        self._headers: dict[str, httpx.Headers] = {}

    @property
    def in_flight(self) -> int:
        return len(self._lanes) - len(self._idle)

    def _new_lane(self) -> httpx.AsyncHTTPTransport:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # one CA bundle for every lane
        lane = httpx.AsyncHTTPTransport(
            verify=self._ssl,
            limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_EXPIRY
            ),
            proxy=environment_proxy(self.settings.base_url),
        )
        self._lanes.append(lane)
        return lane

    async def _take(self) -> httpx.AsyncHTTPTransport:
        if self._idle:
            return self._idle.pop()
        if len(self._lanes) < self.limit:
            return self._new_lane()
        waiter: asyncio.Future[httpx.AsyncHTTPTransport] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give(waiter.result())  # handed over just as this request was cancelled
            raise

    def _give(self, lane: httpx.AsyncHTTPTransport) -> None:
        if self.closed:
            return  # aclose() closed every lane, busy ones included
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(lane)
                return
        self._idle.append(lane)

    def build(
        self, method: str, url: str, *, token: str, params: Any = None, json: Any = None
    ) -> httpx.Request:
        """The request, with the pool's headers and timeouts (parsed URLs and headers are reused)."""
        headers = self._headers.get(token)
        if headers is None:
            if len(self._headers) >= _CACHE_SIZE:
                self._headers.clear()
            headers = self._headers[token] = httpx.Headers(
                {"Accept": "application/json", "User-Agent": USER_AGENT, "Authorization": f"Basic {token}"}
            )
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return httpx.Request(
            method, parsed, params=params, json=json, headers=headers, extensions=self._extensions
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` once one of this pool's ``limit`` connections is free."""
        if self.closed:
            raise RuntimeError("the shared MLS HTTP pool is closed")
        lane = await self._take()
        self.requests += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = await lane.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response
        finally:
            self._give(lane)

    async def aclose(self) -> None:
        self.closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the shared MLS HTTP pool was closed"))
        lanes, self._lanes, self._idle = self._lanes, [], []
        for lane in lanes:
            await lane.aclose()

    def stats(self) -> dict[str, int]:
        return {
            "users": self.users,
            "limit": self.limit,
            "connections": len(self._lanes),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "requests": self.requests,
        }


# Per event loop: (base_url, timeout) -> SharedPool. Weak on the loop, so a closed loop's pools go
# with it.
_Key = tuple[str, tuple[float, float]]
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, SharedPool]] = (
    weakref.WeakKeyDictionary()
)


def _acquire(settings: MLSSettings) -> SharedPool:
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.timeout)
    pool = pools.get(key)
    if pool is None or pool.closed:
        pool = pools[key] = SharedPool(settings, MAX_IN_FLIGHT)
    pool.users += 1
    return pool


async def _release(settings: MLSSettings, pool: SharedPool) -> None:
    pools = _POOLS.get(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.timeout)
    if pools.get(key) is not pool:
        await pool.aclose()
        return
    pool.users -= 1
    if pool.users <= 0:
        del pools[key]
        await pool.aclose()


def shared_pool_count() -> int:
    """How many shared HTTP clients are open on the running loop (for tests and benchmarks)."""
    return len(_POOLS.get(asyncio.get_running_loop(), {}))


def shared_pool_stats() -> list[dict[str, int]]:
    """Users, limit, requests in flight (now and at the peak) of each shared pool on the running loop."""
    return [pool.stats() for pool in _POOLS.get(asyncio.get_running_loop(), {}).values()]


class MLSAsyncClient:
    """Async MLS calls: ``async with MLSAsyncClient(settings) as client: await client.run_check(check)``.

    :param settings: the connection's settings (``from_connection`` reads them without blocking).
    """

    def __init__(
        self,
        settings: MLSSettings,
        *,
        retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT,
        retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT,
        logger: Any = None,
    ) -> None:
        self.settings = settings
        self.retry_min_wait = retry_min_wait
        self.retry_max_wait = retry_max_wait
        self.log = logger if logger is not None else log
        self._pool: SharedPool | None = None
        self._token = settings.token

    @classmethod
    async def from_connection(cls, mls_conn_id: str, **kwargs: Any) -> MLSAsyncClient:
        from airflow_provider_mls._compat import aget_connection

        conn, extras = await aget_connection(mls_conn_id)
        return cls(read_settings(conn, extras=extras), **kwargs)

    async def __aenter__(self) -> MLSAsyncClient:
        if self._pool is None:
            self._pool = _acquire(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await _release(self.settings, pool)

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}/{path.lstrip('/')}"

    async def _request_once(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any) -> Any:
        if self._pool is None:
            raise RuntimeError("MLSAsyncClient used outside 'async with'")
        url = self._url(path)
        request = self._pool.build(method, url, token=self._token, params=encode_params(params), json=json)
        response = await self._pool.send(request)
        try:
            return parse_envelope(
                response.status_code, response.text, response.headers, method=method, url=url
            )
        except MLSAuthError as exc:
            raise auth_error(
                exc,
                conn_id=self.settings.conn_id,
                username=self.settings.username,
                base_url=self.settings.base_url,
            ) from None

    async def run(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool | None = None,
    ) -> Any:
        """``results`` of one MLS call, retried like the hook's (GET/PUT/DELETE by default)."""
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if retry_safe is None else retry_safe
        what = f"{method} {path}"
        attempts = 0

        async def once() -> Any:
            nonlocal attempts
            attempts += 1
            return await self._request_once(method, path, params, json)

        try:
            try:
                return await once()
            except Exception as exc:
                if not safe:
                    raise
                first: Exception | None = exc
            # Tenacity only once a call failed (it costs about as much as a request): the first
            # failure is replayed into it, so attempts, waits and log lines are as if it ran all along.

            async def again() -> Any:
                nonlocal first
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await once()

            policy = retry_policy(
                max_retries=self.settings.max_retries,
                min_wait=self.retry_min_wait,
                max_wait=self.retry_max_wait,
                log=self.log,
                what=what,
            )
            return await AsyncRetrying(**policy)(again)
        except httpx.TransportError as exc:
            raise unreachable_error(
                exc,
                conn_id=self.settings.conn_id,
                base_url=self.settings.base_url,
                attempts=attempts,
                method=method,
                url=self._url(path),
            ) from exc

    async def run_check(self, check: Check) -> Outcome:
        """One check (1-2 GETs)."""

        async def call(request: Request) -> Any:
            return await self.run(request.method, request.path, params=request.params)

        return await arun_check(check, call)
