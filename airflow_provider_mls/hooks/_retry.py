"""The retry policy of MLS calls, as data: tenacity kwargs plus one ``retryable_error`` predicate.

Shared by the sync hook (``tenacity.Retrying(**policy)``, over requests) and the async trigger
client (``tenacity.AsyncRetrying(**policy)``, over httpx), so both retry the same failures the
same way; both transports' errors are known here.
Only calls that are safe to repeat go through it; a create (POST) uses its own
look-up-before-retry loop in the hook.
"""

from __future__ import annotations

import email.utils
import inspect
import time
from typing import TYPE_CHECKING, Any

import httpx
import requests
from tenacity import retry_if_exception, wait_exponential_jitter

from airflow_provider_mls.exceptions import MLSError, MLSValidationError, connection_refused

# tenacity 9 renamed the first wait of wait_exponential_jitter ("initial" warns); 8.2 knows only "initial".
_JITTER_START = (
    "multiplier"
    if "multiplier" in inspect.signature(wait_exponential_jitter.__init__).parameters
    else "initial"
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenacity import RetryCallState
    from tenacity.wait import wait_base

# Methods that the retry policy may repeat; any other call (a POST) needs the caller's ``retry_safe=True``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# HTTP statuses worth another try: rate limiting and the answers of an unhealthy proxy/LB.
RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which a non-idempotent request may or may not have been carried out.
UNKNOWN_OUTCOME_HTTP_STATUSES = frozenset({502, 503, 504})

DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_MIN_WAIT = 1.0
DEFAULT_RETRY_MAX_WAIT = 30.0
# A refused connection (nothing listens: MLS down, or a wrong host/port) gets this many retries at
# most, whatever max_retries says: a restarting server is back within seconds, a wrong address never.
REFUSED_MAX_RETRIES = 2


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a certificate problem does not heal by waiting
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def retryable_error(exc: BaseException) -> bool:
    """True for failures that another identical request may not hit: transport errors, 429, 502/503/504."""
    if isinstance(exc, MLSValidationError):
        return False
    if isinstance(exc, MLSError):
        return exc.status in RETRYABLE_HTTP_STATUSES
    return _is_transport_error(exc)


def _never_sent(exc: BaseException) -> bool:
    """Transport errors raised before the request left this process (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason: object = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, NewConnectionError)
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def outcome_unknown(exc: BaseException) -> bool:
    """True when a failed request may nonetheless have been carried out by the service.

    A connection error after the request was sent, a read timeout, or a 502/503/504 from
    a proxy: the service may have committed the change and the answer got lost.
    """
    if isinstance(exc, MLSError):
        return exc.status in UNKNOWN_OUTCOME_HTTP_STATUSES
    return _is_transport_error(exc) and not _never_sent(exc)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_of(exc: BaseException | None) -> float | None:
    """The ``Retry-After`` seconds the client attached to an MLS error (attribute ``retry_after``)."""
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


class WaitRetryAfter:
    """Exponential backoff with jitter; a server's ``Retry-After`` (capped at ``max_wait``) is a lower bound."""

    def __init__(self, base: wait_base, max_wait: float) -> None:
        self.base = base
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.base(retry_state))
        outcome = retry_state.outcome
        retry_after = retry_after_of(outcome.exception() if outcome is not None else None)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_wait))
        return wait


def _log_retry(log: Any, what: str, max_retries: int) -> Callable[[RetryCallState], None]:
    def before_sleep(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        sleep = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        log.warning(
            "MLS %s failed (%s: %s); retry %s of %s in %.2fs",
            what,
            type(exc).__name__,
            exc,
            retry_state.attempt_number,
            min(max_retries, REFUSED_MAX_RETRIES)
            if exc is not None and connection_refused(exc)
            else max_retries,
            sleep,
        )

    return before_sleep


class StopAfter:
    """Stop after ``max_retries`` retries, or ``REFUSED_MAX_RETRIES`` when the last one was refused."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries

    def __call__(self, retry_state: RetryCallState) -> bool:
        attempts = retry_state.attempt_number
        if attempts > self.max_retries:
            return True
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return exc is not None and attempts > REFUSED_MAX_RETRIES and connection_refused(exc)


def retry_policy(
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
    min_wait: float = DEFAULT_RETRY_MIN_WAIT,
    max_wait: float = DEFAULT_RETRY_MAX_WAIT,
    log: Any = None,
    what: str = "call",
) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: the whole policy in one dict."""
    policy: dict[str, Any] = {
        "retry": retry_if_exception(retryable_error),
        "stop": StopAfter(max_retries),
        "wait": WaitRetryAfter(
            wait_exponential_jitter(**{_JITTER_START: min_wait}, max=max_wait, jitter=min_wait), max_wait
        ),
        "reraise": True,
    }
    if log is not None:
        policy["before_sleep"] = _log_retry(log, what, max_retries)
    return policy
