"""What a chapter asks of a student, read from the course's notebooks.

A chapter's grading plan is the list of its code cells in order, each one of:

``code``      a cell of the course (the student version: imports, data, demonstrations);
``exercise``  the place of an exercise: the names it must define and the stub of the course;
``check``     a checker call of the course, ``check_<x>(<arguments>)``: the checker's module
              and name, and the source of each argument.

The submission only supplies the exercise cells, matched by the names they define (a cell that
defines at least the exercise's names; the last such cell wins, as in a notebook run top to
bottom). Its other cells, its checker cells and anything it prints are never used.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ..exercises import SOLUTION_TAG, exercise_names, student_notebook

CHECKERS_PACKAGE = "tme_lib.checkers"


def course_notebooks(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the chapter sources (``notebooks/<nn>_*.py``) of the course."""
    return {p.stem: p for p in sorted(Path(folder).glob("[0-9]*.py"))}


def checker_modules(source: str) -> dict[str, str]:
    """``{checker name: module}`` for every ``from tme_lib.checkers.<m> import ...`` of a
    notebook's source."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            CHECKERS_PACKAGE
        ):
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
    return found


def _check_call(node: ast.stmt) -> str | None:
    """The checker's name when ``node`` is a statement ``check_<x>(...)``, else ``None``."""
    if (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id.startswith("check_")
    ):
        return node.value.func.id
    return None


def split_checks(source: str) -> list[tuple[str, object]]:
    """A cell cut at its top-level checker calls: ``("code", source)`` for the statements
    between them, ``("check", (name, [argument sources]))`` for each call, in order."""
    lines = source.splitlines()
    parts: list[tuple[str, object]] = []
    start = 0  # first line (0-based) not yet given to a part
    for node in ast.parse(source).body:
        name = _check_call(node)
        if name is None:
            continue
        before = "\n".join(lines[start : node.lineno - 1])
        if before.strip():
            parts.append(("code", before))
        args = [ast.get_source_segment(source, a) for a in node.value.args]
        parts.append(("check", (name, args)))
        start = node.end_lineno
    rest = "\n".join(lines[start:])
    if rest.strip():
        parts.append(("code", rest))
    return parts


def plan(path: Path) -> list[dict]:
    """The grading plan of the chapter whose source is ``path`` (see the module docstring)."""
    import jupytext

    teaching = jupytext.read(path)
    imports = checker_modules(
        "\n".join(c.source for c in teaching.cells if c.cell_type == "code")
    )
    stubs = student_notebook(teaching)
    steps: list[dict] = []
    for cell, stub in zip(teaching.cells, stubs.cells):
        if cell.cell_type != "code":
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            names = exercise_names(cell.source)
            steps.append({"kind": "exercise", "names": names, "stub": stub.source})
            continue
        for kind, part in split_checks(stub.source):
            if kind == "code":
                steps.append({"kind": "code", "source": part})
                continue
            name, args = part
            if name not in imports:
                raise ValueError(
                    f"{path.name}: {name} is not imported from tme_lib.checkers"
                )
            steps.append(
                {
                    "kind": "check",
                    "exercise": name.removeprefix("check_"),
                    "checker": [imports[name], name],
                    "args": args,
                    "needs": _needed(steps, args),
                }
            )
    return steps


def _needed(steps: list[dict], args: list[str]) -> list[str]:
    """The exercise names a checker's arguments refer to."""
    used = {
        n.id
        for a in args
        for n in ast.walk(ast.parse(a, mode="eval"))
        if isinstance(n, ast.Name)
    }
    names = [n for s in steps if s["kind"] == "exercise" for n in s["names"]]
    return [n for n in names if n in used]


def exercise_cells(nb) -> dict[tuple[str, ...], str]:
    """The submission's answer to each exercise: for every code cell, the names it defines;
    :func:`answer` picks the cell of an exercise."""
    return {
        tuple(exercise_names(c.source)): c.source
        for c in nb.cells
        if c.cell_type == "code" and exercise_names(c.source)
    }


def answer(nb, names: list[str]) -> str | None:
    """The source of the last code cell of ``nb`` that defines every name of ``names`` (and
    maybe helpers of its own), or ``None`` when there is none."""
    found = None
    for cell in nb.cells:
        if cell.cell_type == "code" and set(names) <= set(exercise_names(cell.source)):
            found = cell.source
    return found


def fill(steps: list[dict], nb) -> list[dict]:
    """``steps`` with each exercise's ``source`` taken from the submission ``nb`` (``None``:
    not submitted)."""
    out = []
    for step in steps:
        if step["kind"] == "exercise":
            step = {**step, "source": answer(nb, step["names"])}
        out.append(step)
    return out
