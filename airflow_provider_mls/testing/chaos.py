"""A chaos proxy for MLS clients: an HTTP proxy on loopback that breaks some requests on purpose.

The local server's own fault endpoints (``/local/faults``) fail only where a test asks them to; a
real network fails anywhere. ``ChaosProxy`` sits between a client (the hook, an operator, the
reference SDK) and an MLS server (usually ``mls-local``) and, with a seeded random generator,
breaks a share (``fault_rate``) of the requests that pass, in one of these ways:

``reset_before``
    the connection is reset before the request reaches the server (nothing happened);
``reset_after``
    the request is forwarded, the server acts and answers, and then the client's connection is
    reset instead of getting the answer (something happened; the client cannot know);
``delay``
    the request is held for a while (``delay`` seconds, drawn uniformly) and then forwarded;
``html_502``
    the request is forwarded, the server acts, and the client gets a proxy's 502 HTML page;
``html_503``
    the client gets a 503 HTML page with ``Retry-After`` and the server never sees the request.

Everything else is relayed byte for byte (one request per connection: ``Connection: close``).
``proxy.stats`` counts what was injected. Standard library only; runs its asyncio loop in a
thread, so sync code (hooks, operators) and async code (triggers) can both use it::

    with ChaosProxy(server.url, fault_rate=0.2, seed=7) as proxy:
        conn = {"conn_type": "mls", "host": proxy.url, ...}

Only for tests and benchmarks, on loopback: never in front of a real MLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

__all__ = ["FAULT_KINDS", "ChaosProxy"]

FAULT_KINDS = ("reset_before", "reset_after", "delay", "html_502", "html_503")
_MAX_HEAD = 64 * 1024
_PAGE = (
    "<html><head><title>{status} {phrase}</title></head><body><center><h1>{status} {phrase}</h1>"
    "</center><hr><center>chaos-proxy</center></body></html>"
)


class ChaosProxy:
    """An HTTP/1.1 proxy on ``host:port`` (0: a free port) in front of ``upstream`` (a base URL).

    :param upstream: the server's base URL, e.g. ``http://127.0.0.1:8765``.
    :param fault_rate: share of requests (0 to 1) that get a fault.
    :param seed: seed of the random generator that picks the faulted requests and their kind.
    :param kinds: the fault kinds to draw from (default all of ``FAULT_KINDS``), or a mapping
        kind -> weight.
    :param delay: (min, max) seconds of a ``delay`` fault (default 2-5 s, as a slow network).
    :param retry_after: the ``Retry-After`` seconds of a ``html_503``.
    :param match: only requests whose path starts with one of these prefixes may be faulted.
    """

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.2,
        seed: int = 0,
        kinds: Iterable[str] | Mapping[str, float] = FAULT_KINDS,
        delay: tuple[float, float] = (2.0, 5.0),
        retry_after: float = 1,
        match: tuple[str, ...] = ("/api/",),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        if not 0 <= fault_rate <= 1:
            raise ValueError(f"fault_rate must be within [0, 1], got {fault_rate!r}")
        weights = dict(kinds) if isinstance(kinds, dict) else dict.fromkeys(kinds, 1.0)
        unknown = set(weights) - set(FAULT_KINDS)
        if unknown or not weights:
            raise ValueError(f"kinds must be among {FAULT_KINDS}, got {sorted(weights)}")
        if not 0 <= delay[0] <= delay[1]:
            raise ValueError(f"delay must be (min, max) seconds with 0 <= min <= max, got {delay!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.fault_rate = float(fault_rate)
        self.kinds = list(weights)
        self.weights = [float(weights[k]) for k in self.kinds]
        self.delay = (float(delay[0]), float(delay[1]))
        self.retry_after = retry_after
        self.match = match
        self.host = host
        self.port = port
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._enabled = True

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the chaos proxy is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, limit=_MAX_HEAD)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # pragma: no cover - e.g. the port is taken
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="mls-chaos-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @contextlib.contextmanager
    def calm(self) -> Any:
        """No faults inside the block (e.g. while a test reads the server's state to check it)."""
        self._enabled = False
        try:
            yield self
        finally:
            self._enabled = True

    # ------------------------------------------------------------------ faults
    def _draw(self, path: str) -> tuple[str | None, float]:
        if not self._enabled or not path.startswith(self.match):
            return None, 0.0
        with self._rng_lock:
            if self._rng.random() >= self.fault_rate:
                return None, 0.0
            kind = self._rng.choices(self.kinds, self.weights)[0]
            delay = self._rng.uniform(*self.delay)
        return kind, delay

    # ------------------------------------------------------------------ one connection, one request
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            head, body, path = request
            kind, delay = self._draw(path)
            self.stats["requests"] += 1
            if kind is not None:
                self.stats[kind] += 1
                self.stats["faults"] += 1
            if kind == "reset_before":
                _reset(writer)
                return
            if kind == "html_503":
                await _answer(writer, 503, {"Retry-After": _seconds(self.retry_after)})
                return
            if kind == "delay":
                await asyncio.sleep(delay)
            response = await self._forward(head, body)
            if response is None:
                await _answer(writer, 502, {})
                return
            self.stats["forwarded"] += 1
            if kind == "reset_after":
                _reset(writer)
                return
            if kind == "html_502":
                await _answer(writer, 502, {})
                return
            writer.write(response)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            _reset(writer)
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _forward(self, head: bytes, body: bytes) -> bytes | None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            return None
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            return await up_reader.read()  # Connection: close, so the whole answer ends at EOF
        except OSError:
            return None
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes, str] | None:
    """The request's head (rewritten to ``Connection: close``), its body and its path."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None  # the client opened and closed (e.g. a pool's probe)
        raise
    lines = raw[:-4].split(b"\r\n")
    request_line = lines[0]
    headers: list[tuple[bytes, bytes]] = []
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key in (b"connection", b"keep-alive", b"proxy-connection"):
            continue
        if key == b"content-length":
            length = int(value.strip())
        if key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        headers.append((name.strip(), value.strip()))
    if chunked:
        body = await _read_chunked(reader)
        headers = [(k, v) for k, v in headers if k.lower() != b"transfer-encoding"]
        headers.append((b"Content-Length", str(len(body)).encode()))
    else:
        body = await reader.readexactly(length) if length else b""
    headers.append((b"Connection", b"close"))
    head = request_line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"
    parts = request_line.split(b" ")
    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
    return head, body, path


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _answer(writer: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
    phrase = {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    page = _PAGE.format(status=status, phrase=phrase).encode()
    lines = [f"HTTP/1.1 {status} {phrase}", "Content-Type: text/html", f"Content-Length: {len(page)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + page)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
