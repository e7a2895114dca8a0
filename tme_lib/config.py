"""Run-time settings: profile, data and cache folders, device and seeding.

Environment variables (all optional):

``TME_PROFILE``
    ``smoke`` (default) runs every notebook in under a minute on a CPU on generated data;
    ``full`` uses the real data sets and the sizes reported in the book.
``TME_DATA_DIR``
    Folder searched for data archives (e.g. ``aclImdb_v1.tar.gz`` or an extracted ``aclImdb/``)
    before anything is downloaded. Downloads are saved there too. May be read-only when it
    already holds the archives. Default: ``<cache>/data``.
``TME_CACHE_DIR``
    Folder for extracted archives, tokenised data, word vectors, labelled sequences and
    checkpoints. Default: ``~/.cache/tme_lib``.
``TME_DEVICE``
    Force a device (``cpu``, ``cuda``, ``mps``); default: the best available.
``TME_THREADS``
    Number of CPU threads used by PyTorch (default: 1 in the smoke profile, PyTorch's own
    choice in the full profile; see :func:`threads`).
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent


def profile() -> str:
    """The active profile, from ``TME_PROFILE`` (``smoke`` or ``full``)."""
    value = os.environ.get("TME_PROFILE", "smoke").strip().lower()
    if value not in PROFILES:
        raise ValueError(
            f"TME_PROFILE={value!r} is not a profile; use one of {', '.join(PROFILES)}."
        )
    return value


def is_full() -> bool:
    return profile() == "full"


@contextlib.contextmanager
def profile_set(name: str):
    """Within the block, ``TME_PROFILE`` is ``name`` (for this process and the processes it
    starts); the previous value, or its absence, comes back afterwards."""
    if name not in PROFILES:
        raise ValueError(f"profile {name!r}: use one of {', '.join(PROFILES)}.")
    before = os.environ.get("TME_PROFILE")
    os.environ["TME_PROFILE"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TME_PROFILE", None)
        else:
            os.environ["TME_PROFILE"] = before


def cache_dir() -> Path:
    """Writable folder for everything derived from the data (created on demand)."""
    path = Path(
        os.environ.get("TME_CACHE_DIR", Path.home() / ".cache" / "tme_lib")
    ).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


class DataError(RuntimeError):
    """A data file or folder is missing, corrupt or cannot be downloaded; the message says
    which and what to do."""


def read_cached(path: Path, reader):
    """``reader(path)`` for a file of the cache, or ``None`` when it is missing or cannot be
    read: a damaged cache file (a truncated ``.npz``, bad JSON) is reported by name and
    removed, so that the caller builds it again instead of failing on every run."""
    if not Path(path).exists():
        return None
    try:
        return reader(path)
    except Exception as error:  # any unreadable cache file: rebuilt, never trusted
        print(
            f"The cache file {path} cannot be read ({type(error).__name__}: {error}); it is "
            "removed and will be built again."
        )
        Path(path).unlink(missing_ok=True)
        return None


def data_dir() -> Path:
    """Folder searched for data archives before downloading (not necessarily writable). A
    ``TME_DATA_DIR`` that does not exist is an error, not an empty folder."""
    env = os.environ.get("TME_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(
                f"TME_DATA_DIR={env} is missing: no such folder. Create it and put the data "
                "archives there (e.g. aclImdb_v1.tar.gz), point TME_DATA_DIR at the folder "
                "that has them, or unset it to download into the cache."
            )
        return path
    path = cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Threads in the smoke profile when TME_THREADS is unset: its models are tiny, so more threads
# only add synchronisation, and on a machine whose cores are busy PyTorch's threads wait for each
# other (measured: a smoke notebook several times slower with two threads than with one while
# another process used a core).
SMOKE_THREADS = 1


def threads() -> int:
    """CPU threads for PyTorch: ``TME_THREADS`` if set; else :data:`SMOKE_THREADS` in the smoke
    profile and PyTorch's own choice (the number of cores) in the full profile."""
    value = os.environ.get("TME_THREADS")
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"TME_THREADS={value!r}: give a number of threads, 1 or more."
            )
        return n
    return SMOKE_THREADS if profile() == "smoke" else _DEFAULT_THREADS


_DEFAULT_THREADS = torch.get_num_threads()  # PyTorch's choice, before anyone changes it


def get_device(verbose: bool = True) -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU; ``TME_DEVICE`` overrides."""
    name = os.environ.get("TME_DEVICE")
    if not name:
        if torch.cuda.is_available():
            name = "cuda"
        elif (
            getattr(torch.backends, "mps", None) is not None
            and torch.backends.mps.is_available()
        ):
            name = "mps"
        else:
            name = "cpu"
    torch.set_num_threads(threads())
    # Numbers below 1e-38 ("denormals", e.g. the exp() of very negative attention scores) take
    # x86 CPUs tens of times longer per operation; rounding them to 0 changes no result we
    # report and speeds up attention training (benchmarks/bench_tme10.py).
    torch.set_flush_denormal(True)
    device = torch.device(name)
    if verbose:
        extra = (
            torch.cuda.get_device_name(0)
            if name == "cuda"
            else f"{torch.get_num_threads()} threads"
        )
        print(f"Using device: {name} ({extra})")
    return device


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
