"""The student bundle never loses work, carries no test noise, and the self-check grades it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tme_lib import grade, student
from tme_lib.exercises import EXERCISE_TAG

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "00_data_and_training"
EDIT = "# my own note, kept across regenerations"


def exercise_cell(nb):
    return next(c for c in nb.cells if EXERCISE_TAG in c.metadata.get("tags", []))


def edit(path: Path, solve: bool = False, answer: str | None = None) -> None:
    """A student's work: a note in a cell of their own and, with ``solve``, the exercise
    (``answer``: another answer than the right one)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(EDIT))
    if solve:
        exercise_cell(nb).source = answer or SOLVED_PAD_BATCH
    nbformat.write(nb, path)


SOLVED_PAD_BATCH = """def pad_batch(sequences):
    lengths = torch.tensor([len(s) for s in sequences])
    mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
    x = torch.zeros(mask.shape, dtype=torch.long)
    x[mask] = torch.cat([torch.as_tensor(s) for s in sequences]).long()
    return x, mask"""


def test_regenerating_the_bundle_keeps_a_students_edit(tmp_path, capsys):
    out = tmp_path / "student"
    first = dict(student.write_bundle(out))
    assert set(first.values()) == {"created"}
    path = out / "notebooks" / f"{CHAPTER}.ipynb"
    edit(path)
    again = dict(student.write_bundle(out))
    assert again[path.name].startswith("kept")
    assert EDIT in path.read_text()


def test_update_keeps_the_exercise_cells_and_backs_up_the_old_file(tmp_path):
    out = tmp_path / "student"
    student.write_bundle(out)
    path = out / "notebooks" / f"{CHAPTER}.ipynb"
    edit(path, solve=True)
    done = dict(student.write_bundle(out, update=True))
    backup = Path(re.search(r"old copy: (.*)\)", done[path.name]).group(1))
    assert backup.parent == out / "backups" and EDIT in backup.read_text()
    nb = nbformat.read(path, as_version=4)
    assert exercise_cell(nb).source == SOLVED_PAD_BATCH  # the student's answer survives
    assert nb.cells[1].source == EDIT  # and their own cell, where they put it
    assert "1 exercise cells and 1 cells of your own kept" in done[path.name]
    done = dict(student.write_bundle(out, reset=True))
    assert (
        "NotImplementedError" in exercise_cell(nbformat.read(path, as_version=4)).source
    )
    assert len(list((out / "backups").glob(f"{CHAPTER}-*.ipynb"))) == 2


def test_bundle_has_one_notebook_per_chapter_and_no_test_markers(tmp_path):
    out = tmp_path / "student"
    student.write_bundle(out)
    files = sorted(p.name for p in (out / "notebooks").iterdir())
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.py"))
    assert files == [f"{c}.ipynb" for c in chapters]  # no paired .py: one entry each
    for path in (out / "notebooks").iterdir():
        text = path.read_text()
        assert (
            "NBVAL" not in text and "nbval-" not in text and "BEGIN SOLUTION" not in text
        )
        assert '"formats"' not in text  # not paired with a .py by jupytext
    readme = (out / "README.md").read_text()
    assert "NotImplementedError" in readme and "ExerciseError" in readme
    assert "make check" in readme


def test_make_clean_never_touches_the_student_folder():
    makefile = (ROOT / "Makefile").read_text()
    clean = makefile.split("\nclean:")[1].split("\n\n")[0]
    assert "student" not in clean.split("##")[1].split("\n", 1)[1]


@pytest.mark.slow
def test_self_check_grades_a_solved_and_an_unsolved_notebook(tmp_path):
    subs = tmp_path / "submissions"
    wrong = SOLVED_PAD_BATCH.replace("torch.long", "torch.float").replace(
        ".long()", ".float()"
    )
    for name, solve in (("ada", True), ("bob", False), ("cid", True)):
        student.write_bundle(subs / name)
        for extra in (subs / name).glob("README.md"):
            extra.unlink()
        for other in (subs / name / "notebooks").glob("*.ipynb"):
            if other.stem != CHAPTER:
                other.unlink()
        if solve:
            answer = wrong if name == "cid" else None
            edit(
                subs / name / "notebooks" / f"{CHAPTER}.ipynb", solve=True, answer=answer
            )
    table = grade.grade(subs, timeout=300)
    rows = {(r.student, r.exercise): r for r in table.itertuples()}
    assert rows[("ada", "pad_batch")].status == "passed"
    assert rows[("bob", "pad_batch")].status == "not yet"
    assert "not implemented yet" in rows[("bob", "pad_batch")].message
    assert rows[("cid", "pad_batch")].status == "failed"
    assert "torch.long" in rows[("cid", "pad_batch")].message
    assert set(table["notebook"]) == {CHAPTER}
    csv = tmp_path / "grades.csv"
    assert grade.main([str(subs), "--csv", str(csv)]) == 0  # the table is the result
    assert csv.read_text().count("\n") == 4  # header, ada, bob, cid
    assert grade.main([str(subs), "--strict"]) == 1  # for scripts: bob has not finished


def test_update_keeps_a_solved_cell_with_helpers_and_every_cell_of_the_students(tmp_path):
    out = tmp_path / "student"
    student.write_bundle(out)
    path = out / "notebooks" / f"{CHAPTER}.ipynb"
    nb = nbformat.read(path, as_version=4)
    helper = "def _longest(sequences):\n    return max(len(s) for s in sequences)\n\n"
    exercise_cell(nb).source = helper + SOLVED_PAD_BATCH
    at = nb.cells.index(exercise_cell(nb))
    nb.cells.insert(at + 1, nbformat.v4.new_markdown_cell("My notes on padding."))
    nb.cells.append(nbformat.v4.new_code_cell("print('my experiment')"))
    nbformat.write(nb, path)
    done = dict(student.write_bundle(out, update=True))
    new = nbformat.read(path, as_version=4)
    cell = exercise_cell(new)
    assert cell.source == helper + SOLVED_PAD_BATCH
    following = new.cells[new.cells.index(cell) + 1]
    assert following.source == "My notes on padding."
    assert new.cells[-1].source == "print('my experiment')"
    assert "2 cells of your own kept" in done[path.name]


def test_update_of_a_notebook_without_marks_says_what_it_could_not_keep(tmp_path):
    out = tmp_path / "student"
    student.write_bundle(out)
    path = out / "notebooks" / f"{CHAPTER}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("course_cell", None)
    nbformat.write(nb, path)
    done = dict(student.write_bundle(out, update=True))
    assert (
        "not kept: your other cells" in done[path.name] and "old copy:" in done[path.name]
    )
