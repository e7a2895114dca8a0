"""The student bundle: every chapter with its solutions replaced by stubs, never overwriting a
student's work.

    python -m tme_lib.student [--out student] [--update | --reset]

Without a flag, only the notebooks that do not exist yet are written; an existing one is left
as it is. ``--update`` brings an existing notebook up to date with the course (new text, fixed
cells) and keeps every exercise cell the student wrote (matched by the names it defines);
``--reset`` starts a notebook again from the stubs. Both first move the old file to
``<out>/backups/<name>-<date>.ipynb`` and say where. The bundle holds one ``.ipynb`` per
chapter (no paired ``.py``, so JupyterLab lists each chapter once) and a README.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import time
from pathlib import Path

import jupytext
import nbformat

from .exercises import COURSE_CELL, EXERCISE_TAG, exercise_names, student_notebook

ROOT = Path(__file__).resolve().parent.parent

README = """# Student notebooks

One notebook per chapter, in `notebooks/`. Each exercise is a code cell that raises
`NotImplementedError` with a hint until you complete it; the cell below it runs a checker
(`check_...(your_function)`), which prints ✓ when your answer is right and otherwise stops with
an `ExerciseError` that says what is still wrong.

1. `make lab` at the root of the repository opens JupyterLab; open `student/notebooks/` there.
2. Run a notebook top to bottom in the smoke profile (the default, `TME_PROFILE=smoke`): under
   a minute on a laptop CPU, on a generated corpus.
3. Complete an exercise, run its cell, then the checker cell below it.
4. `make check NB=student/notebooks/<notebook>.ipynb` runs the whole notebook and prints, for
   every exercise, passed / not yet / failed with the checker's message.
5. When every checker passes, switch to the real data: `TME_PROFILE=full make lab`.

Your notebooks are yours: `make student` never overwrites them. `make student ARGS=--update`
brings them up to date with the course and keeps your exercise cells; `make student
ARGS=--reset` starts again from the stubs. Both keep a copy of the old file in
`student/backups/` and say where.
"""


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _backup(path: Path, out: Path) -> Path:
    folder = out / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    n = 1
    while target.exists():
        target = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{n}{path.suffix}"
        n += 1
    shutil.move(path, target)
    return target


def _defines(cell, names) -> bool:
    return cell.cell_type == "code" and set(names) <= set(exercise_names(cell.source))


def merge(fresh, old):
    """``(notebook, report)``: ``fresh`` (the course's new student version) with the student's
    work of ``old`` put back. Each exercise stub takes the last cell of ``old`` that defines
    its functions and classes (helpers of the student's own allowed). Each cell the student
    added (no :data:`~tme_lib.exercises.COURSE_CELL` mark) goes back after the course cell it
    followed (after the last one still in the course, when that one changed). ``report`` says
    what was kept and what could not be."""
    fresh = copy.deepcopy(fresh)
    report = {"exercises": [], "own": 0, "lost": []}
    where = {}  # index of an old answer cell -> index of its stub in fresh
    for j, cell in enumerate(fresh.cells):
        if cell.cell_type == "code" and EXERCISE_TAG in cell.metadata.get("tags", []):
            names = exercise_names(cell.source)
            found = [i for i, c in enumerate(old.cells) if _defines(c, names)]
            if found:
                cell.source = old.cells[found[-1]].source
                where[found[-1]] = j
                report["exercises"].append(", ".join(names))
    if not any(c.metadata.get(COURSE_CELL) for c in old.cells):
        # written before the marks: the student's own cells cannot be told from the course's
        report["lost"].append("your other cells (this notebook predates the cell marks)")
        return fresh, report
    position = {c.source: j for j, c in enumerate(fresh.cells)}
    after: dict[int, list] = {}  # index in fresh -> the student's cells to put after it
    anchor = -1
    for i, cell in enumerate(old.cells):
        if i in where:
            anchor = where[i]
        elif cell.metadata.get(COURSE_CELL):
            anchor = position.get(cell.source, anchor)
        else:
            after.setdefault(anchor, []).append(cell)
            report["own"] += 1
    cells = list(after.get(-1, []))
    for j, cell in enumerate(fresh.cells):
        cells += [cell, *after.get(j, [])]
    fresh.cells = cells
    return fresh, report


def describe_merge(report: dict) -> str:
    kept = f"{len(report['exercises'])} exercise cells"
    if report["own"]:
        kept += f" and {report['own']} cells of your own"
    lost = f"; not kept: {', '.join(report['lost'])}" if report["lost"] else ""
    return f"updated, {kept} kept{lost}"


def write_bundle(
    out: Path,
    update: bool = False,
    reset: bool = False,
    sources: list[Path] | None = None,
) -> list[tuple[str, str]]:
    """Write the bundle into ``out``; returns ``(notebook, what happened)`` for each chapter."""
    if update and reset:
        raise ValueError("choose --update or --reset, not both")
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    done = []
    for src in sources or sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        target = out / "notebooks" / f"{src.stem}.ipynb"
        fresh = student_notebook(jupytext.read(src))
        if not target.exists():
            action = "created"
        elif not (update or reset):
            done.append((target.name, "kept: yours, unchanged"))
            continue
        else:
            old = nbformat.read(target, as_version=4)
            backup = _backup(target, out)
            if update:
                fresh, report = merge(fresh, old)
                action = f"{describe_merge(report)} (old copy: {_shown(backup)})"
            else:
                action = f"reset to the stubs (old copy: {_shown(backup)})"
        nbformat.write(fresh, target)
        done.append((target.name, action))
    (out / "README.md").write_text(README, encoding="utf-8")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tme_lib.student", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "student")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--update",
        action="store_true",
        help="update existing notebooks, keeping your exercise cells",
    )
    group.add_argument(
        "--reset",
        action="store_true",
        help="start existing notebooks again from the stubs",
    )
    args = parser.parse_args(argv)
    for name, action in write_bundle(args.out, args.update, args.reset):
        print(f"{name}: {action}")
    print(f"Student notebooks in {args.out / 'notebooks'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
