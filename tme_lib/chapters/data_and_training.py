"""Chapter "Data and training loop": the mean-of-embeddings baseline, trained once.

Taught in ``notebooks/00_data_and_training``. Its plan has one run, ``baseline``: the mean of
the frozen word vectors of a review, then a logistic regression
(:class:`tme_lib.blocks.embedding.Baseline`).
"""

from __future__ import annotations

from .. import config
from ..blocks.embedding import Baseline
from ..data.corpus import data_settings
from ..data.vectors import vector_settings
from ..training.records import RunRecord
from ..training.spec import Spec, Training, deep_merge, model_settings
from ..training.text_runs import run_text, text_data

CHAPTER = "data"
MODELS = {"baseline": Baseline}

# Full: IMDB cut at 400 tokens (90 % of the reviews are shorter), early stopping on validation.
# Smoke: the planted-word corpus, a few epochs.
SETTINGS = {
    "full": dict(
        data=dict(max_len=400),
        training=dict(optimizer="adam", lr=1e-2, batch_size=64, epochs=20, patience=3),
    ),
    "smoke": dict(
        data=dict(max_len=None),
        training=dict(optimizer="adam", lr=3e-2, batch_size=64, epochs=5, patience=3),
    ),
}


def spec(seed: int = 0) -> Spec:
    """The baseline run of the active profile."""
    s = deep_merge(SETTINGS[config.profile()])
    return Spec(
        chapter=CHAPTER,
        name="baseline",
        seed=seed,
        data=data_settings(**s["data"]),
        inputs=vector_settings("word2vec"),
        model=model_settings("baseline", Baseline),
        training=Training(**s["training"]),
    )


def plan() -> list[Spec]:
    """Every run of the chapter in the active profile."""
    return [spec()]


def run(s: Spec, progress: bool = True, retrain: bool = False, device=None) -> RunRecord:
    """Load the record of ``s`` if it exists, else train it."""
    return run_text(s, MODELS, progress=progress, retrain=retrain, device=device)


def load_data(s: Spec | None = None):
    """The reviews and frozen vectors of the chapter's run."""
    return text_data(s or spec())
