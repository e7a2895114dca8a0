"""The process around one submission: a copy of its folder, a read-only library, limits.

:class:`Library` copies the course's ``tme_lib`` once per grading session into a temporary
folder, read-only, and remembers the SHA-256 of every file; before each submission it checks
them and puts back any file a previous submission changed (that submission is then marked).
:func:`run_submission` copies the submission's folder into a temporary folder and runs the
driver (:mod:`.driver`) there as a new session, with a fresh cache and home, a time limit for
the whole notebook and a limit on its memory (``RLIMIT_AS``); the session is killed at the end,
so no process of the submission outlives its grading.

Run as root (a container, a CI job), the grader starts each submission as the unprivileged
user ``nobody`` when that user can run this Python (:func:`unprivileged`): the submission cannot
write the teaching assistant's files or the other submissions. Otherwise it runs as the
grader's own user, and what that user can read (other submissions, the checkers' source) it
can read and, until it is killed, write; the grader reads every submission before running any
(:func:`tme_lib.grade.grade`), so the grades do not depend on what a submission does to another
one's file. Run the grader in a container for more (README).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import tme_lib

BOOT = (
    "import sys; sys.path.insert(0, sys.argv[3]); "
    "from tme_lib.grading.driver import main; sys.exit(main(sys.argv[1:]))"
)
SKIPPED = (".ipynb_checkpoints", "__pycache__", ".git", "backups")
FOLDER_LIMIT = 10 * 2**20  # bytes of a submission's folder copied beside it


def read_folder(notebook: Path) -> dict[str, bytes]:
    """The files of ``notebook``'s folder (its data, its modules), read now: ``{relative path:
    bytes}``, without checkpoints or caches, at most :data:`FOLDER_LIMIT` bytes in all."""
    files, total = {}, 0
    root = notebook.parent
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or set(rel.parts) & set(SKIPPED):
            continue
        size = path.stat().st_size
        if total + size > FOLDER_LIMIT:
            continue
        files[rel.as_posix()] = path.read_bytes()
        total += size
    return files


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Library:
    """A read-only copy of the course's ``tme_lib`` under ``root/lib``."""

    def __init__(self, root: Path):
        self.source = Path(tme_lib.__file__).resolve().parent
        self.path = Path(root) / "lib"
        self._copy()
        self.hashes = self._hashes()

    def _copy(self) -> None:
        if self.path.exists():
            for p in self.path.rglob("*"):
                p.chmod(0o755 if p.is_dir() else 0o644)
            shutil.rmtree(self.path)
        shutil.copytree(
            self.source,
            self.path / "tme_lib",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for p in sorted(self.path.rglob("*"), reverse=True):
            p.chmod(0o555 if p.is_dir() else 0o444)

    def _hashes(self) -> dict[str, str]:
        return {
            str(p.relative_to(self.path)): _digest(p)
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }

    def restore(self) -> list[str]:
        """The files changed since the copy (put back as they were); ``[]`` when none."""
        try:
            now = self._hashes()
        except OSError:
            now = {}
        changed = sorted(set(now.items()) ^ set(self.hashes.items()))
        if changed:
            self._copy()
        return sorted({name for name, _ in changed})


_UNPRIVILEGED: list = []  # memo of unprivileged(): [] unknown, [None] none, [(uid, gid)]


def unprivileged() -> tuple[int, int] | None:
    """``(uid, gid)`` of ``nobody`` when this process is root and ``nobody`` can run this
    Python; ``None`` otherwise (submissions then run as the grader's user)."""
    if _UNPRIVILEGED:
        return _UNPRIVILEGED[0]
    found = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam("nobody")
            ids = (entry.pw_uid, entry.pw_gid)
            probe = subprocess.run(
                [sys.executable, "-I", "-c", "import torch"],
                user=ids[0],
                group=ids[1],
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=120,
            )
            found = ids if probe.returncode == 0 else None
        except (KeyError, OSError, subprocess.SubprocessError):
            found = None
    _UNPRIVILEGED.append(found)
    return found


def _give(folder: Path, ids: tuple[int, int]) -> None:
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            os.chown(p, *ids)


def _limits(memory_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_submission(
    folder: dict[str, bytes],
    plan: list[dict],
    library: Library,
    timeout: float,
    memory_gb: float,
) -> dict:
    """Run ``plan`` (filled with the submission's cells) in a folder holding the files of
    ``folder`` (``{relative path: contents}``, read before any submission ran); returns
    ``{"verdicts": [...], "outcome": "finished" | "timeout" | "crashed", "output": tail of
    what it printed, "returncode": ...}``."""
    with tempfile.TemporaryDirectory(prefix="tme-grade-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        for name, data in folder.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(data)
        work.mkdir(exist_ok=True)
        (tmp / "home").mkdir()
        (tmp / "cache").mkdir()
        plan_file = tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))
        ids = unprivileged()
        user = {}
        if ids is not None:
            tmp.chmod(0o755)
            for part in (work, tmp / "home", tmp / "cache"):
                _give(part, ids)
            user = {"user": ids[0], "group": ids[1], "extra_groups": []}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp / "home"),
            "TME_PROFILE": "smoke",
            "TME_CACHE_DIR": str(tmp / "cache"),
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "TQDM_DISABLE": "1",
        }
        read, write = os.pipe()
        log = open(tmp / "output.txt", "w+")
        process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                BOOT,
                str(plan_file),
                str(write),
                str(library.path),
            ],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write,),
            start_new_session=True,
            preexec_fn=_limits(int(memory_gb * 2**30)),
            **user,
        )
        os.close(write)
        lines: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(read, lines), daemon=True)
        reader.start()
        try:
            process.wait(timeout=timeout)
            outcome = "finished" if process.returncode == 0 else "crashed"
        except subprocess.TimeoutExpired:
            outcome = "timeout"
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the submission's every process
            except ProcessLookupError:
                pass
            process.wait()
        reader.join(timeout=5)
        log.seek(0)
        output = log.read()[-3000:]
        log.close()
        for p in [tmp, *tmp.rglob("*")]:  # a submission may have made its files read-only
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
    return {
        "verdicts": _parse(lines),
        "outcome": outcome,
        "output": output,
        "returncode": process.returncode,
    }


def _read_lines(fd: int, into: list[str]) -> None:
    with os.fdopen(fd, "r", errors="replace") as stream:
        for line in stream:
            into.append(line)


def _parse(lines: list[str]) -> list[dict] | None:
    """The verdicts, or ``None`` when the channel holds anything the driver did not write."""
    out = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            return None
        if not isinstance(item, dict) or set(item) != {"exercise", "status", "message"}:
            return None
        out.append(item)
    return out
