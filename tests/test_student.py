"""Every exercise of every notebook, as a student meets it.

For each cell tagged ``solution``: the student version raises its hint, its checker rejects the
stub, and the checker accepts the solution once it is pasted back. Checker calls are read from
the code cell that follows the exercise (``check_<name>(...)`` and its import).
"""

import re
from pathlib import Path

import jupytext
import pytest

from tme_lib.checkers import ExerciseError
from tme_lib.exercises import SOLUTION_TAG, stub_source

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def _exercises():
    for path in NOTEBOOKS:
        cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
        # the imports cell (the first cell installs tme_lib where it is missing)
        setup = next(c.source for c in cells if "from tme_lib" in c.source)
        for i, cell in enumerate(cells):
            if SOLUTION_TAG not in cell.metadata.get("tags", []):
                continue
            follow = "\n".join(c.source for c in cells[i + 1 : i + 3])
            imports = re.findall(
                r"^from tme_lib\.checkers[\w.]* import .*$", follow, flags=re.M
            )
            calls = re.findall(r"^(check_\w+\(.*\))$", follow, flags=re.M)
            yield pytest.param(
                setup, cell.source, "\n".join(imports), calls, id=f"{path.stem}-cell{i}"
            )


EXERCISES = list(_exercises())


def test_every_notebook_has_exercises():
    names = {p.id.split("-cell")[0] for p in EXERCISES}
    assert names == {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("setup, solution, imports, calls", EXERCISES)
def test_stub_is_rejected_and_solution_accepted(setup, solution, imports, calls):
    assert calls, (
        "the cell after an exercise must call its checker: check_<name>(<function>)"
    )
    student = {}
    exec(setup, student)
    exec(stub_source(solution), student)
    exec(imports, student)
    for call in calls:
        with pytest.raises(ExerciseError, match="not implemented"):
            exec(call, student)
    exec(solution, student)
    for call in calls:
        exec(call, student)


def test_solutions_are_hidden_in_the_book():
    """The book shows each exercise's solution behind a toggle (``hide-input``), never in plain
    sight next to the exercise it answers."""
    for path in NOTEBOOKS:
        for cell in jupytext.read(path).cells:
            tags = cell.metadata.get("tags", [])
            if SOLUTION_TAG in tags:
                assert "hide-input" in tags, (
                    f"{path.name}: a solution cell lacks 'hide-input'"
                )
