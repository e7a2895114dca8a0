"""Downloads and archives: local copy first, checksum, progress bar, atomic extraction.

Every data set of the course goes through :func:`find_or_download` (look in
:func:`tme_lib.config.data_dir` first, download only if nothing is there) and, for archives,
:func:`extract_tar` (extract once into :func:`tme_lib.config.cache_dir`, atomically).

Why atomic and verified: an interrupted or corrupt extraction must never leave a half-filled
folder that a later run trusts. An archive that is not the official one is read to the end of
its gzip stream first (its CRC checked); we extract into a temporary folder of the cache, check
the layout and the number of files per folder, write a marker recording the archive's
fingerprint and what was verified, and only then rename the folder to its final name. A folder
without a current marker is never used; temporary folders of interrupted runs are removed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from .. import config
from ..config import DataError

MARKER = ".tme_complete"
OWNER = ".tme_owner"  # pid of the process extracting into a temporary folder
CHUNK = 1 << 20


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, then check its length against the
    announced one and, when given, its sha256. The file is written to ``dest.part`` and
    renamed only once
    checked, so ``dest`` is never a partial download."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as err:
        part.unlink(missing_ok=True)
        raise DataError(
            f"Could not download {url} ({err}). If this machine is offline, download the file "
            f"elsewhere and put {dest.name} in a folder named by the environment variable "
            f"TME_DATA_DIR (currently {config.data_dir()})."
        ) from err
    received = part.stat().st_size
    if total is not None and received != total:  # the connection dropped before the end
        part.unlink(missing_ok=True)
        raise DataError(
            f"{url}: received {received} of {total} bytes. Run again to retry."
        )
    if sha256 is not None and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise DataError(
            f"{url} downloaded with sha256 {digest.hexdigest()}, expected {sha256}: "
            "the download is "
            "corrupt or the file changed upstream. Run again to retry."
        )
    part.replace(dest)
    return dest


def find_or_download(filename: str, url: str, sha256: str | None = None) -> Path:
    """Path of ``filename`` in the data folder; downloads it there (or into the cache if the
    data folder is read-only) when absent. A local copy need not have the official checksum
    (local copies may be re-packed): :func:`extract_tar` verifies such an archive completely;
    what this function downloads must have the official checksum."""
    root = config.data_dir()
    if (root / filename).exists():
        return root / filename
    cached = config.cache_dir() / "downloads" / filename
    if cached.exists():
        return cached
    target = root / filename if os.access(root, os.W_OK) else cached
    return download(url, target, sha256=sha256)


def fingerprint(path: Path) -> dict:
    """What identifies an archive cheaply: its path, size and modification time."""
    stat = Path(path).stat()
    return {
        "archive": str(Path(path).resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def verify_gzip(archive: Path) -> None:
    """Read the whole gzip stream of ``archive``, so that its CRC and length are checked (a
    tar reader stops at the first bad header and never gets there). Raises :class:`DataError`
    naming the archive and the cause."""
    try:
        with gzip.open(archive, "rb") as stream:
            while stream.read(CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(
            f"{archive} is corrupt: its gzip stream does not check out ({type(err).__name__}: "
            f"{err}). Delete it and run again to download a fresh copy, or replace it with a "
            "good copy."
        ) from None


def _owned_by_live_process(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale_extractions(name: str) -> list[Path]:
    """Remove the temporary folders ``<cache>/.<name>-*`` that an interrupted extraction left
    behind (their owner process is gone); returns them."""
    stale = [
        p
        for p in config.cache_dir().glob(f".{name}-*")
        if p.is_dir() and not _owned_by_live_process(p)
    ]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


REVIEW_FILE = re.compile(r"\d+_\d+\.txt")  # <id>_<rating>.txt


def count_files(root: Path, counts: dict[str, int]) -> dict[str, int]:
    """The number of review files ``<id>_<rating>.txt`` in each folder of ``counts`` (relative
    to ``root``); other files are left to the reader, which names them."""
    return {
        folder: sum(
            1 for p in (root / folder).glob("*.txt") if REVIEW_FILE.fullmatch(p.name)
        )
        for folder in counts
    }


def check_counts(root: Path, counts: dict[str, int], what: str) -> None:
    """Raise :class:`DataError` unless each folder of ``counts`` holds that many files."""
    found = count_files(root, counts)
    wrong = {f: (found[f], n) for f, n in counts.items() if found[f] != n}
    if wrong:
        detail = ", ".join(
            f"{f}: {got} files, expected {n}" for f, (got, n) in wrong.items()
        )
        raise DataError(
            f"{what} is incomplete or altered ({detail}). Delete it and run again, or replace "
            "it with the official archive."
        )


def _marker(
    archive: Path, sha256: str, trusted: bool, counts: dict[str, int], members: int
) -> dict:
    verified = (
        ["sha256 is the official one"]
        if trusted
        else ["gzip stream read to its end (CRC and length)"]
    )
    verified.append(f"{members} members extracted, expected folder counts found")
    return {
        **fingerprint(archive),
        "sha256": sha256,
        "trusted": trusted,
        "verified": verified,
        "counts": counts,
    }


def extraction_is_current(final: Path, archive: Path) -> bool:
    """Whether ``final`` holds a complete extraction of this very archive (its marker records
    the archive's fingerprint; an older marker, or another archive, does not count)."""
    try:
        marker = json.loads((final / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and all(
        marker.get(k) == v for k, v in fingerprint(archive).items()
    )


def extract_tar(
    archive: Path,
    name: str,
    required: Iterable[str],
    counts: dict[str, int] | None = None,
    official_sha256: str | None = None,
) -> Path:
    """Extract ``archive`` once into ``<cache>/<name>`` and return that folder.

    The archive is trusted when its SHA-256 is ``official_sha256``; any other archive (a local
    re-pack, a copy) has its gzip stream read to the end first, so a CRC error is caught.
    After extraction every path of ``required`` must exist and each folder of ``counts`` must
    hold that many ``*.txt`` files. Only then is the marker written (with the archive's
    fingerprint and what was verified) and the folder renamed to its final name: a folder
    without a current marker is never used, and a different archive is verified again. Every
    failure is a :class:`DataError` naming the archive, the cause and what to do; nothing
    partial is left in the cache (temporary folders of interrupted runs are removed at the next
    one)."""
    archive = Path(archive)
    final = config.cache_dir() / name
    if extraction_is_current(final, archive):
        return final
    with config.file_lock(f"extract-{name}", f"the extraction {final}"):
        if extraction_is_current(final, archive):  # made while this process waited
            return final
        return _extract_verified(
            archive, final, name, required, counts or {}, official_sha256
        )


def _extract_verified(archive, final, name, required, counts, official_sha256) -> Path:
    """:func:`extract_tar`'s work, under its lock: the new archive is verified and extracted
    into a temporary folder first; only then is an older extraction replaced."""
    clean_stale_extractions(name)
    digest = sha256sum(archive)
    trusted = official_sha256 is not None and digest == official_sha256
    if not trusted:
        verify_gzip(archive)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=config.cache_dir()))
    (tmp / OWNER).write_text(str(os.getpid()))
    try:
        members = _extract_members(archive, tmp)
        missing = [p for p in required if not (tmp / p).exists()]
        if missing:
            raise DataError(
                f"{archive} does not have the expected layout (missing {', '.join(missing)}). "
                "Delete it and run again, or replace it with the official archive."
            )
        check_counts(tmp, counts, str(archive))
        (tmp / OWNER).unlink()
        marker = _marker(archive, digest, trusted, counts, members)
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        # mkdtemp makes it private; the extracted data is an ordinary folder
        tmp.chmod(0o755)
        if final.exists():  # an older or unmarked extraction: replaced only now
            shutil.rmtree(final)
        tmp.replace(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _extract_members(archive: Path, target: Path) -> int:
    """Extract every member of ``archive`` into ``target``; returns how many there were."""
    n = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc=f"extracting {archive.name}", unit=" files"):
                # the "data" filter refuses absolute paths, ".." and links leaving the folder
                tar.extract(member, target, filter="data")
                n += 1
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"{archive} could not be extracted ({type(err).__name__}: {err}). If it is truncated "
            "or corrupt, delete it and run again to download a fresh copy, or replace it with a "
            f"good copy; if the disk is full, free space in {config.cache_dir()}."
        ) from err
    return n
