"""The shared HTTP pools of the triggers' async MLS client (``hooks/mls_async.py``).

Every client on the same event loop and base URL/timeouts shares one ``SharedPool`` (its
connections, reference-counted, closed with its last user). At most ``limit`` requests of a
pool are in flight at once; the others wait in the pool's own FIFO queue (O(1) per request),
never inside httpx. httpcore rescans every queued request against every connection whenever one
is queued or finishes, so an httpx pool holding hundreds of queued requests costs the square of
the queue and stalls the whole loop. Every connection is kept alive while it is in use (no churn).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import ssl

    from airflow_provider_mls.hooks._config import MLSSettings

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


def acquire(settings: MLSSettings, limit: int) -> SharedPool:
    """The running loop's pool of ``settings``' base URL and timeouts (a new one of ``limit``
    connections when there is none), with one more user."""
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.timeout)
    pool = pools.get(key)
    if pool is None or pool.closed:
        pool = pools[key] = SharedPool(settings, limit)
    pool.users += 1
    return pool


async def release(settings: MLSSettings, pool: SharedPool) -> None:
    """One user less of ``pool``; the last one closes it."""
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
