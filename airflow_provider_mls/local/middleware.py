"""ASGI middleware of the local MLS server: strict paths, Basic auth, body size limit, request
recording, fault injection, 500 envelope; and the HTTP protocol that drops requests sent too slowly."""

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

from airflow_provider_mls.rules import REQUEST_MAX_BYTES

if TYPE_CHECKING:
    import os

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("airflow_provider_mls.local")

OPEN_PATHS = ("/local/health",)
FAULTS_PATH = "/local/faults"


def normalize_path(path: str) -> str:
    """A fault's path prefix: ``//api/v1/datasets/`` -> ``/api/v1/datasets``; ``api/v1/x`` -> ``/api/v1/x``."""
    path = re.sub(r"/{2,}", "/", "/" + path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def path_problem(path: str) -> str | None:
    """Why the reference client never sends ``path`` (None: it may). The service is not promised
    to collapse a duplicate slash or to ignore a trailing one, so the local server does neither."""
    if "//" in path:
        return "a duplicate slash"
    if len(path) > 1 and path.endswith("/"):
        return "a trailing slash"
    return None


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


# A body over the limit is still read (and dropped) up to this size, so that the client, which is
# still sending, reads the 400 instead of a reset; past it the connection is closed.
_DRAIN_MAX_BYTES = 64 * 1024 * 1024


def _too_large(size: int | str, limit: int) -> str:
    return f"body: the request body is {size} bytes; at most {limit} bytes are accepted"


class LocalMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        username: str,
        password: str,
        faults: FaultRegistry,
        max_body_bytes: int = REQUEST_MAX_BYTES,
        record_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        self._user = username.encode()
        self._password = password.encode()
        self.faults = faults
        self.max_body_bytes = max_body_bytes
        self.record_path = record_path

    async def _refuse_large_body(self, receive: Receive, send: Send, length: int) -> None:
        drained = 0
        while drained <= _DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await _send_raw(
            send,
            400,
            envelope_bytes(400, _too_large(length, self.max_body_bytes)),
            "application/json",
            [(b"connection", b"close")],
        )

    def _bounded(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body (e.g. chunked, without a length) once it passes the limit."""
        limit = self.max_body_bytes
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    from starlette.exceptions import HTTPException

                    # FastAPI passes an HTTPException raised while it reads the body through.
                    raise HTTPException(400, _too_large(f"more than {limit}", limit))
            return message

        return bounded_receive

    async def _record(self, scope: Scope, raw_path: str, receive: Receive) -> Receive:
        """Append the request (method, raw path and query, body) to the record file; the body is
        read here and handed on unchanged."""
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        self._write_record(scope, raw_path, body)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _write_record(self, scope: Scope, raw_path: str, body: bytes) -> None:
        if self.record_path is None:
            return
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": raw_path,
            "query": bytes(scope.get("query_string") or b"").decode("latin-1"),
        }
        try:
            entry["body"] = json.loads(body) if body else None
        except ValueError:
            entry["body"] = None
            entry["body_text"] = body.decode("utf-8", "replace")
        with open(self.record_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")

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
        path = scope["path"]
        raw_path = bytes(scope.get("raw_path") or path.encode()).decode("latin-1")
        problem = path_problem(raw_path)
        if problem is not None:
            self._write_record(scope, raw_path, b"")
            message = f"not found: {scope['method']} {raw_path}: MLS paths have no {problem[2:]}"
            await _send_raw(send, 404, envelope_bytes(404, message), "application/json")
            return
        scope = dict(scope)
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

        length = _content_length(scope["headers"])
        if length is not None and length > self.max_body_bytes:
            log.warning("refused a %s byte body on %s %s", length, scope["method"], path)
            await self._refuse_large_body(receive, send, length)
            return
        receive = self._bounded(receive)
        if self.record_path is not None and not path.startswith("/local"):
            from starlette.exceptions import HTTPException

            try:
                receive = await self._record(scope, raw_path, receive)
            except HTTPException as exc:  # a chunked body over the limit
                await _send_raw(
                    send,
                    exc.status_code,
                    envelope_bytes(exc.status_code, str(exc.detail)),
                    "application/json",
                )
                return

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
            if type(exc).__name__ == "ClientDisconnect":  # starlette's: the client left mid-request
                log.info("client left during %s %s", scope.get("method"), scope.get("path"))
                return
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_raw(
                    send,
                    500,
                    envelope_bytes(500, f"internal error: {type(exc).__name__}: {exc}"),
                    "application/json",
                )


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


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


def timed_http_protocol(request_timeout: float) -> type[Any]:
    """uvicorn's h11 protocol, plus a bound on how long a request may take to arrive.

    A connection whose request (headers and body) is not complete ``request_timeout`` seconds after
    the connection opened (or after the previous response on it) is dropped: answered
    ``408`` with the envelope when its headers had arrived, closed in any case. A client that
    stalls half-way through its body thus no longer holds the connection forever.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        timeout = request_timeout
        _request_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            if self.timeout > 0:
                self._request_timer = self.loop.call_later(self.timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
                self._disarm()  # the request is in (or the connection is done with)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
                self._arm()  # the next request on this keep-alive connection gets the same bound

        def _timed_out(self) -> None:
            self._request_timer = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                return
            log.warning(
                "dropping the connection of %s: its request was not complete after %ss",
                "%s:%s" % tuple(self.client) if self.client else "a client",  # noqa: UP031
                self.timeout,
            )
            if self.conn.their_state is h11.SEND_BODY and self.conn.our_state is h11.SEND_RESPONSE:
                body = envelope_bytes(
                    408, f"request timeout: the request was not complete after {self.timeout}s"
                )
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                try:
                    self.transport.write(self.conn.send(h11.Response(status_code=408, headers=headers)))
                    self.transport.write(self.conn.send(h11.Data(data=body)))
                    self.transport.write(self.conn.send(h11.EndOfMessage()))
                except h11.LocalProtocolError:  # pragma: no cover - h11 refused; just close
                    pass
            self.transport.close()

    return TimedH11Protocol
