"""Self-check and grading: each exercise of a notebook checked by the course's own checkers.

    python -m tme_lib.grade student/notebooks/01_tme9_global_attention.ipynb
    python -m tme_lib.grade submissions/ --csv grades.csv

The exercises and their checkers come from the course's notebooks (``notebooks/`` of the
clone, or ``--course``), never from the submission: the grader rebuilds each chapter from the
course's cells, puts in the submission's exercise cells (matched by the names they define),
and calls the course's checkers itself, in a separate process (:mod:`tme_lib.grading`). A
"✓" printed by the notebook counts for nothing. One row per exercise:

``passed``         the course's checker accepted the answer;
``not yet``        the exercise still raises its ``NotImplementedError`` stub;
``failed``         the checker rejected the answer, the exercise's cell raised, or the
                   submission changed the library or PyTorch: the message says which;
``not submitted``  no cell of the notebook defines the exercise's names;
``not run``        the notebook ran past its time limit or crashed before the check;
``unreadable``     the file is not a notebook (empty, not JSON, missing): one row, no grade;
``unknown``        the notebook matches no chapter of the course.

On a folder, every ``*.ipynb`` below it is graded, each in its own process; the first folder
level under it names the student (``submissions/<student>/<notebook>.ipynb``). ``--csv``
writes one row per student, notebook and exercise (atomically, once every notebook is graded;
a cell that a spreadsheet would read as a formula is quoted). The exit status is 0 once the
table is printed; ``--strict`` makes it 1 unless every exercise passed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

from . import config

STATUSES = (
    "passed",
    "not yet",
    "failed",
    "not submitted",
    "not run",
    "unreadable",
    "unknown",
)
MARKS = dict(zip(STATUSES, "✓·✗-?!?"))
COLUMNS = ["student", "notebook", "exercise", "status", "message", "seconds"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def course_folder(course: Path | None = None) -> Path:
    folder = Path(course) if course else config.REPO_ROOT / "notebooks"
    if not any(folder.glob("[0-9]*.py")):
        raise FileNotFoundError(
            f"{folder} holds no chapter of the course (notebooks/<nn>_<name>.py): run the "
            "grader from a clone of the course's repository, or name its notebooks folder "
            "with --course."
        )
    return folder


def notebooks_in(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*.ipynb")
            if ".ipynb_checkpoints" not in p.parts and "backups" not in p.parts
        )
    if path.suffix == ".ipynb":
        return [path]
    raise FileNotFoundError(f"{path}: no such notebook (.ipynb) or folder.")


class Grader:
    """Grades notebooks one by one against the course's chapters, each in a sandbox."""

    def __init__(self, course: Path | None, timeout: float, memory_gb: float, root: Path):
        from .grading import course as course_plans
        from .grading.sandbox import Library

        self.sources = course_plans.course_notebooks(course_folder(course))
        self.plans = {
            stem: course_plans.plan(path) for stem, path in self.sources.items()
        }
        self.timeout, self.memory_gb = timeout, memory_gb
        self.library = Library(root)
        self.previous: str | None = None

    def chapter_of(self, nb) -> str | None:
        """The course chapter a submission is: by file name, else by the exercises it
        defines (the most names in common)."""
        from .grading.course import answer

        best, found = None, 0
        for stem, steps in self.plans.items():
            names = [s["names"] for s in steps if s["kind"] == "exercise"]
            n = sum(answer(nb, ns) is not None for ns in names)
            if n > found:
                best, found = stem, n
        return best

    def check_library(self) -> list[dict]:
        """A row against the previous submission when it changed the library's copy on disk
        (put back now, before the next one runs)."""
        changed = self.library.restore()
        if not changed or self.previous is None:
            return []
        message = (
            "this submission changed the course's library on disk "
            f"({', '.join(changed[:3])}): graded as failed; the library was put back"
        )
        return [
            {
                **_row(self.previous.stem, "*", "failed", message, time.perf_counter()),
                "path": self.previous,
            }
        ]

    def grade(self, path: Path, folder: dict[str, bytes] | None = None) -> list[dict]:
        """Rows for the notebook at ``path`` (each with its ``path``), after a row against the
        previous submission if it changed the library. ``folder``: the files of its folder
        as read before any submission ran (default: read now)."""
        import nbformat

        from .grading.course import fill
        from .grading.sandbox import read_folder

        start = time.perf_counter()
        rows = self.check_library()
        self.previous = path
        try:
            folder = read_folder(path) if folder is None else folder
            nb = nbformat.reads(folder[path.name].decode("utf-8"), as_version=4)
        except Exception as error:  # not a notebook: one row, never a crash
            message = _unreadable((folder or {}).get(path.name), error)
            row = _row(path.stem, "*", "unreadable", message, start)
            return rows + [{**row, "path": path}]
        stem = path.stem if path.stem in self.plans else self.chapter_of(nb)
        if stem is None:
            message = (
                f"no chapter of the course is named {path.stem} or has its exercises"
            )
            return rows + [
                {**_row(path.stem, "*", "unknown", message, start), "path": path}
            ]
        plan = fill(self.plans[stem], nb)
        from .grading.sandbox import run_submission

        result = run_submission(folder, plan, self.library, self.timeout, self.memory_gb)
        checks = [s for s in plan if s["kind"] == "check"]
        return rows + [
            {**r, "path": path} for r in _rows(stem, checks, result, self, start)
        ]


def _unreadable(data: bytes | None, error: Exception) -> str:
    if data is None:
        return "the file disappeared before it could be read"
    if not data.strip():
        return "the file is empty"
    return f"not a notebook ({type(error).__name__}: {str(error)[:200]})"


def _row(notebook, exercise, status, message, start) -> dict:
    return {
        "notebook": notebook,
        "exercise": exercise,
        "status": status,
        "message": message,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _rows(stem, checks, result, grader, start) -> list[dict]:
    verdicts = result["verdicts"]
    expected = [s["exercise"] for s in checks]
    if (
        verdicts is not None
        and [v["exercise"] for v in verdicts] != expected[: len(verdicts)]
    ):
        verdicts = None
    if verdicts is None:
        message = "the submission wrote to the grader's channel: graded as failed"
        return [_row(stem, e, "failed", message, start) for e in expected]
    rows = [_row(stem, v["exercise"], v["status"], v["message"], start) for v in verdicts]
    if result["outcome"] == "timeout":
        why = f"the notebook ran past the time limit ({grader.timeout:.0f} s)"
    elif "MemoryError" in result["output"] or "can't allocate memory" in result["output"]:
        why = f"the notebook ran out of memory (limit {grader.memory_gb:g} GB)"
    else:
        why = f"the notebook stopped (exit status {result['returncode']})"
    rows += [_row(stem, e, "not run", why, start) for e in expected[len(verdicts) :]]
    return rows


def grade(
    path: Path, timeout: float = 600, memory_gb: float = 4, course: Path | None = None
):
    """A table (pandas DataFrame) of every exercise of the notebook or folder ``path``,
    with the columns :data:`COLUMNS`."""
    import pandas as pd

    from .grading.sandbox import read_folder

    path = Path(path)
    notebooks = notebooks_in(path)
    # every submission is read before any runs: what one does to another's files on disk
    # cannot change that one's grade
    folders = {}
    for nb in notebooks:
        try:
            alone = path.is_dir() and nb.parent == path  # no folder of its own
            folders[nb] = {nb.name: nb.read_bytes()} if alone else read_folder(nb)
        except OSError:
            folders[nb] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tme-grader-") as tmp:
        grader = Grader(course, timeout, memory_gb, Path(tmp))
        for nb in notebooks:
            rows += grader.grade(nb, folders[nb])
        rows += grader.check_library()
    for row in rows:
        nb = row.pop("path")
        row["student"] = (
            nb.relative_to(path).parts[0] if path.is_dir() and nb.parent != path else ""
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab or
    carriage return is quoted with ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(table, path: Path) -> None:
    """``table`` to ``path``, every cell made safe, written to a temporary file first."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in table[COLUMNS].itertuples(index=False):
            writer.writerow([safe_cell(v) for v in row])
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tme_lib.grade", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", type=Path, help="a notebook, or a folder of submissions")
    parser.add_argument("--csv", type=Path, help="write the table there")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per notebook (default 600)"
    )
    parser.add_argument(
        "--memory-gb", type=float, default=4, help="memory per notebook (default 4 GB)"
    )
    parser.add_argument("--course", type=Path, help="the course's notebooks/ folder")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 unless every exercise passed"
    )
    args = parser.parse_args(argv)
    try:
        table = grade(args.path, args.timeout, args.memory_gb, args.course)
    except FileNotFoundError as error:
        print(error)
        return 2
    if args.csv:
        write_csv(table, args.csv)
        print(f"{len(table)} rows in {args.csv}")
    for (student, notebook), rows in table.groupby(["student", "notebook"], sort=False):
        print(f"\n{student + ': ' if student else ''}{notebook}")
        for row in rows.itertuples():
            line = f"  {MARKS[row.status]} {row.exercise:32s} {row.status}"
            print(line + (f" — {row.message[:200]}" if row.status != "passed" else ""))
    counts = table["status"].value_counts()
    print(
        "\n" + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES if counts.get(s, 0))
    )
    return 1 if args.strict and not (table["status"] == "passed").all() else 0


if __name__ == "__main__":
    sys.exit(main())
