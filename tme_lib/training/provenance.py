"""Which code made a result: the commit of the working tree, and whether it had uncommitted
changes.

Both a run record and a training checkpoint carry :func:`code_version`: a record is published
only when its code was clean (:mod:`tme_lib.training.records`), and a checkpoint is resumed only
by the code that wrote it (:mod:`tme_lib.training.trainer`), so a published record's commit
covers every epoch of its run.
"""

from __future__ import annotations

import subprocess

from .. import config


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=config.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version() -> tuple[str, bool]:
    """``(commit, clean)``: the full hash of ``HEAD`` and whether the working tree has no
    uncommitted change outside ``results/``. Outside a git checkout: the package version, not
    clean."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        from importlib.metadata import version

        return f"tme_lib-{version('tme_lib')}", False
    changes = _git("status", "--porcelain", "--", ".", ":(exclude)results")
    return commit, changes == ""


def describe(code: tuple[str, bool]) -> str:
    """``"0123456789"`` for a clean commit, ``"0123456789 with uncommitted changes"`` else."""
    commit, clean = code
    return short_version(commit) + ("" if clean else " with uncommitted changes")


def short_version(version: str) -> str:
    """What the book prints of a code version: the commit's first 10 digits."""
    return version[:10] if len(version) == 40 else version
