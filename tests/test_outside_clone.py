"""A student's Colab, simulated: the library installed from a wheel of this checkout (no
repository beside it), each chapter notebook copied alone into an empty folder and run top to
bottom with nbclient, in both profiles.

Full profile: the book's records come from a records archive in ``TME_DATA_DIR`` (built here
from ``results/runs``, as the release workflow builds it), and nothing may train: outside a
clone a missing record stops the notebook with a message, so a notebook that runs to its end
has loaded every run. Needs the real IMDB archive (``real_data``); minutes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_bootstrap import NOTEBOOKS, ROOT, build_wheel

from tme_lib.training import published


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A folder holding the library as pip installs it from a wheel (no results/, no .git)."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    target = tmp / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(target), str(wheel)],
        check=True,
    )
    assert (
        not (target / "results").exists()
        and (target / "tme_lib" / "training" / "records_lock.json").is_file()
    )
    return target


def run_alone(notebook: Path, site: Path, folder: Path, env: dict, monkeypatch) -> list:
    """Run ``notebook`` copied alone into ``folder`` with the library of ``site``; returns the
    text of its outputs. A first cell checks that the library is the installed one."""
    folder.mkdir(parents=True)
    copy = folder / notebook.name
    shutil.copy(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.insert(
        0,
        nbformat.v4.new_code_cell(
            "import tme_lib, tme_lib.config as c\n"
            f"assert tme_lib.__file__.startswith({str(site)!r}), tme_lib.__file__\n"
            "assert not c.IN_CHECKOUT"
        ),
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TME_TRAIN_MISSING", raising=False)
    NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    return [
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    ]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_alone_in_the_smoke_profile(notebook, installed, tmp_path, monkeypatch):
    run_alone(
        notebook,
        installed,
        tmp_path / "work",
        {"TME_PROFILE": "smoke", "TME_CACHE_DIR": str(tmp_path / "cache")},
        monkeypatch,
    )


@pytest.fixture(scope="module")
def records_data(tmp_path_factory) -> Path:
    """A data folder with the IMDB archive and the records archive, as a student who
    downloaded both would have it."""
    from conftest import REAL_DATA_DIR

    imdb = Path(REAL_DATA_DIR or "") / "aclImdb_v1.tar.gz"
    if not REAL_DATA_DIR or not imdb.is_file():
        pytest.skip("needs the real IMDB archive in TME_DATA_DIR")
    data = tmp_path_factory.mktemp("data")
    (data / imdb.name).symlink_to(imdb)
    lock = published.build_archive(published.clone_runs(), data / "records.tmp")
    (data / "records.tmp").rename(data / lock["archive"])
    assert lock == published.read_lock(), "run python tools/records_archive.py lock"
    return data


@pytest.fixture(scope="module")
def full_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")  # one cold cache for the chapters in turn


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_alone_in_the_full_profile_loads_the_books_records(
    notebook, installed, records_data, full_cache, tmp_path, monkeypatch
):
    start = time.perf_counter()
    outputs = run_alone(
        notebook,
        installed,
        tmp_path / "work",
        {
            "TME_PROFILE": "full",
            "TME_DATA_DIR": str(records_data),
            "TME_CACHE_DIR": str(full_cache),
        },
        monkeypatch,
    )
    text = "\n".join(outputs)
    assert "Loaded" in text  # records were found
    for trace in ("dirty", "Uncommitted", "TME_TRAIN_MISSING"):
        assert trace not in text, trace
    print(f"{notebook.stem}: {time.perf_counter() - start:.0f} s")
    assert not (ROOT / "results" / "runs").is_relative_to(installed)
