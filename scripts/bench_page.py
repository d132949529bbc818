"""The generated tables of ``docs/benchmarks.md``: each benchmark script of ``make bench`` rewrites its own.

The page is hand-written text around sections that the scripts own, each between two markers
(``<!-- NAME: begin -->`` and ``<!-- NAME: end -->``); a run replaces the body of its section and
nothing else, and labels it with the date, the machine (cores, CPU model, load) and the command line.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _airflow_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apache-airflow")
    except PackageNotFoundError:
        return "not installed"


def run_label(argv: Sequence[str] | None = None) -> str:
    """When, where and how the figures below it were measured (one Markdown paragraph)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).name
    command = shlex.join([f"scripts/{script}", *argv[1:]])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({_cpu_model()}; "
        f"load average {load} at the start), Python {platform.python_version()}, Airflow "
        f"{_airflow_version()}, by `{command}`."
    )


def number(value: float) -> str:
    """A count as the tables write it: 1,000."""
    return f"{value:,.0f}"


def seconds(value: float) -> str:
    """A duration with the digits that matter: 0.005, 0.68, 5.8, 17.9."""
    if value != value:  # NaN: nothing measured
        return "n/a"
    if abs(value) < 1:
        return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, page: Path = PAGE) -> None:
    """Replace the body of section ``name`` of ``page`` with ``body``; everything else stays as it is."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    text = page.read_text(encoding="utf-8")
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"{page}: needs one section {begin} ... {end} for these figures")
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    page.write_text(f"{head}{begin}\n{body.strip()}\n{end}{tail}", encoding="utf-8")
    print(f"figures written to {page}", flush=True)
