"""Student versions of the notebooks, generated from the solutions.

A solution is written once, in the teaching notebook, inside a cell tagged ``solution``::

    # %% tags=["solution"]
    def masked_mean(x, mask):
        # BEGIN SOLUTION
        # HINT: multiply by the mask, sum over tokens, divide by the number of real tokens.
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1)
        # END SOLUTION

The student version keeps everything outside the markers and replaces each marked block by
``raise NotImplementedError(<hint>)`` at the block's indentation. Outputs are cleared.
"""

from __future__ import annotations

import re

from .plain_markdown import plain

BEGIN, END, HINT = "# BEGIN SOLUTION", "# END SOLUTION", "# HINT:"
SOLUTION_TAG, EXERCISE_TAG = "solution", "exercise"
TEST_MARKER = "# NBVAL_"  # comments for the notebook tests; students never see them
# cell tags for the notebook tests (nbval), left out of student notebooks
TEST_TAG = "nbval-"
_DEFAULT_HINT = "complete this exercise, then run the checker below"


def stub_source(source: str) -> str:
    """Replace every ``BEGIN/END SOLUTION`` block of ``source`` by a ``NotImplementedError``
    stub."""
    lines, out, i = source.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != BEGIN:
            if line.strip() == END:
                raise ValueError(f"'{END}' without '{BEGIN}' at line {i + 1}")
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        try:
            stop = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == END)
        except StopIteration:
            raise ValueError(f"'{BEGIN}' at line {i + 1} has no '{END}'") from None
        hints = [
            lines[j].strip()[len(HINT) :].strip()
            for j in range(i + 1, stop)
            if lines[j].strip().startswith(HINT)
        ]
        hint = " ".join(hints) or _DEFAULT_HINT
        out.append(f"{indent}raise NotImplementedError({hint!r})")
        i = stop + 1
    return "\n".join(out)


# What Colab reads to open a notebook on a GPU runtime (as it writes it when a notebook is
# saved with a GPU), and the kernel Jupyter starts.
COLAB_GPU = {"accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4"}}
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
# Cell metadata that marks a cell of the course in a student notebook: `make student
# ARGS=--update` tells the student's own cells (which lack it) from the course's.
COURSE_CELL = "course_cell"


def student_notebook(nb):
    """A copy of a notebook (nbformat node) with solution cells stubbed, outputs cleared,
    test markers (``# NBVAL_...``) removed, Markdown without MyST syntax
    (:func:`tme_lib.plain_markdown.plain`), and no pairing with a ``.py`` file."""
    import copy

    nb = copy.deepcopy(nb)
    nb.metadata.get("jupytext", {}).pop("formats", None)
    nb.metadata.update(COLAB_GPU)
    nb.metadata.setdefault("kernelspec", dict(KERNEL))
    for cell in nb.cells:
        cell.metadata[COURSE_CELL] = True  # the student's own cells have no such mark
        if cell.cell_type == "markdown":  # as Jupyter and Colab show it: no MyST syntax
            cell.source = plain(cell.source)
        if cell.cell_type != "code":
            continue
        cell.source = "\n".join(
            line for line in cell.source.splitlines() if not line.startswith(TEST_MARKER)
        )
        cell.outputs, cell.execution_count = [], None
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith(TEST_TAG)]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
        if SOLUTION_TAG in tags:
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [
                t for t in tags if t not in (SOLUTION_TAG, "hide-input")
            ] + [EXERCISE_TAG]
        elif BEGIN in cell.source:
            raise ValueError(
                f"a cell has '{BEGIN}' but no '{SOLUTION_TAG}' tag:\n{cell.source[:200]}"
            )
    return nb


def solution_cells(nb) -> list[str]:
    """Sources of the solution cells of a notebook, in order (the tests run them)."""
    return [c.source for c in nb.cells if SOLUTION_TAG in c.metadata.get("tags", [])]


def exercise_names(source: str) -> list[str]:
    """Names of the functions and classes a solution cell defines."""
    return re.findall(r"^(?:def|class)\s+(\w+)", source, flags=re.M)
