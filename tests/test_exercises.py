"""The student-version generator: stubs replace solutions, nothing else changes."""

import nbformat
import pytest

from tme_lib.exercises import (
    exercise_names,
    solution_cells,
    stub_source,
    student_notebook,
)

SOLUTION = '''import torch

def masked_mean(x, mask):
    """Mean over real tokens."""
    # BEGIN SOLUTION
    # HINT: sum x * mask over tokens, divide by the number of real tokens.
    m = mask.unsqueeze(-1).float()
    return (x * m).sum(1) / m.sum(1)
    # END SOLUTION
'''


def test_stub_keeps_the_signature_and_raises_the_hint():
    stub = stub_source(SOLUTION)
    assert "def masked_mean(x, mask):" in stub and '"""Mean over real tokens."""' in stub
    assert "(x * m).sum(1)" not in stub and "BEGIN SOLUTION" not in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="divide by the number of real tokens"):
        namespace["masked_mean"](None, None)


def test_stub_is_indented_like_the_block():
    stub = stub_source(SOLUTION)
    assert "\n    raise NotImplementedError(" in stub


def test_unbalanced_markers_are_reported():
    with pytest.raises(ValueError, match="no '# END SOLUTION'"):
        stub_source("# BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="without"):
        stub_source("x = 1\n# END SOLUTION\n")


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell(
            SOLUTION, metadata={"tags": ["solution", "hide-input"]}
        ),
        nbformat.v4.new_code_cell(
            "print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]
        ),
    ]
    return nb


def test_student_notebook_stubs_solution_cells_and_clears_outputs():
    nb = _notebook()
    student = student_notebook(nb)
    assert "raise NotImplementedError" in student.cells[1].source
    assert student.cells[1].metadata["tags"] == ["exercise"]
    assert student.cells[2].outputs == [] and student.cells[2].source == "print(1)"
    assert nb.cells[1].source == SOLUTION  # the teaching notebook is left alone


def test_student_notebook_asks_colab_for_a_gpu_and_jupyter_for_python():
    student = student_notebook(_notebook())
    assert student.metadata["accelerator"] == "GPU"
    assert student.metadata["colab"]["gpuType"]
    assert student.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(student)


def test_markers_outside_a_solution_cell_are_an_error():
    nb = _notebook()
    nb.cells[1].metadata["tags"] = []
    with pytest.raises(ValueError, match="no 'solution' tag"):
        student_notebook(nb)


def test_solution_cells_and_names():
    cells = solution_cells(_notebook())
    assert len(cells) == 1 and exercise_names(cells[0]) == ["masked_mean"]
