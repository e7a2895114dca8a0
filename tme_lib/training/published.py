"""Where the book's records are: ``results/runs`` in a clone of the repository; elsewhere (the
library installed from a wheel or from git, as on Colab) the **records archive**.

The archive is ``results/runs`` packed reproducibly (sorted members, no dates or owners), so
that the same records always give the same bytes. Its SHA-256, size and the SHA-256 of every
file in it are written in ``records_lock.json``, a file of the package: ``python
tools/records_archive.py lock`` writes it, and a test fails while it does not describe the
committed records. The archive is named by its content, ``records-<sha256[:16]>.tar.gz``, and
published as an asset of the repository's release ``records`` (``.github/workflows``), so that
every commit of the library finds the archive of its own records.

Used outside a clone: the archive is taken from ``TME_DATA_DIR`` when it is there, else
downloaded; its SHA-256 must be the lock's (any other file is refused); it is extracted once
into ``<cache>/records-<sha256[:16]>`` and its files made read-only. The records in it are then
checked like any other (spec, key, seal, weights' hash). Offline and without the archive, a
:class:`~tme_lib.config.DataError` says what to download and where to put it.
"""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
from pathlib import Path

from .. import config
from ..config import DataError
from ..data.download import download, extract_tar, sha256sum

LOCK = Path(__file__).with_name("records_lock.json")
RELEASE = "records"  # the release of the repository whose assets are the records archives


def clone_runs() -> Path:
    """``results/runs`` of the repository this code is a checkout of."""
    return config.REPO_ROOT / "results" / "runs"


def runs_dir() -> Path:
    """The folder whose sub-folders ``<chapter>/`` hold the book's records: the clone's own,
    or the records archive's extraction (fetched on first use)."""
    return clone_runs() if config.IN_CHECKOUT else fetched_runs()


# --- The archive ---------------------------------------------------------------------------


def files_of(runs: Path) -> dict[str, str]:
    """``{"<chapter>/<file>": sha256}`` for every file under ``runs``, sorted."""
    return {
        p.relative_to(runs).as_posix(): sha256sum(p)
        for p in sorted(runs.rglob("*"))
        if p.is_file()
    }


def build_archive(runs: Path, dest: Path) -> dict:
    """Pack every file under ``runs`` into ``dest`` (``runs/<chapter>/<file>`` members) so that
    the same files always give the same bytes; returns the lock that describes it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in files_of(runs):
            data = (runs / name).read_bytes()
            info = tarfile.TarInfo(f"runs/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=packed, mode="wb", mtime=0) as zipped:
        zipped.write(buffer.getvalue())
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(packed.getvalue())
    sha = sha256sum(dest)
    return {
        "archive": archive_name(sha),
        "sha256": sha,
        "bytes": dest.stat().st_size,
        "files": files_of(runs),
    }


def archive_name(sha256: str) -> str:
    return f"records-{sha256[:16]}.tar.gz"


def read_lock() -> dict:
    try:
        return json.loads(LOCK.read_text())
    except (OSError, ValueError) as error:
        raise DataError(
            f"{LOCK} cannot be read ({error}): this installation of tme_lib is damaged; "
            "install it again."
        ) from None


def archive_url(lock: dict | None = None) -> str:
    lock = lock or read_lock()
    return f"{config.repository()}/releases/download/{RELEASE}/{lock['archive']}"


def missing_message(lock: dict, cause: str) -> str:
    return (
        f"The book's run records are not part of this installation of tme_lib (it is not a "
        f"clone of the repository), and {cause}. Download {archive_url(lock)} "
        f"({lock['bytes'] / 1e6:.0f} MB, SHA-256 {lock['sha256']}) and put it in the folder "
        "named by TME_DATA_DIR; or clone the repository, whose results/ holds them; or set "
        "TME_TRAIN_MISSING=1 to train every run here instead (hours on a CPU)."
    )


def fetched_runs() -> Path:
    """The extraction of the records archive of this code's lock: from ``TME_DATA_DIR``, the
    cache's downloads or the repository's release, its SHA-256 checked."""
    lock = read_lock()
    name = f"records-{lock['sha256'][:16]}"
    final = config.cache_dir() / name
    if (final / "runs").is_dir() and (final / ".tme_complete").is_file():
        return final / "runs"
    archive = _local_archive(lock)
    if archive is None:
        try:
            archive = download(
                archive_url(lock),
                config.cache_dir() / "downloads" / lock["archive"],
                sha256=lock["sha256"],
            )
        except DataError as error:
            cause = error.__cause__ or error
            raise DataError(
                missing_message(lock, f"it could not be downloaded ({cause})")
            ) from None
    folder = extract_tar(archive, name, required=["runs"], official_sha256=lock["sha256"])
    for path in (folder / "runs").rglob("*"):
        if path.is_file():  # read-only: the records are the book's, not to be edited
            path.chmod(
                path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            )
    return folder / "runs"


def _local_archive(lock: dict) -> Path | None:
    """The archive of ``lock`` in ``TME_DATA_DIR`` or the cache's downloads, checked; a file
    of that name with other contents is an error that says so."""
    for folder in (config.data_dir(), config.cache_dir() / "downloads"):
        path = folder / lock["archive"]
        if path.is_file():
            found = sha256sum(path)
            if found != lock["sha256"]:
                raise DataError(
                    f"{path} is not the records archive of this version of tme_lib: its "
                    f"SHA-256 is {found}, expected {lock['sha256']}. Delete it and download "
                    f"{archive_url(lock)} again."
                )
            return path
    return None
