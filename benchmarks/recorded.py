"""Recorded benchmarks: a measurement that a chapter quotes is a file of
``results/benchmarks/``, made at a clean commit on an idle machine, with the commit, the
machine, the thread count and the date (``--record`` of a benchmark script)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

FOLDER = Path(__file__).resolve().parent.parent / "results" / "benchmarks"
BUSY_LOAD = 0.5  # load average above which the machine runs another job


def ready() -> str:
    """The clean commit to record at; stops when the tree is dirty or the machine busy (a
    benchmark beside another job measures the other job too)."""
    from tme_lib.training.records import code_version

    commit, clean = code_version()
    if not clean:
        raise SystemExit("commit first: a recorded benchmark names a clean commit.")
    load = os.getloadavg()[0]
    if load > BUSY_LOAD:
        raise SystemExit(
            f"the machine is busy (load average {load:.1f}): stop the other jobs, then measure."
        )
    return commit


def write(name: str, commit: str, threads: int | None = None, **measured) -> Path:
    """Write ``results/benchmarks/<name>.json``: the measurement and where it was made
    (``threads``: those of the process that measured, by default this one's)."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.json"
    record = dict(
        benchmark=name,
        code_version=commit,
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        threads=torch.get_num_threads() if threads is None else threads,
        date=time.strftime("%Y-%m-%d"),
        **measured,
    )
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded in {path}")
    return path
