"""Errors the local MLS server answers with an envelope (``{"code", "error", "results": null}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Callable


class APIError(Exception):
    """An error answered as ``{"code": status, "error": message, "results": None}`` with HTTP ``status``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def bad_request(field: str, message: str) -> APIError:
    """400 naming the offending field: ``"<field>: <message>"``."""
    return APIError(400, f"{field}: {message}")


def checked(check: Callable[[Any, str], Any], value: Any, field: str) -> Any:
    """Apply a shared input rule (``airflow_provider_mls.rules``); its error becomes a 400 naming the field."""
    try:
        return check(value, field)
    except MLSValidationError as exc:
        prefix = f"{exc.field}: "
        message = exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message
        raise bad_request(exc.field, message) from None


def not_found(what: str, ident: object, field: str = "id") -> APIError:
    return APIError(404, f"{field}: {what} {ident} not found")


def conflict(message: str) -> APIError:
    return APIError(409, message)


# Ids are bounded to JSON-safe integers (2^53 - 1, exact as a double): well inside SQLite's
# 64-bit range, so no id can overflow a query, and exact in every JSON client and schema tool.
SQLITE_INT_MAX = 2**53 - 1
SQLITE_INT_MIN = -SQLITE_INT_MAX


def db_int(value: object, field: str, what: str = "an integer") -> int:
    """An int from a JSON body (also a numeric string), within SQLite's range, else 400 naming ``field``."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(field, f"must be {what}")
    if not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
        raise bad_request(field, f"{value} is out of range")
    return value
