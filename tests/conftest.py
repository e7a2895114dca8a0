"""Shared fixtures: every test runs with its own empty cache and data folders (never the user's),
in the smoke profile, and can build a tiny aclImdb tree, its archive, or a tiny GloVe file."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tme_lib.data import imdb

# captured before the autouse fixture hides it: real-data tests look here for the real archive
REAL_DATA_DIR = os.environ.get("TME_DATA_DIR")

# (split, folder) -> reviews; file names follow the official "<id>_<rating>.txt"
TINY_REVIEWS = {
    ("train", "pos"): [
        "A great film, great acting!",
        "Great fun.<br /><br />I loved it.",
        "great great great",
        "",
    ],
    ("train", "neg"): [
        "An awful film. Awful acting...",
        "awful, boring; I hated it.",
        "boring boring film",
        "Zyzzyva quokka",
    ],
    ("test", "pos"): ["Great movie with a testonlyword.", "loved the acting"],
    ("test", "neg"): ["Awful and boring.", "I hated this film"],
    ("train", "unsup"): ["An unsuponlyword film with great acting.", "boring and awful"],
}


REAL_COUNTS = dict(imdb.COUNTS)
TINY_COUNTS = {
    f"aclImdb/{split}/{folder}": len(texts)
    for (split, folder), texts in TINY_REVIEWS.items()
}


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path, monkeypatch):
    """Fresh ``TME_CACHE_DIR`` and empty ``TME_DATA_DIR``, smoke profile; the IMDB folder
    counts are those of the tiny tree (:data:`TINY_REVIEWS`)."""
    monkeypatch.setattr(imdb, "COUNTS", TINY_COUNTS, raising=False)
    cache, data = tmp_path / "cache", tmp_path / "data"
    cache.mkdir()
    data.mkdir()
    monkeypatch.setenv("TME_CACHE_DIR", str(cache))
    monkeypatch.setenv("TME_DATA_DIR", str(data))
    monkeypatch.setenv("TME_PROFILE", "smoke")
    return cache, data


def write_tiny_imdb(root: Path) -> Path:
    """Write :data:`TINY_REVIEWS` as ``root/aclImdb/...``; returns ``root/aclImdb``."""
    for (split, folder), texts in TINY_REVIEWS.items():
        path = root / "aclImdb" / split / folder
        path.mkdir(parents=True)
        for i, text in enumerate(texts):
            (path / f"{i}_{7 if folder == 'pos' else 2}.txt").write_text(
                text, encoding="utf-8"
            )
    return root / "aclImdb"


@pytest.fixture
def tiny_imdb_dir(isolated_folders):
    """An extracted tiny ``aclImdb/`` in the data folder."""
    return write_tiny_imdb(isolated_folders[1])


@pytest.fixture
def tiny_imdb_archive(isolated_folders, tmp_path):
    """A tiny ``aclImdb_v1.tar.gz`` in the data folder (and nothing else there)."""
    tree = write_tiny_imdb(tmp_path / "tree")
    archive = isolated_folders[1] / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="aclImdb")
    return archive


@pytest.fixture
def tiny_glove(isolated_folders):
    """``glove.6B.50d.txt`` in the data folder with a few words; returns {word: vector}."""
    rng = np.random.default_rng(0)
    table = {
        w: rng.normal(size=50).astype(np.float32)
        for w in ["the", "great", "awful", "film", ",", "!", "unused"]
    }
    lines = [w + " " + " ".join(f"{x:.6f}" for x in v) for w, v in table.items()]
    (isolated_folders[1] / "glove.6B.50d.txt").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    return {w: np.round(v, 6) for w, v in table.items()}


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory):
    """One cache for all real-data tests of a session: the archive is extracted once."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture
def real_data(monkeypatch, real_cache):
    """Full profile on the real archive of ``TME_DATA_DIR``; skips when it is not there."""
    if not REAL_DATA_DIR or not any(
        (Path(REAL_DATA_DIR) / name).exists() for name in ("aclImdb_v1.tar.gz", "aclImdb")
    ):
        pytest.skip("needs the real IMDB archive in TME_DATA_DIR")
    monkeypatch.setenv("TME_DATA_DIR", REAL_DATA_DIR)
    monkeypatch.setenv("TME_CACHE_DIR", str(real_cache))
    monkeypatch.setattr(imdb, "COUNTS", REAL_COUNTS)
    monkeypatch.setenv("TME_PROFILE", "full")
    return Path(REAL_DATA_DIR)
