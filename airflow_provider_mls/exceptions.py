"""Typed errors for the MLS envelope (``{"code", "error", "results"}``).

Kept free of Airflow imports so the local server and plain scripts can use them too.
"""

from __future__ import annotations

from typing import Any


class MLSError(Exception):
    """An MLS call failed. ``code`` is the envelope's code (HTTP-like), ``status`` the HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.retry_after = retry_after
        self.code = code
        self.status = status
        self.method = method
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        code = f"[{self.code}] " if self.code is not None else ""
        return f"{code}{self.message}{where}"

    def __reduce__(self) -> tuple[Any, ...]:  # keep the keyword attributes through pickling
        return (
            _rebuild,
            (type(self), self.message, self.code, self.status, self.method, self.url, self.retry_after),
        )


def _rebuild(
    cls: type[MLSError],
    message: str,
    code: int | None,
    status: int | None,
    method: str | None,
    url: str | None,
    retry_after: float | None,
) -> MLSError:
    return cls(message, code=code, status=status, method=method, url=url, retry_after=retry_after)


class MLSBadRequestError(MLSError):
    """400: the service rejected the input."""


class MLSAuthError(MLSError):
    """401/403: wrong or missing credentials."""


class MLSNotFoundError(MLSError):
    """404: the resource does not exist."""


class MLSConflictError(MLSError):
    """409: e.g. a model with this (name, version) exists already."""


class MLSRateLimitError(MLSError):
    """429: too many requests; ``retry_after`` holds the service's ``Retry-After`` seconds, if it sent one."""


class MLSServerError(MLSError):
    """5xx, or a response body that is not the MLS JSON envelope (a proxy's error page)."""


class MLSWriteConflictError(MLSError):
    """Concurrent writers kept undoing this write (a merge, an update) for every verification round.

    Not terminal: nothing this write changed is half-done (each round writes the whole model), and a
    task retry, once the other writers are done, applies it again.
    """


class MLSValidationError(MLSError, ValueError):
    """Bad input caught on our side, before any request was sent. ``field`` names the culprit.

    No ``code``/``status``: MLS did not answer (a 400 from the service is ``MLSBadRequestError``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message.split(": ", 1)[-1]))


# Errors that another attempt cannot fix: bad input, wrong credentials, an unknown resource, a
# duplicate. Tasks fail at once on them (no retries), in every mode: poke, reschedule and deferred.
TERMINAL_ERRORS: tuple[type[MLSError], ...] = (
    MLSValidationError,
    MLSBadRequestError,
    MLSAuthError,
    MLSNotFoundError,
    MLSConflictError,
)


def describe_error(exc: BaseException) -> str:
    """``"<ErrorClass>: <message>"``, the one wording of an error in task logs and trigger events."""
    return f"{type(exc).__name__}: {exc}"


def connection_refused(exc: BaseException) -> bool:
    """True when ``exc`` (requests, httpx or the standard library, however wrapped) says that nothing
    listens at the address: the server is down or the connection's host/port are wrong."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return True
        if isinstance(item, BaseException):
            if "Connection refused" in str(item) or "[Errno 111]" in str(item):
                return True
            todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


def unreachable_error(
    exc: BaseException, *, conn_id: str, base_url: str, attempts: int, method: str, url: str
) -> MLSServerError:
    """The error of an MLS that did not answer: which connection, which URL, and what to check."""
    where = f"MLS at {base_url} (connection {conn_id or '?'!r})"
    if connection_refused(exc):
        reason = "connection refused"
        hint = f"is MLS running at {base_url}? If it runs elsewhere, check the host of connection {conn_id!r}"
    else:
        detail = str(exc)
        reason = f"{type(exc).__name__}: {detail[:300]}{'...' if len(detail) > 300 else ''}"
        hint = f"check the host of connection {conn_id!r} and the network path to {base_url}"
    return MLSServerError(
        f"could not reach {where} after {attempts} attempt(s): {reason}; {hint}", method=method, url=url
    )


def auth_error(exc: MLSError, *, conn_id: str, username: str, base_url: str) -> MLSError:
    """A 401/403 that names the connection and its login, and what to fix (same class and status)."""
    if exc.status == 403 or exc.code == 403:
        hint = f"the user {username!r} of connection {conn_id!r} may not do this at {base_url}"
    else:
        hint = (
            f"MLS at {base_url} refused the login {username!r} of connection {conn_id!r}; "
            "check that connection's login and password"
        )
    return type(exc)(
        f"{exc.message} ({hint})",
        code=exc.code,
        status=exc.status,
        method=exc.method,
        url=exc.url,
        retry_after=exc.retry_after,
    )


_BY_CODE: dict[int, type[MLSError]] = {
    400: MLSBadRequestError,
    401: MLSAuthError,
    403: MLSAuthError,
    404: MLSNotFoundError,
    409: MLSConflictError,
    429: MLSRateLimitError,
}


def error_class_for(code: int | None) -> type[MLSError]:
    """The exception class for an envelope or HTTP code."""
    if code is None:
        return MLSError
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code >= 500:
        return MLSServerError
    return MLSError
