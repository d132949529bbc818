"""``make chaos``: the hook and the operators against mls-local behind the project's chaos proxy.

Starts a local MLS server (a subprocess, in a temporary directory) and ``ChaosProxy`` in front of
it (default: 20 % of the requests faulted, drawn among resets before the server acted, resets
after it acted, 2-5 s delays, 502 HTML pages and 503 with ``Retry-After``), runs the chaos
workload (``tests/chaos/workload.py``: concurrent creates of one key, creates over existing
models, concurrent partial meta merges, hook calls) and prints the figures. Exit code 1 when an
invariant broke (a duplicate, a stale adoption, a lost key, an untyped error).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _workload() -> object:
    spec = importlib.util.spec_from_file_location(
        "mls_chaos_workload", REPO / "tests" / "chaos" / "workload.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.2, help="share of requests faulted (default 0.2)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the proxy's random generator")
    parser.add_argument("--scale", type=int, default=3, help="size of the workload (default 3: 117 runs)")
    parser.add_argument("--delay", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"),
                        help="seconds of a delay fault (default 2 5)")  # fmt: skip
    parser.add_argument("--write-settle", type=float, default=None,
                        help="the connection's write_settle extra (default: the hook's, 1 s)")  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="show the tasks' logs")
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mls-chaos-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    if not args.verbose:  # the retries' warnings: thousands of lines, nothing to read
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.chaos import ChaosProxy

    workload = _workload()
    if not args.verbose:
        logging.disable(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="mls-chaos-") as data:
        with LocalMLSServer(data) as server:
            proxy = ChaosProxy(
                server.url, fault_rate=args.fault_rate, seed=args.seed, delay=tuple(args.delay)
            )
            with proxy:
                started = time.monotonic()
                figures = workload.run_workload(  # type: ignore[attr-defined]
                    server.url, server.auth, proxy, scale=args.scale, write_settle=args.write_settle
                )
                took = time.monotonic() - started

    summary = figures.summary()
    faults = {k: v for k, v in sorted(figures.faults.items()) if k not in ("requests", "forwarded", "faults")}
    settle = "the hook's default" if args.write_settle is None else f"{args.write_settle:g} s"
    print(
        f"chaos: {args.fault_rate:.0%} of requests faulted (seed {args.seed}, delays "
        f"{args.delay[0]:g}-{args.delay[1]:g} s, write_settle {settle})"
    )
    print(f"  requests through the proxy: {figures.faults.get('requests', 0)}, faulted: "
          f"{figures.faults.get('faults', 0)} {json.dumps(faults)}")  # fmt: skip
    print(f"  runs            {summary['runs']}")
    print(f"  green           {summary['green']}")
    print(f"  duplicates      {summary['duplicates']}")
    print(f"  stale adoptions {summary['stale_adoptions']}")
    print(f"  keys lost       {summary['keys_lost']}")
    print(
        f"  typed errors    {summary['typed_errors']} {json.dumps(dict(figures.errors))}, of which "
        f"{summary['conflicts']} are the 409s asked for (if_exists=fail on a key another run holds)"
    )
    print(f"  untyped errors  {summary['untyped_errors']}")
    print(f"  wall time       {took:.0f} s")
    for line in figures.problems + figures.untyped_errors:
        print(f"  ! {line}")
    broken = figures.problems or figures.untyped_errors
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
