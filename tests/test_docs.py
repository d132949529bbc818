"""The README and the docs site: a README that fits a page, no link out of the repository, and the
generated benchmark page that ``make bench`` rewrites section by section.

``make docs`` (in ``make lint``) builds the site with warnings as errors, so a link to a missing page
or heading fails there; these checks are what Sphinx does not see.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
README_LIMIT = 15 * 1024
MARKDOWN = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]


def _bench_page() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_page", REPO / "scripts" / "bench_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_page", module)
    spec.loader.exec_module(module)
    return module


def test_the_readme_fits_a_page_and_links_into_the_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= README_LIMIT, (
        f"README.md is {len(readme.encode())} bytes: move text to docs/"
    )
    for heading in ("## The two commands", "## Install", "## The connection", "## Documentation"):
        assert f"\n{heading}\n" in readme, heading
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)", readme))
    assert {"connection.md", "operators.md", "hook.md", "local-server.md", "tasks.md"} <= linked
    assert all((REPO / "docs" / page).is_file() for page in linked), linked


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_no_markdown_link_points_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    outside = re.findall(r"\]\(\s*<?((?:[a-z][a-z0-9+.-]*:|//)[^)\s>]*)", text, re.IGNORECASE)
    outside += re.findall(r"<((?:https?|ftp)://[^>\s]+)>", text, re.IGNORECASE)
    assert outside == [], f"{path.name} links outside the repository: {outside}"


def test_the_site_includes_the_readme_and_every_page() -> None:
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    assert "```{include} ../README.md" in index
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    assert ":glob:" in toctree and "\n*\n" in toctree


def test_the_benchmark_page_has_a_section_for_each_script() -> None:
    page = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for name in ("bench_triggers", "bench_triggerer on Airflow 3", "bench_triggerer on Airflow 2"):
        assert page.count(f"<!-- {name}: begin -->") == 1 and page.count(f"<!-- {name}: end -->") == 1, name
    assert "make bench" in page


def test_a_benchmark_run_rewrites_its_own_section_only(tmp_path: Path) -> None:
    bench_page = _bench_page()
    page = tmp_path / "benchmarks.md"
    original = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    page.write_text(original, encoding="utf-8")
    body = bench_page.run_label(["scripts/bench_triggers.py", "--n", "50"]) + "\n\n"
    body += bench_page.table(["N", "trigger"], [[bench_page.number(1000), "MLSCheckTrigger"]])
    bench_page.write_section("bench_triggers", body, page)
    text = page.read_text(encoding="utf-8")
    begin, end = "<!-- bench_triggers: begin -->", "<!-- bench_triggers: end -->"
    assert text.split(begin)[0] == original.split(begin)[0]
    assert text.split(end)[1] == original.split(end)[1]
    section = text.split(begin)[1].split(end)[0]
    assert "| 1,000 | MLSCheckTrigger |" in section and "`scripts/bench_triggers.py --n 50`" in section
    assert re.search(r"Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC on \d+ cores", section)
    bench_page.write_section("bench_triggers", body, page)  # again: the same page, nothing appended
    assert page.read_text(encoding="utf-8") == text
    with pytest.raises(SystemExit, match="needs one section <!-- nowhere: begin -->"):
        bench_page.write_section("nowhere", body, page)


def test_durations_keep_the_digits_that_matter() -> None:
    seconds = _bench_page().seconds
    assert [seconds(v) for v in (0.0049, 0.68, 5.83, 17.94)] == ["0.005", "0.68", "5.83", "17.9"]
    assert seconds(float("nan")) == "n/a"
