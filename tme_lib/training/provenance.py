"""Which code made a result: the commit of the working tree, and whether it had uncommitted
changes.

Both a run record and a training checkpoint carry :func:`code_version`: a record is published
only when its code was clean (:mod:`tme_lib.training.records`), and a checkpoint is resumed only
by the code that wrote it (:mod:`tme_lib.training.trainer`), so a published record's commit
covers every epoch of its run.

Outside a git checkout (the library installed from a wheel, or by pip from the repository, as
on Colab) there are no uncommitted changes to speak of: the code is the installed release,
``tme_lib 0.1.0``, with the commit pip installed it from when pip recorded one.
"""

from __future__ import annotations

import json
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


def in_repository() -> bool:
    """Whether the code runs from a git checkout (else: an installed release)."""
    return config.IN_CHECKOUT and _git("rev-parse", "HEAD") is not None


def release() -> str:
    """The installed release: ``"tme_lib 0.1.0"``, followed by ``" (commit 0123456789)"`` when
    pip installed it from a repository and recorded the commit."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("tme_lib")
    except PackageNotFoundError:
        return "tme_lib (not installed)"
    text = f"tme_lib {dist.version}"
    try:
        commit = json.loads(dist.read_text("direct_url.json") or "{}")
        commit = commit.get("vcs_info", {}).get("commit_id")
    except ValueError:
        commit = None
    return f"{text} (commit {commit[:10]})" if commit else text


def code_version() -> tuple[str, bool]:
    """``(commit, clean)``: the full hash of ``HEAD`` and whether the working tree has no
    uncommitted change outside ``results/``. Outside a git checkout: ``(release(), False)``:
    such code is never published, but it is not "dirty" either (see :func:`describe`)."""
    commit = _git("rev-parse", "HEAD") if config.IN_CHECKOUT else None
    if not commit:
        return release(), False
    changes = _git("status", "--porcelain", "--", ".", ":(exclude)results")
    return commit, changes == ""


def is_commit(version: str) -> bool:
    return len(version) == 40 and all(c in "0123456789abcdef" for c in version)


def recorded_version(code: tuple[str, bool]) -> str:
    """What a record says of its code: the commit, ``<commit>-dirty`` with uncommitted
    changes, or the installed release outside a checkout."""
    commit, clean = code
    return commit if clean or not is_commit(commit) else f"{commit}-dirty"


def describe(code: tuple[str, bool]) -> str:
    """``"0123456789"`` for a clean commit, ``"0123456789 with uncommitted changes"`` for a
    checkout with changes, the release (``"tme_lib 0.1.0"``) outside a checkout."""
    commit, clean = code
    if not is_commit(commit):
        return commit
    return short_version(commit) + ("" if clean else " with uncommitted changes")


def short_version(version: str) -> str:
    """What the book prints of a code version: the commit's first 10 digits."""
    return version[:10] if len(version) == 40 else version
