"""ASGI middleware of the local MLS server: path normalisation, Basic auth, fault injection, 500 envelope."""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("airflow_provider_mls.local")

OPEN_PATHS = ("/local/health",)
FAULTS_PATH = "/local/faults"


def normalize_path(path: str) -> str:
    """``//api/v1/datasets/`` -> ``/api/v1/datasets``; ``api/v1/x`` -> ``/api/v1/x``."""
    path = re.sub(r"/{2,}", "/", "/" + path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def envelope_bytes(code: int, error: str | None, results: Any = None) -> bytes:
    return json.dumps({"code": code, "error": error, "results": results}).encode()


@dataclass
class Fault:
    id: int
    method: str
    path: str
    status: int | None
    count: int
    body: str | None
    content_type: str
    retry_after: float | None
    delay: float
    after: bool

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method == method) and path.startswith(self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultRegistry:
    """In-memory (never persisted) list of pending faults. Used from the event loop only."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, **kwargs: Any) -> Fault:
        kwargs["method"] = str(kwargs.get("method") or "*").upper()
        kwargs["path"] = normalize_path(str(kwargs.get("path") or "/"))
        if kwargs["path"] == "/":
            kwargs["path"] = ""
        fault = Fault(id=next(self._ids), **kwargs)
        self._faults.append(fault)
        return fault

    def list(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        return n

    def take(self, method: str, path: str) -> Fault | None:
        if path.startswith(FAULTS_PATH):
            return None
        for fault in self._faults:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None


class LocalMiddleware:
    def __init__(self, app: ASGIApp, *, username: str, password: str, faults: FaultRegistry) -> None:
        self.app = app
        self._user = username.encode()
        self._password = password.encode()
        self.faults = faults

    def _authenticate(self, scope: Scope) -> str | None:
        header = b""
        for key, value in scope.get("headers", []):
            if key.lower() == b"authorization":
                header = value
                break
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        ok_user = secrets.compare_digest(user, self._user)
        ok_password = secrets.compare_digest(password, self._password)
        if sep and ok_user and ok_password:
            return user.decode("utf-8", "replace")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = normalize_path(scope["path"])
        scope = dict(scope)
        scope["path"] = path
        scope["raw_path"] = path.encode()
        scope["headers"] = _json_content_type(scope.get("headers", []))
        if (path.startswith("/api") or path.startswith("/local")) and path not in OPEN_PATHS:
            user = self._authenticate(scope)
            if user is None:
                await _send_raw(
                    send,
                    401,
                    envelope_bytes(401, "authentication required: missing or wrong Basic credentials"),
                    "application/json",
                    [(b"www-authenticate", b'Basic realm="MLS local"')],
                )
                return
            scope["state"] = {**scope.get("state", {}), "user": user}

        fault = self.faults.take(scope["method"].upper(), path)
        if fault is None:
            await self._serve(scope, receive, send)
            return
        log.info("fault %s injected for %s %s", fault.id, scope["method"], path)
        if fault.status is None:  # a slow but normal answer
            await asyncio.sleep(fault.delay)
            await self._serve(scope, receive, send)
            return
        if fault.after:

            async def discard(message: Message) -> None:
                return None

            await self._serve(scope, receive, discard)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        headers: list[tuple[bytes, bytes]] = []
        if fault.retry_after is not None:
            ra = fault.retry_after
            headers.append((b"retry-after", (str(int(ra)) if float(ra).is_integer() else str(ra)).encode()))
        body = fault.body
        if body is None:
            try:
                phrase = HTTPStatus(fault.status).phrase
            except ValueError:
                phrase = "Error"
            body = f"<html><head><title>{fault.status} {phrase}</title></head><body><h1>{fault.status} {phrase}</h1></body></html>"
        await _send_raw(send, fault.status, body.encode(), fault.content_type, headers)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_raw(
                    send,
                    500,
                    envelope_bytes(500, f"internal error: {type(exc).__name__}: {exc}"),
                    "application/json",
                )


_NON_JSON_TYPES = (b"", b"text/plain", b"application/x-www-form-urlencoded")


def _json_content_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Liberal: a body sent without a JSON content type (e.g. ``data=json.dumps(...)``) is read as JSON."""
    out = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if ctype.split(b";")[0].strip().lower() in _NON_JSON_TYPES:
        ctype = b"application/json"
    out.append((b"content-type", ctype))
    return out


async def _send_raw(
    send: Send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    all_headers += headers or []
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
