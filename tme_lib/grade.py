"""Self-check and grading: run a notebook, read what each exercise's checker said.

    python -m tme_lib.grade student/notebooks/01_tme9_global_attention.ipynb
    python -m tme_lib.grade submissions/ --csv grades.csv

A notebook is executed top to bottom in the smoke profile with nbclient (a failing cell does
not stop the run), and each checker cell (a line ``check_<exercise>(...)``) gives one result:

``passed``   the checker printed ✓;
``not yet``  the exercise still raises its ``NotImplementedError`` stub;
``failed``   the checker rejected the answer, or the code raised: its message is kept;
``not run``  the cell produced nothing (the kernel died or timed out before it).

On a folder, every ``*.ipynb`` below it is graded; the first folder level under it names the
student (``submissions/<student>/<notebook>.ipynb``), and ``--csv`` writes one row per student,
notebook and exercise, for a teaching assistant.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import config

CHECK_CALL = re.compile(r"^check_(\w+)\(", flags=re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUSES = ("passed", "not yet", "failed", "not run")


def _result(cell) -> tuple[str, str]:
    outputs = cell.get("outputs", [])
    for out in outputs:
        if out.get("output_type") == "error":
            message = ANSI.sub("", f"{out.get('ename')}: {out.get('evalue')}")
            if out.get("ename") == "ExerciseError" and "not implemented yet" in message:
                return "not yet", message
            return "failed", message
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    if "✓" in text:
        return "passed", text.strip().splitlines()[-1]
    return "not run", ""


def grade_notebook(path: Path, timeout: int = 600) -> list[dict]:
    """Execute ``path`` in the smoke profile; one dict per checker cell: ``exercise``,
    ``status`` and ``message``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # the kernel inherits this process's environment
    with config.profile_set("smoke"):
        client = NotebookClient(
            nb,
            timeout=timeout,
            allow_errors=True,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute()
        except (DeadKernelError, TimeoutError, RuntimeError):
            pass  # the cells that did not run are reported as such
    rows = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for exercise in CHECK_CALL.findall(cell.source):
            status, message = _result(cell)
            rows.append({"exercise": exercise, "status": status, "message": message})
    return rows


def grade(path: Path, timeout: int = 600):
    """A table (pandas DataFrame) of every exercise of the notebook or folder ``path``:
    ``student``, ``notebook``, ``exercise``, ``status``, ``message``."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        notebooks = sorted(
            p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
        )
    elif path.suffix == ".ipynb" and path.exists():
        notebooks = [path]
    else:
        raise FileNotFoundError(f"{path}: no such notebook (.ipynb) or folder.")
    rows = []
    for nb in notebooks:
        student = (
            nb.relative_to(path).parts[0] if path.is_dir() and nb.parent != path else ""
        )
        for row in grade_notebook(nb, timeout):
            rows.append({"student": student, "notebook": nb.stem, **row})
    return pd.DataFrame(
        rows, columns=["student", "notebook", "exercise", "status", "message"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tme_lib.grade", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", type=Path, help="a notebook, or a folder of submissions")
    parser.add_argument("--csv", type=Path, help="write the table there")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    table = grade(args.path, args.timeout)
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"{len(table)} rows in {args.csv}")
    for (student, notebook), rows in table.groupby(["student", "notebook"], sort=False):
        print(f"\n{student + ': ' if student else ''}{notebook}")
        for row in rows.itertuples():
            mark = {"passed": "✓", "not yet": "·", "failed": "✗", "not run": "?"}[
                row.status
            ]
            line = f"  {mark} {row.exercise:32s} {row.status}"
            print(line + (f" — {row.message[:200]}" if row.status != "passed" else ""))
    counts = table["status"].value_counts()
    print("\n" + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    return 0 if (table["status"] == "passed").all() else 1


if __name__ == "__main__":
    sys.exit(main())
