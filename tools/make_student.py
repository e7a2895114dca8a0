"""Write the student bundle: every notebook with its solutions replaced by stubs.

    python tools/make_student.py [--out student]

The bundle holds ``notebooks/NN_name.ipynb`` and ``.py`` (paired), and a README that explains
the workflow. The library (``tme_lib``, with its checkers) is installed with ``pip install -e .``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jupytext

from tme_lib.exercises import student_notebook

ROOT = Path(__file__).resolve().parent.parent

README = """# Student notebooks

Each notebook teaches one chapter; the cells tagged `exercise` raise `NotImplementedError` with a
hint until you complete them. Work like this:

1. `make lab` at the root of the repository, then open `student/notebooks/` in JupyterLab's
   file browser (or run `jupyter lab student/notebooks`).
2. Run a notebook top to bottom in the smoke profile first (the default, `TME_PROFILE=smoke`):
   it takes under a minute on a laptop CPU and uses a generated corpus.
3. Complete an exercise, run the cell, then the checker cell below it (`check_...`): it says
   what is still wrong.
4. When every checker passes, switch to the real data: `TME_PROFILE=full jupyter lab`.
"""


def main(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    sources = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    for src in sources:
        nb = student_notebook(jupytext.read(src))
        jupytext.write(nb, out / "notebooks" / f"{src.stem}.ipynb")
        jupytext.write(nb, out / "notebooks" / src.name, fmt="py:percent")
    (out / "README.md").write_text(README)
    print(f"Wrote {len(sources)} student notebooks to {out}/notebooks")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "student")
    main(parser.parse_args().out)
