"""Fail when a notebook's ``py:percent`` source and its ``.ipynb`` disagree.

The ``.py`` is what maintainers edit and review; the ``.ipynb`` carries the full-profile outputs
that the book shows. Their cells (type, source, tags) must be the same. Fix with
``jupytext --sync notebooks/<name>.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent


def cells(nb) -> list[tuple]:
    return [
        (c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])))
        for c in nb.cells
    ]


def out_of_sync(folder: Path) -> list[str]:
    problems = []
    sources = {p.stem for p in folder.glob("*.py")}
    notebooks = {p.stem for p in folder.glob("*.ipynb")}
    for stem in sorted(sources ^ notebooks):
        problems.append(f"{stem}: only one of .py / .ipynb exists")
    for stem in sorted(sources & notebooks):
        py, ipynb = (
            jupytext.read(folder / f"{stem}.py"),
            jupytext.read(folder / f"{stem}.ipynb"),
        )
        a, b = cells(py), cells(ipynb)
        if a != b:
            first = next(
                (i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))
            )
            problems.append(
                f"{stem}: cell {first + 1} differs ({len(a)} cells in .py, {len(b)} in .ipynb)"
            )
    return problems


if __name__ == "__main__":
    problems = out_of_sync(ROOT / "notebooks")
    for p in problems:
        print(
            f"out of sync: {p}  ->  run: jupytext --sync notebooks/<name>.py",
            file=sys.stderr,
        )
    sys.exit(1 if problems else 0)
