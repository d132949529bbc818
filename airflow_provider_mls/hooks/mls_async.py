"""The async MLS client of the triggers: httpx, with the hook's retry policy and envelope parsing.

Many deferred sensors share one triggerer, so the client is cheap per check: the connection is
read once per trigger run (asynchronously), and every client on the same event loop and base
URL/timeouts shares one pool of connections (``hooks/_pool.py``'s ``SharedPool``: at most
``MAX_IN_FLIGHT`` requests in flight, the others queued in the pool, connections kept alive).
A check is a coroutine on the triggerer's loop: no thread and no new session per poke.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying

from airflow_provider_mls.checks import Check, Outcome, Request, arun_check
from airflow_provider_mls.exceptions import MLSAuthError, auth_error, unreachable_error
from airflow_provider_mls.hooks._config import MLSSettings, read_settings
from airflow_provider_mls.hooks._envelope import encode_params, parse_envelope
from airflow_provider_mls.hooks._pool import (  # re-exported: tests and benchmarks use them from here
    SharedPool,
    acquire,
    environment_proxy,
    release,
    shared_pool_count,
    shared_pool_stats,
)
from airflow_provider_mls.hooks._retry import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    IDEMPOTENT_METHODS,
    retry_policy,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

log = logging.getLogger(__name__)

# Requests of one shared pool in flight at once (= its connections, all kept alive): enough for
# a fast service to answer thousands of checks a second. Read when a pool is created.
MAX_IN_FLIGHT = 32

__all__ = [
    "MAX_IN_FLIGHT",
    "MLSAsyncClient",
    "SharedPool",
    "environment_proxy",
    "shared_pool_count",
    "shared_pool_stats",
]


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
            self._pool = acquire(self.settings, MAX_IN_FLIGHT)
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
            await release(self.settings, pool)

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
