"""Misuse gets a message, not a raw error: each test builds its fault and checks that the
message names the variable, file or character and says what to do."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tme_lib import config
from tme_lib.chapters.aptamers import sequences
from tme_lib.config import DataError


@pytest.mark.parametrize("name", ["gpu", "tpu:0"])
def test_an_unknown_device_names_the_variable(monkeypatch, name):
    monkeypatch.setenv("TME_DEVICE", name)
    with pytest.raises(ValueError, match=f"TME_DEVICE='{name}' is not a device"):
        config.get_device(verbose=False)


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_a_device_this_machine_lacks_is_refused_before_any_data(monkeypatch, name):
    available = (
        torch.cuda.is_available() if name == "cuda" else torch.backends.mps.is_available()
    )
    if available:
        pytest.skip(f"this machine has {name}")
    monkeypatch.setenv("TME_DEVICE", name)
    with pytest.raises(ValueError, match=f"no {name} device.*unset TME_DEVICE"):
        config.get_device(verbose=False)


@pytest.mark.parametrize("value", ["100000", "0", "two"])
def test_an_impossible_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("TME_THREADS", value)
    with pytest.raises(ValueError, match=f"TME_THREADS='{value}'.*from 1 to"):
        config.threads()


def test_a_cache_that_is_a_file_names_the_variable(monkeypatch, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("")
    monkeypatch.setenv("TME_CACHE_DIR", str(file))
    with pytest.raises(DataError, match="TME_CACHE_DIR=.* is a file, not a folder"):
        config.cache_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_a_read_only_cache_names_the_variable(monkeypatch, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("TME_CACHE_DIR", str(folder))
    try:
        with pytest.raises(DataError, match="cannot be written to"):
            config.cache_dir()
    finally:
        folder.chmod(0o700)


def test_a_cache_that_cannot_be_created_names_the_variable(monkeypatch, tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    monkeypatch.setenv("TME_CACHE_DIR", str(file / "below"))
    with pytest.raises(DataError, match="TME_CACHE_DIR=.* cannot be created"):
        config.cache_dir()


def test_a_csv_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    strand = "ACGT" * 7 + "AC"
    path.write_bytes("\ufeffsequence,target\n".encode() + f"{strand},-1.5\n".encode())
    ids, targets = sequences.load_csv(path)
    assert ids.shape == (1, 30) and targets.tolist() == [-1.5]


def test_the_run_tool_names_a_damaged_record_instead_of_doing_nothing(tmp_path):
    """A record whose weights file is gone: the tool lists it and says how to retrain it."""
    env = {
        **os.environ,
        "TME_CACHE_DIR": str(tmp_path),
        "TME_PROFILE": "smoke",
        "TME_THREADS": "1",
    }
    run = [sys.executable, "-m", "tme_lib.runs", "data"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    weights = next((tmp_path / "smoke-runs" / "data").glob("*.pt"))
    weights.unlink()
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    said = second.stdout + second.stderr
    assert second.returncode != 0
    assert (
        "1 damaged" in said
        and weights.name in said
        and "--retrain --only baseline" in said
    )


def _fills_the_disk(kind):
    def save(*args, **kwargs):
        f = next(a for a in args if isinstance(a, (str, Path)))  # the file being written
        Path(f).write_bytes(b"half a file")  # what a full disk leaves
        if kind == "torch":
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed "
                "writing file data/0: file write failed"
            )
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


@pytest.mark.parametrize("kind", ["torch", "os"])
def test_a_full_disk_during_a_smoke_run_says_so_and_leaves_no_tmp(
    monkeypatch, tmp_path, kind
):
    from test_records import spec, trained

    from tme_lib.training import trainer

    monkeypatch.setattr(trainer.torch, "save", _fills_the_disk(kind))
    with pytest.raises(DataError, match="The disk is full.*TME_CACHE_DIR"):
        trained(spec(name="full-disk"))
    left = [p.name for p in config.cache_dir().rglob("*.tmp")]
    assert left == []


def test_a_full_disk_while_caching_the_index_says_so(monkeypatch, tiny_imdb_dir):
    from tme_lib.data import imdb

    monkeypatch.setattr(imdb.np, "savez", _fills_the_disk("os"))
    with pytest.raises(DataError, match="The disk is full: the cache file index.npz"):
        imdb.load_index(min_count=1)
    assert not list(config.cache_dir().rglob("*.tmp.npz"))
