"""The first code cell of every chapter installs ``tme_lib`` where it is missing (Colab) and does
nothing where it is installed. Tested in a clean virtual environment against a wheel built
from this checkout, with pip forbidden to reach an index: never against the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def bootstrap_cells() -> dict[str, str]:
    """The first code cell of each chapter notebook."""
    return {
        path.name: next(
            c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code"
        )
        for path in NOTEBOOKS
    }


def test_every_chapter_starts_with_the_same_install_cell_pointing_at_the_repository():
    cells = bootstrap_cells()
    assert len(cells) >= 5 and len(set(cells.values())) == 1, "the cells differ"
    cell = next(iter(cells.values()))
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert f"git+{url['Repository']}" in cell
    book = (ROOT / "book" / "_config.yml").read_text()
    assert (
        f"url: {url['Repository']}" in book
    )  # the book's launch buttons: the same repository


def _run_cell(python: Path, cell: str, env: dict) -> subprocess.CompletedProcess:
    # run away from the checkout, whose tme_lib/ would be found on the path
    return subprocess.run(
        [str(python), "-c", cell],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=python.parent,
    )


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built without reaching an index, from a copy (setuptools
    writes build/ and *.egg-info beside the sources it builds); skips when it cannot."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*",
            "build",
            "*.egg-info",
            "book",
            "notebooks",
            "results",
            "student",
            "tests",
        ),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr[-300:]}")
    return next((tmp_path / "wheels").glob("tme_lib-*.whl"))


@pytest.mark.slow
def test_the_install_cell_installs_where_the_library_is_missing_and_only_there(tmp_path):
    cell = next(iter(bootstrap_cells().values()))
    wheel = build_wheel(tmp_path)
    venv.create(tmp_path / "clean", with_pip=True)
    python = tmp_path / "clean" / "bin" / "python"
    # no index, no dependencies: pip may only use the wheel it is given
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "TME_LIB_SOURCE": str(wheel),
    }
    env.pop("PYTHONPATH", None)
    missing = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tme_lib') is None)"
    assert _run_cell(python, missing, env).returncode == 1  # clean: no tme_lib
    first = _run_cell(python, cell, env)
    assert first.returncode == 0, first.stderr
    assert "Installing the course's library" in first.stdout
    assert _run_cell(python, missing, env).returncode == 0  # now importable
    # installed: the cell does nothing (a source that cannot be installed is not even tried)
    again = _run_cell(python, cell, {**env, "TME_LIB_SOURCE": str(tmp_path / "nothing")})
    assert again.returncode == 0 and again.stdout == ""
    # and where tme_lib is missing, a bad source fails loudly rather than silently
    venv.create(tmp_path / "other", with_pip=True)
    bad = _run_cell(
        tmp_path / "other" / "bin" / "python",
        cell,
        {**env, "TME_LIB_SOURCE": str(tmp_path / "nothing")},
    )
    assert bad.returncode != 0
