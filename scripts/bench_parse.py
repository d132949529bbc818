"""What each operator and sensor module adds to a DAG file's parse, beside the http provider's sensor module.

A DAG file imports ``airflow.sdk`` and then the task modules it uses, on every parse. For each module of
``airflow_provider_mls.operators`` and ``airflow_provider_mls.sensors``, a fresh interpreter imports
``airflow.sdk`` and then times the import of that one module (so each module pays for whatever of this
package it pulls in, as the first import of a DAG file does), in CPU seconds of that process (wall time
swings with whatever else the machine runs). The anchor, ``airflow.providers.http.sensors.http``,
is timed the same way in the same rounds, interleaved, so both see the same machine. The figure is the median
over the rounds; the ratio is the module's median over the anchor's. Target: at most 0.12x per module.

    python scripts/bench_parse.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import pkgutil
import statistics
import subprocess
import sys

import bench_page

ANCHOR = "airflow.providers.http.sensors.http"
TARGET = 0.12
PROBE = (
    "import sys, time\n"
    "import airflow.sdk\n"
    "start = time.process_time()\n"
    "__import__(sys.argv[1])\n"
    "print(time.process_time() - start)\n"
)


def task_modules() -> list[str]:
    import airflow_provider_mls.operators
    import airflow_provider_mls.sensors

    found = []
    for package in (airflow_provider_mls.operators, airflow_provider_mls.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                found.append(f"{package.__name__}.{info.name}")
    return sorted(found)


def import_seconds(module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE, module], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh imports per module (median taken)")
    args = parser.parse_args()
    label = bench_page.run_label()
    modules = task_modules()
    times: dict[str, list[float]] = {name: [] for name in [ANCHOR, *modules]}
    for n in range(args.rounds):
        for name in times:  # interleaved: anchor and modules share each round's machine
            times[name].append(import_seconds(name))
        print(f"round {n + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    anchor = statistics.median(times[ANCHOR])
    rows = [["`" + ANCHOR + "` (the anchor)", f"{anchor * 1000:.1f}", "1.00x", ""]]
    worst = 0.0
    for name in modules:
        median = statistics.median(times[name])
        ratio = median / anchor
        worst = max(worst, ratio)
        rows.append(
            [f"`{name}`", f"{median * 1000:.1f}", f"{ratio:.2f}x", "yes" if ratio <= TARGET else "NO"]
        )
    header = [
        "module (imported after `import airflow.sdk`)",
        "adds (CPU ms, median)",
        "vs the anchor",
        f"<= {TARGET}x",
    ]
    body = "\n\n".join(
        [
            label,
            bench_page.table(header, rows),
            f"Worst module: {worst:.2f}x the anchor (target: at most {TARGET}x); {args.rounds} rounds.",
        ]
    )
    print(body, flush=True)
    bench_page.write_section("parse", body)


if __name__ == "__main__":
    main()
