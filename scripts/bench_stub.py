"""A fast stub HTTP server for the trigger benchmarks (a separate process on 127.0.0.1).

Every table answers "not ready" ``--not-ready`` times, then "ready", in two dialects:

* MLS: ``GET /api/v1/dynamodb/tables/<table>/is_active`` (the check) and ``.../is_loading``,
  as MLS envelopes (``mls-local`` speaks the same protocol);
* HTTP provider: ``GET /http/<table>`` answers 404 (``HttpSensorTrigger`` keeps waiting) then 200.

It records the time (CLOCK_MONOTONIC, shared by every process of the machine) of each check and
request per run (the table name's part before the first ``-``), and ``GET /_stats/<run>``
returns them digested: requests, checks, the gaps between a table's consecutive checks, and the
requests per second. A raw asyncio protocol (uvloop when installed) keeps the server's own cost
far below the client's.

    python scripts/bench_stub.py --port 0 --not-ready 5   # prints "port <n>" when it listens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from typing import Any

TABLES = "/api/v1/dynamodb/tables/"


class Runs:
    def __init__(self, not_ready: int) -> None:
        self.not_ready = not_ready
        self.checks: dict[str, int] = defaultdict(int)  # table -> checks so far
        self.check_times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.request_times: dict[str, list[float]] = defaultdict(list)
        self.connections = 0
        self.peak_connections = 0
        self.connections_opened = 0

    def check(self, run: str, table: str, now: float) -> bool:
        """Record a check of ``table``; is it ready now?"""
        self.checks[table] += 1
        self.check_times[run][table].append(now)
        return self.checks[table] > self.not_ready

    def stats(self, run: str) -> dict[str, Any]:
        times = self.request_times.get(run, [])
        per_table = self.check_times.get(run, {})
        gaps = [b - a for ts in per_table.values() for a, b in zip(ts, ts[1:], strict=False)]
        per_second: dict[int, int] = defaultdict(int)
        start = min(times) if times else 0.0
        for t in times:
            per_second[int(t - start)] += 1
        return {
            "requests": len(times),
            "checks": sum(len(ts) for ts in per_table.values()),
            "tables": len(per_table),
            "gaps": gaps,
            "first": start,
            "last": max(times) if times else 0.0,
            "per_second": [per_second[s] for s in range(max(per_second, default=-1) + 1)],
            "peak_connections": self.peak_connections,
            "connections_opened": self.connections_opened,
        }

    def reset_connections(self) -> None:
        self.peak_connections = self.connections
        self.connections_opened = 0


def _response(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 404: b"Not Found"}.get(status, b"Other")
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (status, reason, len(body)) + body


ENVELOPE = b'{"code":0,"error":null,"results":%s}'


class Handler(asyncio.Protocol):
    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.runs.connections += 1
        self.runs.connections_opened += 1
        self.runs.peak_connections = max(self.runs.peak_connections, self.runs.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.runs.connections -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            target = head.split(b" ", 2)[1].decode()
            assert self.transport is not None
            self.transport.write(self.answer(target.split("?", 1)[0]))

    def answer(self, path: str) -> bytes:
        runs, now = self.runs, time.monotonic()
        if path.startswith("/_stats/"):
            return _response(200, json.dumps(runs.stats(path[len("/_stats/") :])).encode())
        if path == "/_reset_connections":
            runs.reset_connections()
            return _response(200, b"{}")
        if path.startswith(TABLES):
            table, _, what = path[len(TABLES) :].partition("/")
            run = table.partition("-")[0]
            runs.request_times[run].append(now)
            if what == "is_active":
                ready = runs.check(run, table, now)
                return _response(200, ENVELOPE % (b'{"is_active":true}' if ready else b'{"is_active":false}'))
            if what == "is_loading":
                return _response(200, ENVELOPE % b'{"is_loading":false}')
        elif path.startswith("/http/"):
            table = path[len("/http/") :]
            run = table.partition("-")[0]
            runs.request_times[run].append(now)
            return _response(200, b"{}") if runs.check(run, table, now) else _response(404, b"{}")
        return _response(404, b'{"code":404,"error":"no such stub path","results":null}')


async def serve(port: int, not_ready: int) -> None:
    runs = Runs(not_ready)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Handler(runs), "127.0.0.1", port, backlog=4096)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--not-ready", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is in the lock
        runner = asyncio.run
    try:
        runner(serve(args.port, args.not_ready))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
