"""Benchmark: many deferred MLS sensors sharing one triggerer event loop.

Starts a local MLS server, runs N ``MLSCheckTrigger`` s concurrently on one asyncio loop (as the
triggerer does) until their tables become ready after a few checks each, and prints what they
cost: wall time, checks and requests per second, threads, open HTTP clients and connections,
and peak RSS. Numbers, not assertions: run it on a quiet machine and compare runs.

    .venv/bin/python scripts/bench_triggers.py [--triggers 500] [--checks 5] [--poke-interval 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import threading
import time
import uuid
from pathlib import Path


def _open_sockets() -> int:
    fd_dir = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


async def run(n: int, checks: int, poke_interval: float, url: str, auth: tuple[str, str]) -> dict[str, float]:
    import httpx

    from airflow_provider_mls.hooks.mls_async import shared_pool_count
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger

    tag = uuid.uuid4().hex[:8]
    tables = [f"bench_{tag}_{i}" for i in range(n)]
    triggers = [
        MLSCheckTrigger(
            check={"kind": "table_ready", "table": t, "model_id": None},
            poke_interval=poke_interval,
            deadline=time.time() + 600,
        )
        for t in tables
    ]
    peak = {"threads": 0.0, "pools": 0.0, "sockets": 0.0}

    async def first_event(trigger: MLSCheckTrigger) -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise RuntimeError("no event")

    async def sample() -> None:
        while True:
            peak["threads"] = max(peak["threads"], threading.active_count())
            peak["pools"] = max(peak["pools"], shared_pool_count())
            peak["sockets"] = max(peak["sockets"], _open_sockets())
            await asyncio.sleep(0.05)

    async def make_ready() -> None:
        await asyncio.sleep(poke_interval * (checks - 0.5))
        async with httpx.AsyncClient(auth=auth) as admin:
            for table in tables:
                await admin.put(f"{url}/local/tables/{table}", json={"is_active": True, "is_loading": False})

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    results, _ = await asyncio.gather(asyncio.gather(*(first_event(t) for t in triggers)), make_ready())
    elapsed = time.perf_counter() - started
    sampler.cancel()
    total_checks = sum(int(r["checks"]) for r in results)  # type: ignore[call-overload]
    ok = sum(r["status"] == "success" for r in results)
    return {
        "triggers": n,
        "succeeded": ok,
        "wall_seconds": round(elapsed, 2),
        "checks": total_checks,
        "requests": total_checks + ok,  # 1 GET while not active, 2 for the check that succeeds
        "checks_per_second": round(total_checks / elapsed, 1),
        "peak_threads": peak["threads"],
        "peak_shared_http_clients": peak["pools"],
        "peak_open_sockets": peak["sockets"],
        "pools_after": shared_pool_count(),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=500)
    parser.add_argument("--checks", type=int, default=5, help="checks per trigger before its table is ready")
    parser.add_argument("--poke-interval", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mls-bench-airflow-"))

    from airflow_provider_mls.local.process import LocalMLSServer

    with LocalMLSServer(Path(tempfile.mkdtemp(prefix="mls-bench-")), password="mls-bench-password") as server:
        os.environ["AIRFLOW_CONN_MLS_DEFAULT"] = server.conn_json()
        numbers = asyncio.run(run(args.triggers, args.checks, args.poke_interval, server.url, server.auth))
    for key, value in numbers.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
