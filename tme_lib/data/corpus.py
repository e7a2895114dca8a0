"""The one place that chooses between the real corpus and the generated one.

A run's data settings (the ``data`` section of its :class:`~tme_lib.training.spec.Spec`) name a
``dataset``: ``"imdb"`` (:mod:`tme_lib.data.imdb`) or ``"toy"`` (:mod:`tme_lib.data.toy`, the
planted-word corpus of the smoke profile). :func:`data_settings` writes every setting that
determines the reviews, :func:`load_corpus` reads them back; :func:`unlabelled_tokens` gives the
text word vectors are trained on. Nothing else in the library looks at the profile to pick a
corpus.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import config
from . import imdb, toy
from .text import Corpus, tokenizer_version

DATASETS = ("imdb", "toy")


def default_dataset() -> str:
    """``"imdb"`` in the full profile, ``"toy"`` in the smoke profile."""
    return "imdb" if config.is_full() else "toy"


def data_settings(
    dataset: str | None = None,
    max_len: int | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    min_count: int = 5,
    max_size: int | None = None,
    probe: int = 0,
) -> dict:
    """Every setting that determines the reviews of a run, for a spec's ``data`` section:
    the dataset and its version (tokeniser or generator), the validation draw, the vocabulary
    and the cut. For the toy corpus ``min_count`` and ``max_size`` do not apply and are left
    out; its ``corpus_seed`` fixes the generated reviews. ``probe`` is the size of the fixed
    samples of train and validation reviews whose attention entropies are recorded after every
    epoch (:func:`probe_indices`; 0: none)."""
    dataset = dataset or default_dataset()
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r}: use one of {', '.join(DATASETS)}.")
    out = dict(
        dataset=dataset,
        profile=config.profile(),
        split_seed=split_seed,
        val_fraction=val_fraction,
        max_len=max_len,
        probe=probe,
    )
    if dataset == "imdb":
        out.update(tokenizer=tokenizer_version(), min_count=min_count, max_size=max_size)
    else:
        out.update(generator=toy.version(), corpus_seed=0)
    return out


def probe_indices(data: dict, corpus: Corpus) -> dict[str, np.ndarray]:
    """The probe of ``data``: ``data["probe"]`` reviews of the train split and as many of the
    validation split, drawn uniformly without replacement, the same way for both splits and
    from the split seed, so every epoch and every run of a chapter sees the same reviews."""
    n = data.get("probe", 0)
    rng = np.random.default_rng([data["split_seed"], 7])
    return {
        split: np.sort(rng.choice(len(part), size=min(n, len(part)), replace=False))
        for split, part in (("train", corpus.train), ("val", corpus.val))
        if n
    }


def load_corpus(data: dict) -> Corpus:
    """The reviews described by a spec's ``data`` section (see :func:`data_settings`)."""
    return _load(tuple(sorted(data.items())))


@lru_cache(maxsize=4)
def _load(items: tuple) -> Corpus:
    data = dict(items)
    _check_version(data)
    common = dict(
        val_fraction=data["val_fraction"],
        seed=data["split_seed"],
        max_len=data["max_len"],
    )
    if data["dataset"] == "imdb":
        return imdb.load_imdb(
            min_count=data["min_count"], max_size=data["max_size"], **common
        )
    return toy.load_toy(corpus_seed=data["corpus_seed"], **common)


def _check_version(data: dict) -> None:
    """A spec written for another tokeniser or generator cannot be loaded by this code."""
    want = (
        ("tokenizer", tokenizer_version())
        if data["dataset"] == "imdb"
        else ("generator", toy.version())
    )
    if data.get(want[0]) != want[1]:
        raise ValueError(
            f"these data settings ask for {want[0]} version {data.get(want[0])!r}, but this code "
            f"has version {want[1]}: the run was defined for other code. Build its spec again "
            "with the chapter's plan (python -m tme_lib.runs CHAPTER --dry-run)."
        )


def unlabelled_tokens(dataset: str) -> list[list[str]]:
    """Token lists of the train and unlabelled reviews of ``dataset`` (never test), the text
    that word vectors are trained on."""
    if dataset == "imdb":
        return imdb.unsup_token_stream()
    if dataset == "toy":
        return toy.toy_token_stream()
    raise ValueError(f"dataset={dataset!r}: use one of {', '.join(DATASETS)}.")


class WordStream(NamedTuple):
    """Reviews as words: review ``i`` is ``words[ids[offsets[i]:offsets[i + 1]]]``; ``labels``
    (NaN for unlabelled reviews). The form in which a chapter builds its own vocabulary."""

    words: list[str]
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray


def word_streams(dataset: str, sentiment_unsup: bool = False) -> dict[str, WordStream]:
    """The ``train``, ``unsup`` and ``test`` reviews of ``dataset`` as :class:`WordStream`, in
    the order of :func:`load_corpus`'s splits before the validation draw (so the same
    validation draw picks the same reviews). The unknown word of the toy corpus is ``<oov>``;
    with ``sentiment_unsup`` its unlabelled reviews carry sentiment words
    (:func:`tme_lib.data.toy.unlabelled_with_sentiment`)."""
    if dataset == "imdb":
        labels = {k: v.labels for k, v in imdb.load_index()[1].items()}
        words, ids, offsets = imdb.train_unsup_stream()
        n = len(labels["train"])
        train_unsup = {
            "train": (offsets[: n + 1], labels["train"]),
            "unsup": (offsets[n:], np.full(len(offsets) - n - 1, np.nan, np.float32)),
        }
        out = {k: WordStream(words, ids, o, y) for k, (o, y) in train_unsup.items()}
        out["test"] = WordStream(*imdb.test_stream(), labels["test"])
        return out
    if dataset == "toy":
        vocab, splits = toy.generate(0)
        if sentiment_unsup:
            splits = {**splits, "unsup": toy.unlabelled_with_sentiment(0)}
        return {
            name: WordStream(vocab.itos, split.ids, split.offsets, split.labels)
            for name, split in splits.items()
        }
    raise ValueError(f"dataset={dataset!r}: use one of {', '.join(DATASETS)}.")


def corpus_version(dataset: str) -> str:
    """Names the text of :func:`unlabelled_tokens` in cache keys: ``imdb-tok2``,
    ``toy2-<hash>``."""
    if dataset == "imdb":
        return f"imdb-tok{tokenizer_version()}"
    return f"toy{toy.version()}"
