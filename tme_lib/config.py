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
``TME_TRAIN_MISSING``
    ``1``: where the course's library is installed without the repository (Colab, a wheel),
    train in the full profile the runs whose records cannot be found, instead of stopping
    with a message (hours on a CPU). In a clone of the repository missing runs are trained
    anyway, and ``python -m tme_lib.runs`` always trains them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent
# Whether this code is a checkout of the repository (beside its pyproject.toml) rather than
# an installed package (a wheel in site-packages, as on Colab): decided once, from where the
# code is, so that tests moving REPO_ROOT do not change it.
IN_CHECKOUT = (Path(__file__).resolve().parent.parent / "pyproject.toml").is_file()


def repository() -> str:
    """The address of the course's repository: ``[project.urls] Repository`` of
    ``pyproject.toml``, the one place that names it (read from the installed package's
    metadata, so that a wheel knows it too)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        entries = metadata("tme_lib").get_all("Project-URL") or []
    except PackageNotFoundError:
        entries = []
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"]


def train_missing() -> bool:
    """``TME_TRAIN_MISSING=1``: train the full-profile runs whose records are missing even
    where the library is installed without the repository."""
    value = os.environ.get("TME_TRAIN_MISSING", "").strip().lower()
    if value in ("", "0", "no", "false"):
        return False
    if value in ("1", "yes", "true"):
        return True
    raise ValueError(
        f"TME_TRAIN_MISSING={value!r}: use 1 to train missing runs, or unset it."
    )


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
    """Writable folder for everything derived from the data (created on demand). A
    ``TME_CACHE_DIR`` that is a file, or a folder that cannot be written, is an error that
    names the variable."""
    env = os.environ.get("TME_CACHE_DIR")
    path = Path(env or Path.home() / ".cache" / "tme_lib").expanduser()
    where = f"TME_CACHE_DIR={env}" if env else f"the default cache folder {path}"
    if path.exists() and not path.is_dir():
        raise DataError(
            f"{where} is a file, not a folder: point TME_CACHE_DIR at a folder (it is created "
            "if missing), or unset it to use ~/.cache/tme_lib."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"{where} cannot be created ({error.strerror}): point TME_CACHE_DIR at a folder "
            "you can write to."
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(
            f"{where} cannot be written to (read-only or not yours): point TME_CACHE_DIR at a "
            "folder you can write to; TME_DATA_DIR is the variable for read-only data."
        )
    return path


class DataError(RuntimeError):
    """A data file or folder is missing, corrupt or cannot be downloaded; the message says
    which and what to do."""


@contextlib.contextmanager
def file_lock(name: str, what: str):
    """Hold an exclusive lock named ``name`` (the file ``<cache>/.locks/<name>.lock``) within
    the block: a second process that builds the same cache file waits here, then finds it
    built. Says so when it has to wait. Without ``fcntl`` (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = cache_dir() / ".locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"Another process is building {what}: waiting for it to finish.",
                flush=True,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def writing(path: Path, what: str):
    """Within the block ``path`` (a temporary file) is written: when the disk fills (``OSError``
    ENOSPC, or PyTorch's "file write failed"), the partial file is removed and a
    :class:`DataError` says which disk is full and what to do."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        full = getattr(error, "errno", None) in DISK_FULL or "file write failed" in str(
            error
        )
        if not full:
            raise
        Path(path).unlink(missing_ok=True)
        raise DataError(
            f"The disk is full: {what} could not be written to {Path(path).parent}. Free some "
            "space there (old checkpoints: <cache>/checkpoints), or point TME_CACHE_DIR at a "
            "disk with room; nothing half-written was kept."
        ) from None


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
# The most threads TME_THREADS may ask for: more than a few per core fails in PyTorch
# ("Thread creation failed") or crashes it.
MAX_THREADS = 4 * (os.cpu_count() or 1)


def threads_text(n: int) -> str:
    """``"1 thread"``, ``"2 threads"``."""
    return f"{n} thread" + ("" if n == 1 else "s")


def threads() -> int:
    """CPU threads for PyTorch: ``TME_THREADS`` if set; else :data:`SMOKE_THREADS` in the smoke
    profile and PyTorch's own choice (the number of cores) in the full profile."""
    value = os.environ.get("TME_THREADS")
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1 or n > MAX_THREADS:
            raise ValueError(
                f"TME_THREADS={value!r}: give a number of threads from 1 to {MAX_THREADS} "
                f"(this machine has {os.cpu_count()} cores; more threads than cores only "
                "slows PyTorch down)."
            )
        return n
    return SMOKE_THREADS if profile() == "smoke" else _DEFAULT_THREADS


_DEFAULT_THREADS = torch.get_num_threads()  # PyTorch's choice, before anyone changes it


def get_device(verbose: bool = True) -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU; ``TME_DEVICE`` overrides (checked
    here, before any data is loaded: a device this machine lacks is an error that names the
    variable)."""
    name = os.environ.get("TME_DEVICE", "").strip().lower()
    if name:
        check_device(name)
    else:
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
            else threads_text(torch.get_num_threads())
        )
        print(f"Using device: {name} ({extra})")
    return device


DEVICES = ("cpu", "cuda", "mps")


def check_device(name: str) -> None:
    """Raise a ``ValueError`` naming ``TME_DEVICE`` when ``name`` is not a device of this
    machine."""
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(
            f"TME_DEVICE={name!r} is not a device: use one of {', '.join(DEVICES)} (or unset "
            "it to take the best available)."
        )
    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": mps is not None and mps.is_available(),
    }
    if not available[kind]:
        raise ValueError(
            f"TME_DEVICE={name!r}, but this machine has no {kind} device PyTorch can use: "
            "unset TME_DEVICE (the best available device is taken) or set it to cpu."
        )
    if kind == "cuda" and ":" in name:
        index = name.split(":")[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ValueError(
                f"TME_DEVICE={name!r}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s), numbered from 0."
            )


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
