"""Downloads and archives: local copy first, checksum, progress bar, atomic extraction.

Every data set of the course goes through :func:`find_or_download` (look in
:func:`tme_lib.config.data_dir` first, download only if nothing is there) and, for archives,
:func:`extract_tar` (extract once into :func:`tme_lib.config.cache_dir`, atomically).

Why atomic: an interrupted extraction must never leave a half-filled folder that a later run
trusts. We extract into a temporary folder of the cache, check the expected layout, write a
marker file, and only then rename the folder to its final name. A folder without the marker is
never used.
"""

from __future__ import annotations

import hashlib
import os
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

MARKER = ".tme_complete"
CHUNK = 1 << 20


class DataError(RuntimeError):
    """A data file is missing, corrupt or cannot be downloaded; the message says what to do."""


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
    data folder is read-only) when absent. A local copy is trusted as is: its checksum is not
    compared with the official one, since local copies may be re-packed; only what this
    function downloads is checked."""
    root = config.data_dir()
    if (root / filename).exists():
        return root / filename
    cached = config.cache_dir() / "downloads" / filename
    if cached.exists():
        return cached
    target = root / filename if os.access(root, os.W_OK) else cached
    return download(url, target, sha256=sha256)


def extract_tar(archive: Path, name: str, required: Iterable[str]) -> Path:
    """Extract ``archive`` once into ``<cache>/<name>`` and return that folder.

    ``required`` lists paths (relative to the archive's root) that must exist after extraction;
    if one is missing, or the archive is truncated or corrupt, a :class:`DataError` names the
    archive and what to do, and nothing is left in the cache."""
    archive = Path(archive)
    final = config.cache_dir() / name
    if (final / MARKER).exists():
        return final
    if final.exists():  # a folder without the marker is a leftover: never trust it
        shutil.rmtree(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=config.cache_dir()))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tqdm(tar, desc=f"extracting {archive.name}", unit=" files")
            # the "data" filter refuses absolute paths, ".." and links leaving the folder
            tar.extractall(tmp, members=members, filter="data")
        missing = [p for p in required if not (tmp / p).exists()]
        if missing:
            raise DataError(
                f"{archive} does not have the expected layout (missing {', '.join(missing)}). "
                "Delete it and run again, or replace it with the official archive."
            )
        (tmp / MARKER).write_text(str(archive))
        tmp.chmod(
            0o755
        )  # mkdtemp makes it private; the extracted data is an ordinary folder
        try:
            tmp.replace(final)
        except OSError:
            if not (
                final / MARKER
            ).exists():  # else another process finished first: use its copy
                raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"{archive} could not be extracted ({type(err).__name__}: {err}). If it is truncated "
            "or corrupt, delete it and run again to download a fresh copy, or replace it with a "
            f"good copy; if the disk is full, free space in {config.cache_dir()}."
        ) from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
