"""Execute the chapters' notebooks in one profile, and record how long each took.

    python tools/execute_notebooks.py --profile smoke           # a student's first run
    python tools/execute_notebooks.py --profile full --inplace  # the book's outputs (make full)

``smoke`` runs each notebook in a fresh, empty cache folder (so the time includes generating the
small data sets and training the tiny models, as on a student's first run) and discards the
outputs. ``full`` runs them in the normal cache, loading the committed run records, and with
``--inplace`` writes the outputs back into ``notebooks/*.ipynb`` for the book. Either way the
wall time of each notebook goes to ``results/notebook_times.csv`` (one row per notebook and
profile, replaced on each run), which the intro page's cost table is generated from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tme_lib import prose  # noqa: E402

TIMES = ROOT / "results" / "notebook_times.csv"
COLUMNS = ["notebook", "profile", "seconds", "device", "code_version", "date"]


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def execute(path: Path, profile: str, inplace: bool, timeout: int) -> float:
    """Run ``path`` top to bottom with ``TME_PROFILE=profile``; returns the wall time (s).
    With ``inplace``, the outputs go back into ``path`` and the numbers its cells put
    (:mod:`tme_lib.prose`) into its prose, there and in its paired ``.py`` source."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cache:
        values = Path(cache) / "prose-values.json"
        # no progress bar in the committed outputs: a cold cache would otherwise write
        # "tokenising train: 0%|" lines into them (tqdm reads TQDM_DISABLE)
        env = {"TME_PROFILE": profile, "TQDM_DISABLE": "1", prose.ENV: str(values)}
        if profile == "smoke":
            env["TME_CACHE_DIR"] = cache
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        try:
            start = time.perf_counter()
            NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
                # progress bars are widgets: their state would make the book load require.js
                # and the widget manager from a CDN
                store_widget_state=False,
            ).execute()
            seconds = time.perf_counter() - start
            quoted = json.loads(values.read_text()) if values.exists() else {}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    drop_progress_bars(nb)
    if inplace:
        fill_prose(nb, path.with_suffix(".py"), quoted)
        nbformat.write(nb, path)
    return seconds


def fill_prose(nb, source: Path, values: dict[str, str]) -> None:
    """Write ``values`` into the spans of ``nb``'s markdown cells and of its paired ``source``,
    and keep them in the notebook's metadata (which the prose test reads)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = prose.fill(cell.source, values)
    nb.metadata[prose.METADATA] = dict(sorted(values.items()))
    if source.exists():
        text = source.read_text()
        filled = prose.fill(text, values)
        if filled != text:
            source.write_text(filled)


PROGRESS = re.compile(r"\d+%\|")  # tqdm's "  7%|▋   | 1/15 [..]"


def drop_progress_bars(nb) -> int:
    """Remove from ``nb`` the stderr outputs that are progress bars (one drawn by a library
    that ignores TQDM_DISABLE); returns how many were removed."""
    removed = 0
    for cell in nb.cells:
        kept = [
            o
            for o in cell.get("outputs", [])
            if not (o.get("name") == "stderr" and PROGRESS.search(o.get("text", "")))
        ]
        removed += len(cell.get("outputs", [])) - len(kept)
        if "outputs" in cell:
            cell["outputs"] = kept
    return removed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("smoke", "full"), required=True)
    parser.add_argument(
        "--inplace", action="store_true", help="write the outputs back (full only)"
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="default: every notebooks/[0-9]*.ipynb"
    )
    args = parser.parse_args(argv)
    if args.inplace and args.profile != "full":
        parser.error(
            "--inplace writes the book's outputs, which come from the full profile only"
        )
    from tme_lib.training.records import code_version

    def _version(version: tuple[str, bool]) -> str:
        commit, clean = version
        return commit if clean else f"{commit}-dirty"

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    rows = pd.read_csv(TIMES).to_dict("records") if TIMES.exists() else []
    for path in paths:
        seconds = execute(path.resolve(), args.profile, args.inplace, args.timeout)
        print(f"{path.name} ({args.profile}): {seconds:.0f} s", flush=True)
        rows = [
            r for r in rows if (r["notebook"], r["profile"]) != (path.stem, args.profile)
        ]
        rows.append(
            dict(
                notebook=path.stem,
                profile=args.profile,
                seconds=round(seconds, 1),
                device=_device(),
                code_version=_version(code_version()),
                date=time.strftime("%Y-%m-%d"),
            )
        )
        TIMES.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS).sort_values(["notebook", "profile"]).to_csv(
            TIMES, index=False
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
