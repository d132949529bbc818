"""The MLS envelope (``{"code", "error", "results"}``) -> ``results`` or a typed ``MLSError``.

Transport-agnostic (status, body text, headers), so the sync hook and the async client agree.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.exceptions import MLSError, MLSServerError, error_class_for
from airflow_provider_mls.hooks._retry import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Mapping

SNIPPET_CHARS = 200


def encode_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters as the reference client sends them: without the ``None`` ones, booleans as
    ``requests`` writes them (``True``/``False``, which httpx would write ``true``/``false``)."""
    if not params:
        return None
    return {k: (str(v) if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "..."


def _error(
    cls: type[MLSError],
    message: str,
    *,
    code: int,
    status: int,
    method: str,
    url: str,
    retry_after: float | None,
) -> MLSError:
    return cls(message, code=code, status=status, method=method, url=url, retry_after=retry_after)


def parse_envelope(status: int, text: str, headers: Mapping[str, str], *, method: str, url: str) -> Any:
    """``results`` of a response, or raise.

    * a non-empty ``error`` is a failure whatever the HTTP status: ``error_class_for(code or status)``;
    * HTTP >= 400 (or code >= 400) without an error message is a failure too;
    * a body that is not the JSON envelope (a proxy's HTML page) raises the class of the HTTP
      status (``MLSServerError`` for 5xx and for a 2xx that is not an envelope), with the status
      and a short snippet of the body; never a ``JSONDecodeError``.

    A ``Retry-After`` header is kept on the error as ``retry_after`` (seconds).
    """
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if not (isinstance(body, dict) and ("error" in body or "results" in body)):
        kind = "a body that is not JSON" if body is None else "JSON that is not an MLS envelope"
        cls = error_class_for(status) if status >= 400 else MLSServerError
        if cls is MLSError and status >= 500:
            cls = MLSServerError
        raise _error(
            cls,
            f"MLS answered HTTP {status} with {kind}: {snippet(text)!r}",
            code=status,
            status=status,
            method=method,
            url=url,
            retry_after=retry_after,
        )
    raw_code = body.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    message = body.get("error")
    if message or status >= 400 or (code is not None and code >= 400):
        effective = code if code is not None and code >= 400 else status
        if effective < 400:
            effective = status if status >= 400 else 500
        text_ = (
            str(message)
            if message
            else f"MLS answered HTTP {status} with code {raw_code} and no error message"
        )
        raise _error(
            error_class_for(effective),
            text_,
            code=effective,
            status=status,
            method=method,
            url=url,
            retry_after=retry_after,
        )
    return body.get("results")
