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


def arm_spec(chapter_name: str, model: str, seed: int = 0):
    """The spec of the run at ``seed`` of the arm ``(chapter_name, model)`` that a comparison
    names: a chapter's model (TME 9's with Adam), or TME 9's bag-of-words baseline."""
    module = chapter(chapter_name)
    if chapter_name == "tme9" and model in module.BAG_OF_WORDS:
        return module.baseline_spec(model)
    return module.spec(model, seed=seed)


def paired(a: tuple, b: tuple) -> bool:
    """Whether the arms ``a`` and ``b`` (``(chapter, model)``) see the same training batches
    at each seed (:meth:`~tme_lib.training.spec.Spec.data_order`): their comparison is then
    paired by seed, and Welch's otherwise."""
    return arm_spec(*a).data_order() == arm_spec(*b).data_order()
