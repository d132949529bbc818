"""The async MLS client of the triggers: httpx, with the hook's retry policy and envelope parsing.

Many deferred sensors share one triggerer, so the client is cheap per check: the connection is
read once per trigger run (asynchronously), and every client on the same event loop and base
URL/timeouts shares one ``httpx.AsyncClient`` (one connection pool, reference-counted, closed
with its last user). A check is a coroutine on the triggerer's loop: no thread and no new
session per poke.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying

from airflow_provider_mls.checks import Check, Outcome, Request, arun_check
from airflow_provider_mls.exceptions import MLSServerError
from airflow_provider_mls.hooks._config import MLSSettings, read_settings
from airflow_provider_mls.hooks._envelope import parse_envelope
from airflow_provider_mls.hooks._retry import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    retry_policy,
)
from airflow_provider_mls.hooks.mls import IDEMPOTENT_METHODS, _params

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

log = logging.getLogger(__name__)

# Per event loop: (base_url, timeout) -> [client, users]. Weak on the loop, so a closed loop's
# pools go with it.
_Key = tuple[str, tuple[float, float]]
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, list[Any]]] = (
    weakref.WeakKeyDictionary()
)
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


def _acquire(settings: MLSSettings) -> httpx.AsyncClient:
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.timeout)
    entry = pools.get(key)
    if entry is None or entry[0].is_closed:
        connect, read = settings.timeout
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(read, connect=connect),
            limits=POOL_LIMITS,
            headers={"Accept": "application/json", "User-Agent": "airflow-provider-mls"},
            follow_redirects=False,
        )
        entry = pools[key] = [client, 0]
    entry[1] += 1
    client_: httpx.AsyncClient = entry[0]
    return client_


async def _release(settings: MLSSettings, client: httpx.AsyncClient) -> None:
    pools = _POOLS.get(asyncio.get_running_loop(), {})
    key = (settings.base_url, settings.timeout)
    entry = pools.get(key)
    if entry is None or entry[0] is not client:
        await client.aclose()
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del pools[key]
        await client.aclose()


def shared_pool_count() -> int:
    """How many shared HTTP clients are open on the running loop (for tests and benchmarks)."""
    return len(_POOLS.get(asyncio.get_running_loop(), {}))


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
        self._client: httpx.AsyncClient | None = None

    @classmethod
    async def from_connection(cls, mls_conn_id: str, **kwargs: Any) -> MLSAsyncClient:
        from airflow_provider_mls._compat import aget_connection

        conn, extras = await aget_connection(mls_conn_id)
        return cls(read_settings(conn, extras=extras), **kwargs)

    async def __aenter__(self) -> MLSAsyncClient:
        if self._client is None:
            self._client = _acquire(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _release(self.settings, client)

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}/{path.lstrip('/')}"

    async def _request_once(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any) -> Any:
        if self._client is None:
            raise RuntimeError("MLSAsyncClient used outside 'async with'")
        url = self._url(path)
        response = await self._client.request(
            method,
            url,
            params=_params(params),
            json=json,
            headers={"Authorization": f"Basic {self.settings.token}"},
        )
        return parse_envelope(response.status_code, response.text, response.headers, method=method, url=url)

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
            if not safe:
                return await once()
            policy = retry_policy(
                max_retries=self.settings.max_retries,
                min_wait=self.retry_min_wait,
                max_wait=self.retry_max_wait,
                log=self.log,
                what=what,
            )
            return await AsyncRetrying(**policy)(once)
        except httpx.TransportError as exc:
            raise MLSServerError(
                f"could not reach MLS ({type(exc).__name__}: {exc}) after {attempts} attempt(s)",
                method=method,
                url=self._url(path),
            ) from exc

    async def run_check(self, check: Check) -> Outcome:
        """One check (1-2 GETs)."""

        async def call(request: Request) -> Any:
            return await self.run(request.method, request.path, params=request.params)

        return await arun_check(check, call)
