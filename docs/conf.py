"""Sphinx configuration of the docs site (``make docs``): the Markdown pages of ``docs/`` through MyST.

Built offline with warnings as errors and nitpicky references, then link-checked: every link is a
page or heading of this site (the repository links to nothing outside itself).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

_PROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]

project = _PROJECT["name"]
release = version = _PROJECT["version"]
copyright = "the airflow-provider-mls authors, Apache-2.0"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# GitHub's heading slugs, so that `page.md#a-heading` works on the site and in the repository alike.
myst_heading_anchors = 4
nitpicky = True

html_theme = "alabaster"
html_title = f"{project} {release}"
html_theme_options = {"description": "Apache Airflow provider for MLS", "fixed_sidebar": True}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}

# Nothing outside the site is linked; the link check covers the in-site links and anchors.
linkcheck_anchors = True
linkcheck_timeout = 5
