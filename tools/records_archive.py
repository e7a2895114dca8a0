"""The records archive: the book's records for readers who have the library without the
repository (Colab, a wheel); see :mod:`tme_lib.training.published`.

    python tools/records_archive.py lock           # after committing records: update the lock
    python tools/records_archive.py build DIR      # write the archive into DIR (to publish it)
    python tools/records_archive.py check          # exit 1 when the lock is out of date

``lock`` builds the archive in a temporary folder and writes its SHA-256, size and the hash
of every record file into ``tme_lib/training/records_lock.json``; commit that file with the
records. ``build`` writes the same bytes, named ``records-<sha256[:16]>.tar.gz``, for the
repository's release ``records`` (the book's workflow uploads it).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tme_lib.training import published


def build(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "records.tar.gz.tmp"
    lock = published.build_archive(published.clone_runs(), tmp)
    target = folder / lock["archive"]
    tmp.replace(target)
    return lock


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lock", "build", "check"):
        print(__doc__)
        return 2
    if argv[0] == "build":
        if len(argv) != 2:
            print("Name the folder: python tools/records_archive.py build DIR")
            return 2
        lock = build(Path(argv[1]))
        print(
            f"{Path(argv[1]) / lock['archive']}: {lock['bytes']} bytes, {lock['sha256']}"
        )
        return 0
    if argv[0] == "check":
        current = published.files_of(published.clone_runs())
        if published.read_lock()["files"] != current:
            print(
                f"{published.LOCK} does not describe results/runs: run "
                "python tools/records_archive.py lock, and commit it with the records."
            )
            return 1
        print(f"{published.LOCK} describes the {len(current)} files of results/runs.")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        lock = build(Path(tmp))
    published.LOCK.write_text(json.dumps(lock, indent=1) + "\n")
    print(
        f"{published.LOCK}: {lock['archive']}, {len(lock['files'])} files, "
        f"{lock['bytes'] / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
