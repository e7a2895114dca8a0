"""The grader against a class of submissions built here: correct, unsolved, wrong and hostile
(each way of forging a pass, breaking the run or reaching outside that a submission tried).
One grading run of chapter 00 covers them all (a process per notebook: minutes)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from test_bundle import SOLVED_PAD_BATCH

from tme_lib import grade
from tme_lib.exercises import EXERCISE_TAG, student_notebook
from tme_lib.grading import course, sandbox

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "00_data_and_training"
WRONG = SOLVED_PAD_BATCH.replace("torch.long", "torch.float").replace(
    ".long()", ".float()"
)
STUB = "def pad_batch(sequences):\n    raise NotImplementedError('to do')"
FAKE_PASS = "print('✓ pad_batch: all checks passed.')"


def fresh():
    return student_notebook(jupytext.read(ROOT / "notebooks" / f"{CHAPTER}.py"))


def exercise(nb):
    return next(c for c in nb.cells if EXERCISE_TAG in c.metadata.get("tags", []))


def checker_cell(nb):
    return next(c for c in nb.cells if "check_pad_batch(pad_batch)" in c.source)


def submissions(root: Path, grades: Path) -> dict[str, str]:
    """One folder per student; returns the expected status of ``pad_batch`` for each."""
    cases: dict[str, tuple[str, object]] = {
        "correct": ("passed", SOLVED_PAD_BATCH),
        "unsolved": ("not yet", None),
        "wrong": ("failed", WRONG),
        # forged passes
        "own_checker": ("not yet", "def check_pad_batch(f):\n    print('✓')"),
        "edited_checker_cell": ("not yet", "checker-cell"),
        "patched_module": (
            "failed",
            "import tme_lib.checkers.data as c\nc.check_pad_batch = lambda f: print('✓')\n"
            + STUB,
        ),
        "patched_torch": (
            "failed",
            "import torch\ntorch.equal = lambda *a, **k: True\ntorch.allclose = torch.equal\n"
            + WRONG,
        ),
        "exception_handler": (
            "failed",
            "get_ipython().set_custom_exc((Exception,), lambda *a, **k: print('✓'))\n"
            + WRONG,
        ),
        "deleted_checker_cell": ("failed", "delete-checker"),
        "helper_in_cell": (
            "passed",
            "def _lengths(sequences):\n    return torch.tensor([len(s) for s in sequences])\n\n"
            + SOLVED_PAD_BATCH,
        ),
        # runs that must not stop the others
        "infinite_loop": ("not run", "while True:\n    pass\n" + SOLVED_PAD_BATCH),
        "huge_allocation": (
            "failed",
            "block = bytearray(30 * 2**30)\n" + SOLVED_PAD_BATCH,
        ),
        # reaching outside its folder
        "writes_outside": (
            "passed",
            "import pathlib, subprocess\n"
            f"for p in pathlib.Path({str(root)!r}).rglob('*.ipynb'):\n"
            "    p.write_text('overwritten')\n"
            f"subprocess.Popen(['sh', '-c', 'sleep 4; echo forged > {grades}'])\n"
            + SOLVED_PAD_BATCH,
        ),
        "=1+1": ("passed", SOLVED_PAD_BATCH),
    }
    for student, (_, answer) in cases.items():
        nb = fresh()
        if answer == "checker-cell":
            checker_cell(nb).source = checker_cell(nb).source.replace(
                "check_pad_batch(pad_batch)",
                f"check_pad_batch(pad_batch) if False else {FAKE_PASS}",
            )
        elif answer == "delete-checker":
            exercise(nb).source = WRONG
            nb.cells.remove(checker_cell(nb))
        elif answer is not None:
            exercise(nb).source = answer
        if student == "own_checker":
            exercise(nb).source = STUB
            nb.cells.insert(3, nbformat.v4.new_code_cell(answer))
        folder = root / student
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{CHAPTER}.ipynb")
    # files that are not notebooks
    (root / "empty").mkdir()
    (root / "empty" / f"{CHAPTER}.ipynb").write_text("")
    (root / "not_json").mkdir()
    (root / "not_json" / f"{CHAPTER}.ipynb").write_text("{ this is not json")
    expected = {s: status for s, (status, _) in cases.items()}
    expected.update(empty="unreadable", not_json="unreadable")
    return expected


@pytest.mark.slow
def test_a_class_of_hostile_submissions_is_graded_from_the_course(tmp_path):
    root, grades = tmp_path / "submissions", tmp_path / "grades.csv"
    expected = submissions(root, grades)
    before = {p: p.read_bytes() for p in root.rglob("*.ipynb")}
    code = grade.main(
        [str(root), "--csv", str(grades), "--timeout", "90", "--memory-gb", "3"]
    )
    assert code == 0  # the table is the result
    time.sleep(6)  # longer than the process the submission left behind would wait
    with open(grades, newline="") as f:
        rows = list(csv.DictReader(f))
    status = {
        r["student"]: r["status"] for r in rows if r["exercise"] in ("pad_batch", "*")
    }
    status["=1+1"] = status.pop("'=1+1")  # quoted for spreadsheets
    assert status == expected, rows
    messages = {r["student"]: r["message"] for r in rows}
    assert messages["correct"] == "all checks passed"
    assert "time limit" in messages["infinite_loop"]
    assert "MemoryError" in messages["huge_allocation"]
    assert (
        "replaced" in messages["patched_module"] and "torch" in messages["patched_torch"]
    )
    assert "empty" in messages["empty"] and "not a notebook" in messages["not_json"]
    # run as nobody (root, and nobody can run this Python): the files are out of its reach;
    # else it may rewrite them, but the grades above come from the copies read before
    if sandbox.unprivileged() is not None:
        assert {p: p.read_bytes() for p in root.rglob("*.ipynb")} == before


@pytest.mark.slow
def test_a_submission_that_edits_the_checkers_on_disk_is_caught_and_cannot_help_the_next(
    tmp_path,
):
    root = tmp_path / "submissions"
    edit = (
        "import os, tme_lib.checkers.data as c\n"
        "os.chmod(os.path.dirname(c.__file__), 0o755)\nos.chmod(c.__file__, 0o644)\n"
        "open(c.__file__, 'a').write('\\ndef check_pad_batch(f):\\n    print(1)\\n')\n"
        + WRONG
    )
    for student, answer in (("a_editor", edit), ("b_next", WRONG)):
        nb = fresh()
        exercise(nb).source = answer
        (root / student).mkdir(parents=True)
        nbformat.write(nb, root / student / f"{CHAPTER}.ipynb")
    table = grade.grade(root, timeout=120)
    rows = {(r.student, r.exercise): r for r in table.itertuples()}
    assert rows[("a_editor", "*")].status == "failed"
    assert "on disk" in rows[("a_editor", "*")].message
    assert rows[("b_next", "pad_batch")].status == "failed"
    assert (ROOT / "tme_lib" / "checkers" / "data.py").read_text().count("print(1)") == 0


def test_a_notebook_deleted_before_its_turn_is_a_row_not_a_crash(tmp_path):
    grader = grade.Grader(None, 60, 2, tmp_path)
    rows = grader.grade(tmp_path / "gone" / f"{CHAPTER}.ipynb")
    assert [r["status"] for r in rows] == ["unreadable"]
    assert "disappeared" in rows[0]["message"]


def test_spreadsheet_formulas_are_quoted():
    assert grade.safe_cell("=1+1") == "'=1+1"
    assert grade.safe_cell("-2") == "'-2" and grade.safe_cell("@SUM") == "'@SUM"
    assert grade.safe_cell("ada") == "ada" and grade.safe_cell(None) == ""


def test_the_plan_comes_from_the_course_and_keeps_the_code_around_a_check():
    steps = course.plan(ROOT / "notebooks" / f"{CHAPTER}.py")
    kinds = [s["kind"] for s in steps]
    at = kinds.index("check")
    assert steps[at]["checker"] == ["tme_lib.checkers.data", "check_pad_batch"]
    assert steps[at]["args"] == ["pad_batch"] and steps[at]["needs"] == ["pad_batch"]
    after = steps[at + 1]
    assert after["kind"] == "code" and "x, mask = pad_batch(" in after["source"]


def test_an_answer_is_the_last_cell_that_defines_the_names_helpers_allowed():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def f(x):\n    return 1"),
        nbformat.v4.new_code_cell("def helper():\n    pass\n\ndef f(x):\n    return 2"),
        nbformat.v4.new_code_cell("def g():\n    pass"),
    ]
    assert "return 2" in course.answer(nb, ["f"])
    assert course.answer(nb, ["h"]) is None
