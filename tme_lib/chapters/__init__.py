"""The chapters. Each one assembles the shared pieces (:mod:`tme_lib.data`,
:mod:`tme_lib.blocks`, :mod:`tme_lib.training`) and declares its plan of runs; no chapter
imports another. The run tool (``python -m tme_lib.runs``) finds a chapter here by its name."""

from __future__ import annotations

import importlib
from types import ModuleType

# chapter name (the folder of its records) -> module
CHAPTERS = {
    "data": "tme_lib.chapters.data_and_training",
    "tme9": "tme_lib.chapters.tme9",
    "tme10": "tme_lib.chapters.tme10",
    "beyond": "tme_lib.chapters.beyond",
    "aptamers": "tme_lib.chapters.aptamers.runs",
    "pretraining": "tme_lib.chapters.pretraining",
}


def chapter(name: str) -> ModuleType:
    """The module of chapter ``name``: it has ``CHAPTER``, ``plan()`` and ``run(spec, ...)``,
    and may have ``write_tables(records)``."""
    if name not in CHAPTERS:
        raise KeyError(f"unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)}.")
    return importlib.import_module(CHAPTERS[name])
