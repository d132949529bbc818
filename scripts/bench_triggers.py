"""Benchmark: N deferred waits on one asyncio loop, this provider's MLSCheckTrigger vs HttpSensorTrigger.

The shape of issue 10: N triggers on one event loop, as the triggerer runs them (each consumed
until its first event), starts spread over one poke interval (1 s), against a fast stub HTTP
server in its own process (``scripts/bench_stub.py``) whose tables answer "not ready" 5 times,
then "ready". The http provider's ``HttpSensorTrigger`` waits on the same stub (404 until ready).
Every run is its own subprocess (peak RSS is per run; its log lines go to a file, as the
triggerer's do), and the two triggers' runs are interleaved. Printed per N, the median of the
repeats: events fired, CPU per check, the delay of a check past its poke interval (p50/p99,
measured at the stub), event-loop lag p99 (a 10 ms ticker), peak RSS, requests per interval and
peak requests in flight. ``MLS, T tables`` rows share T tables among the N waits (coalescing).

Numbers, not assertions: run it on a quiet machine and compare runs. The table is also written to
``docs/benchmarks.md`` (its own section, with the date, the machine and the arguments; ``--no-page``
leaves the page alone).

    .venv/bin/python scripts/bench_triggers.py                      # N = 200, 1000, 5000; 3 repeats
    .venv/bin/python scripts/bench_triggers.py --n 200 --repeats 1  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import bench_page

HERE = Path(__file__).resolve().parent
KINDS = ("mls", "http")


# ---- one run (the child process) ---------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _count_http_in_flight(peak: dict[str, int]) -> None:
    """Count aiohttp requests in flight (HttpSensorTrigger opens a session per check)."""
    import aiohttp

    real = aiohttp.ClientSession._request
    state = {"now": 0}

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        state["now"] += 1
        peak["in_flight"] = max(peak["in_flight"], state["now"])
        try:
            return await real(self, *args, **kwargs)
        finally:
            state["now"] -= 1

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


def _triggers(kind: str, run: str, n: int, tables: int, interval: float) -> list[Any]:
    names = [f"{run}-{i % tables}" for i in range(n)]
    if kind == "mls":
        from airflow_provider_mls.checks import TableReadyCheck
        from airflow_provider_mls.triggers.mls import MLSCheckTrigger

        deadline = time.time() + 3600
        return [
            MLSCheckTrigger(
                check=TableReadyCheck(table=t).to_dict(),
                mls_conn_id="mls_bench",
                poke_interval=interval,
                deadline=deadline,
            )
            for t in names
        ]
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return [
        HttpSensorTrigger(
            endpoint=f"http/{t}", http_conn_id="http_bench", method="GET", poke_interval=interval
        )
        for t in names
    ]


async def _run(
    kind: str, n: int, tables: int, interval: float, spread: float, limit: float
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:10]
    triggers = _triggers(kind, run, n, tables, interval)
    peak = {"in_flight": 0}
    if kind == "http":
        _count_http_in_flight(peak)
    lags: list[float] = []
    fired = 0
    waiter_checks = 0

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)
            if os.environ.get("BENCH_LAG_TRACE") and lags[-1] > 0.05:
                print(f"lag {lags[-1]:.3f} at {before:.2f}", flush=True)

    async def first_event(i: int, trigger: Any) -> None:
        nonlocal fired, waiter_checks
        await asyncio.sleep(spread * i / n)
        async for event in trigger.run():
            payload = event.payload
            fired += payload is True or (isinstance(payload, dict) and payload.get("status") == "success")
            if isinstance(payload, dict):
                waiter_checks += int(payload.get("checks") or 0)
            return

    # Warm up (imports, the connection lookup's first call): a long-running triggerer has paid them.
    (warm,) = _triggers(kind, f"w{run}", 1, 1, 0.001)
    async for _event in warm.run():
        break
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tick = asyncio.create_task(ticker())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runs = asyncio.gather(*(first_event(i, t) for i, t in enumerate(triggers)))
    try:
        await asyncio.wait_for(runs, limit)
    except TimeoutError:
        pass
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if kind == "mls":
        from airflow_provider_mls.hooks.mls_async import MAX_IN_FLIGHT

        peak["in_flight"] = _mls_peak.get("in_flight", 0)
        peak["limit"] = MAX_IN_FLIGHT
    tick.cancel()
    return {
        "run": run,
        "fired": fired,
        "cpu": cpu,
        "wall": wall,
        "lag_p99": _percentile(lags, 0.99),
        "lag_max": max(lags, default=float("nan")),
        "rss_before": rss_before,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "in_flight": peak["in_flight"],
        "waiter_checks": waiter_checks,
    }


_mls_peak: dict[str, int] = {}


def _count_mls_in_flight() -> None:
    """Keep the peak of the shared pools' requests in flight (they are gone once the last wait ends)."""
    from airflow_provider_mls.hooks import mls_async

    real = mls_async.SharedPool.send

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await real(self, *args, **kwargs)
        finally:
            _mls_peak["in_flight"] = max(_mls_peak.get("in_flight", 0), self.peak_in_flight)

    mls_async.SharedPool.send = counted  # type: ignore[method-assign]


def child(args: argparse.Namespace) -> None:
    port = args.port
    os.environ["AIRFLOW_CONN_MLS_BENCH"] = json.dumps(
        {"conn_type": "mls", "host": f"http://127.0.0.1:{port}", "login": "bench", "password": "bench-pw"}
    )
    os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )
    if args.kind == "mls":
        _count_mls_in_flight()
        if args.max_in_flight:
            from airflow_provider_mls.hooks import mls_async

            mls_async.MAX_IN_FLIGHT = args.max_in_flight
    result = asyncio.run(_run(args.kind, args.n, args.tables, args.interval, args.spread, args.limit))
    Path(args.out).write_text(json.dumps(result))


# ---- the driver --------------------------------------------------------------------------------------


def _get(port: int, path: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def one_run(
    kind: str, n: int, tables: int, port: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    out = workdir / f"{kind}-{n}-{tables}-{uuid.uuid4().hex[:6]}.json"
    log = workdir / f"{out.stem}.log"
    limit = args.limit or (15 * args.interval + n / 40)
    _get(port, "/_reset_connections")
    cmd = [sys.executable, __file__, "--child", kind, "--port", str(port), "--out", str(out)]
    cmd += ["--n", str(n), "--tables", str(tables), "--interval", str(args.interval)]
    cmd += ["--spread", str(args.spread), "--limit", str(limit), "--max-in-flight", str(args.max_in_flight)]
    with log.open("w") as sink:
        subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, check=True, env=os.environ.copy())
    result: dict[str, Any] = json.loads(out.read_text())
    stats = _get(port, f"/_stats/{result['run']}")
    gaps = [g - args.interval for g in stats["gaps"]]
    seconds = stats["per_second"]
    active = seconds[1:-1] or seconds  # whole seconds of the run, not its ragged ends
    result.update(
        checks=stats["checks"],
        requests=stats["requests"],
        # A wait's own checks (MLS events count them; HttpSensorTrigger checks once per request).
        cpu_per_check_ms=1000 * result["cpu"] / max(1, result["waiter_checks"] or stats["checks"]),
        delay_p50=_percentile(gaps, 0.5),
        delay_p99=_percentile(gaps, 0.99),
        req_per_interval=statistics.mean(active) * args.interval if active else 0.0,
        req_per_interval_peak=max(seconds, default=0) * args.interval,
        connections_opened=stats["connections_opened"],
        peak_connections=stats["peak_connections"],
    )
    return result


COLUMNS = [
    ("fired", "{:.0f}"),
    ("cpu_per_check_ms", "{:.3f}"),
    ("delay_p50", "{:.3f}"),
    ("delay_p99", "{:.3f}"),
    ("lag_p99", "{:.3f}"),
    ("rss_peak", "{:.0f}"),
    ("req_per_interval", "{:.0f}"),
    ("in_flight", "{:.0f}"),
    ("connections_opened", "{:.0f}"),
]
HEADER = (
    f"{'N':>5}  {'trigger':<16} {'fired':>6} {'CPU/check ms':>12} {'delay p50 s':>11} {'delay p99 s':>11} "
    f"{'lag p99 s':>9} {'RSS MiB':>7} {'req/interval':>12} {'in-flight':>9} {'conns':>6}"
)


def _row(n: int, label: str, results: list[dict[str, Any]]) -> str:
    cells = [fmt.format(statistics.median(r[key] for r in results)) for key, fmt in COLUMNS]
    widths = [6, 12, 11, 11, 9, 7, 12, 9, 6]
    return f"{n:>5}  {label:<16} " + " ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


def _page_row(n: int, label: str, results: list[dict[str, Any]]) -> list[str]:
    """The row of docs/benchmarks.md: the printed medians, in the units of the page."""
    m = {key: statistics.median(r[key] for r in results) for key, _ in COLUMNS}
    lag = m["lag_p99"]
    return [
        bench_page.number(n),
        label,
        bench_page.number(m["fired"]),
        f"{m['cpu_per_check_ms']:.2f} ms",
        f"{bench_page.seconds(m['delay_p50'])} / {bench_page.seconds(m['delay_p99'])} s",
        f"{1000 * lag:.0f} ms" if lag < 1 else f"{lag:.1f} s",
        f"{m['rss_peak']:.0f} MiB",
        bench_page.number(m["req_per_interval"]),
        bench_page.number(m["in_flight"]),
        bench_page.number(m["connections_opened"]),
    ]


PAGE_HEADER = (
    "N",
    "trigger",
    "fired",
    "CPU per check",
    "delay past the interval p50 / p99",
    "loop lag p99",
    "peak RSS",
    "requests per interval",
    "peak in flight",
    "connections opened",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000, 5000], help="waits per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per trigger and N (median)")
    parser.add_argument("--large-repeats", type=int, default=1, help="the same for N >= 5000 (slow runs)")
    parser.add_argument("--interval", type=float, default=1.0, help="poke interval, seconds")
    parser.add_argument("--spread", type=float, default=1.0, help="starts spread over this many seconds")
    parser.add_argument(
        "--shared-tables", type=int, default=10, help="tables of the coalescing rows (0: none)"
    )
    parser.add_argument("--limit", type=float, default=0.0, help="seconds a run may take (0: by N)")
    parser.add_argument("--max-in-flight", type=int, default=0, help="MLS pool limit (0: the default)")
    parser.add_argument("--no-page", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--child", choices=KINDS, dest="kind", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tables", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mls-bench-airflow-"))
    if args.kind:
        args.n = args.n[0]
        child(args)
        return

    workdir = Path(tempfile.mkdtemp(prefix="mls-bench-"))
    stub = subprocess.Popen(
        [sys.executable, str(HERE / "bench_stub.py"), "--port", "0", "--not-ready", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stub.stdout is not None
        port = int(stub.stdout.readline().split()[1])
        label = bench_page.run_label()
        setting = (
            f"poke interval {args.interval} s, starts spread over {args.spread} s, 5 'not ready' answers per "
            f"table; median of {args.repeats} run(s) ({args.large_repeats} for N >= 5000)"
        )
        print(
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {setting}; logs in {workdir}",
            flush=True,
        )
        print(HEADER, flush=True)
        page_rows: list[list[str]] = []
        for n in args.n:
            results: dict[str, list[dict[str, Any]]] = {"mls": [], "http": [], "shared": []}
            for rep in range(args.repeats if n < 5000 else args.large_repeats):
                order = KINDS if rep % 2 == 0 else KINDS[::-1]
                for kind in order:
                    results[kind].append(one_run(kind, n, n, port, args, workdir))
                if args.shared_tables and rep == 0:  # informative: one run
                    results["shared"].append(one_run("mls", n, args.shared_tables, port, args, workdir))
            print(_row(n, "MLSCheckTrigger", results["mls"]), flush=True)
            print(_row(n, "HttpSensorTrigger", results["http"]), flush=True)
            page_rows += [_page_row(n, "MLSCheckTrigger", results["mls"])]
            page_rows += [_page_row(n, "HttpSensorTrigger", results["http"])]
            if results["shared"]:
                print(_row(n, f"MLS, {args.shared_tables} tables", results["shared"]), flush=True)
                page_rows += [_page_row(n, f"MLS, {args.shared_tables} tables", results["shared"])]
        print(
            "delay: a check's start past its poke interval after the previous check of its table (at the stub); "
            "lag: event-loop lag of a 10 ms ticker; RSS: peak of the run's process (imports included); "
            "req/interval: stub requests per poke interval (mean of the run's whole seconds); in-flight: "
            "peak requests inside httpx (MLS) or aiohttp (http); conns: TCP connections opened.",
            flush=True,
        )
        if not args.no_page:
            bench_page.write_section(
                "bench_triggers",
                f"{label} {setting[0].upper()}{setting[1:]}.\n\n{bench_page.table(PAGE_HEADER, page_rows)}",
            )
    finally:
        stub.terminate()
        stub.wait(10)


if __name__ == "__main__":
    main()
