"""Errors the local MLS server answers with an envelope (``{"code", "error", "results": null}``)."""

from __future__ import annotations


class APIError(Exception):
    """An error answered as ``{"code": status, "error": message, "results": None}`` with HTTP ``status``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def bad_request(field: str, message: str) -> APIError:
    """400 naming the offending field: ``"<field>: <message>"``."""
    return APIError(400, f"{field}: {message}")


def not_found(what: str, ident: object, field: str = "id") -> APIError:
    return APIError(404, f"{field}: {what} {ident} not found")


def conflict(message: str) -> APIError:
    return APIError(409, message)
