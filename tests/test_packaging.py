"""Release hygiene: the sdist and wheel build, carry what they should, and the wheel is a provider Airflow finds.

``python -m build`` runs in an isolated build environment (setuptools >= 77 from the index, as pip
and uv do for any install from source). The wheel is then installed with plain pip into a fresh
venv that sees the test venv's packages (Airflow and the dependencies) through a ``site`` dir of
symlinks leaving out the editable checkout: what ``airflow providers list`` finds there can only
come from the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]


def test_license_is_the_apache_license_and_declared_as_spdx() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # PEP 639: not both


def test_project_urls_name_files_of_the_repository() -> None:
    urls = PROJECT["urls"]
    assert set(urls) == {"Documentation", "Source", "Changelog"}
    for name, url in urls.items():
        parsed = urlparse(url)
        assert parsed.scheme == "https", (name, url)
        if "/-/blob/main/" in parsed.path:
            assert (REPO / parsed.path.split("/-/blob/main/", 1)[1]).is_file(), (name, url)


def test_changelog_has_an_entry_for_this_version() -> None:
    assert f"## {VERSION}" in (REPO / "CHANGELOG.md").read_text()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.mark.e2e
def test_sdist_carries_docs_examples_license_and_changelog(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    repo_docs = {str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")}
    repo_dags = {str(p.relative_to(REPO)) for p in (REPO / "dags_examples").glob("*.py")}
    assert repo_docs and repo_docs <= names
    assert repo_dags and repo_dags <= names
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= names
    assert "airflow_provider_mls/data/model_package_model_card.schema.json" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.e2e
def test_wheel_metadata(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(meta_name).decode()
        entry_points = whl.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for name, url in PROJECT["urls"].items():
        assert f"Project-URL: {name}, {url}" in metadata
    assert "airflow_provider_mls/py.typed" in names
    assert "airflow_provider_mls/data/model_package_model_card.schema.json" in names
    assert "[apache_airflow_provider]" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "dags_examples/", "scripts/"))]


def _overlay_without_the_project(target: Path) -> Path:
    """A site dir of symlinks to this venv's packages, minus the editable project (its dist-info and finder)."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.startswith(("airflow_provider_mls", "__editable__")) or "airflow_provider_mls" in name:
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.mark.e2e
def test_the_wheel_installed_with_pip_into_a_clean_venv_is_the_provider_airflow_lists(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    clean_purelib = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    overlay = _overlay_without_the_project(tmp_path / "deps")
    # addsitedir also runs the .pth files of the dependencies (namespace packages and the like).
    (clean_purelib / "zz_test_deps.pth").write_text(f"import site; site.addsitedir({str(overlay)!r})\n")

    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
         str(dists["wheel"])],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]

    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "AIRFLOW", "VIRTUAL_ENV", "PYTEST"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    where = subprocess.run(
        [str(python), "-c",
         "import json, importlib.metadata as m, airflow_provider_mls as p; "
         "d = m.distribution('airflow-provider-mls'); "
         "print(json.dumps({'module': p.__file__, 'dist': str(d.locate_file('')), 'version': d.version, "
         "'dists': sum(1 for x in m.distributions() if x.metadata['Name'] == 'airflow-provider-mls')}))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-3000:]
    found = json.loads(where.stdout.strip().splitlines()[-1])
    assert found["module"].startswith(str(clean_purelib)), found
    assert found["dist"].startswith(str(clean_purelib)), found
    assert found["dists"] == 1, found
    assert found["version"] == VERSION

    providers = subprocess.run(
        [str(python), "-m", "airflow", "providers", "list", "--output", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert providers.returncode == 0, providers.stderr[-3000:]
    listed = {p["package_name"]: p for p in json.loads(providers.stdout[providers.stdout.index("[") :])}
    assert listed["airflow-provider-mls"]["version"] == VERSION
