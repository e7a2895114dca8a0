"""The text of the pretraining chapter: its own vocabulary, with a mask and a CLS token, and
every split encoded with it.

Taught in ``notebooks/05_pretraining`` (section "The text a model reads before it is taught").
Pretraining reads the reviews' own text: the training reviews that fine-tuning learns from
(the course's validation reviews left out) and the 50,000 unlabelled ones; validation and test
texts are never read before fine-tuning scores them. A small fixed sample of the unlabelled
reviews (``heldout``) is kept out of pretraining, to measure how well the model guesses masked
words on text it never saw.

- **Vocabulary**: built on the pretraining text only (never validation or test): ``<pad>``,
  ``<oov>``, ``<mask>``, ``<cls>``, then the ``max_size`` most frequent words seen at least
  ``min_count`` times (ties alphabetical). The course's tokeniser (:mod:`tme_lib.data.text`).
- **Reviews**: cut to their first ``max_len`` words, then ``<cls>`` prepended (so a model sees
  ``max_len + 1`` positions at most). Pretraining never chooses ``<cls>`` to be guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import config
from .corpus import DATASETS, corpus_version, default_dataset, word_streams
from .text import OOV, OOV_TOKEN, PAD_TOKEN, Corpus, TokenSplit, Vocab, validation_split

MASK_TOKEN, CLS_TOKEN = "<mask>", "<cls>"
SPECIALS = (PAD_TOKEN, OOV_TOKEN, MASK_TOKEN, CLS_TOKEN)
MASK, CLS = 2, 3
FIRST_WORD = len(SPECIALS)  # ids below this are never chosen to be guessed


def pretraining_settings(
    dataset: str | None = None,
    max_len: int | None = 400,
    max_size: int = 8000,
    min_count: int = 5,
    heldout: int = 1000,
    split_seed: int = 0,
    val_fraction: float = 0.1,
) -> dict:
    """Every setting that determines the text of the chapter, for a spec's ``data`` section:
    the dataset and the version of its text (tokeniser or generator), the validation draw
    (that of every IMDB chapter), the vocabulary, the cut and the held-out sample."""
    dataset = dataset or default_dataset()
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r}: use one of {', '.join(DATASETS)}.")
    # The toy corpus's own unlabelled reviews are filler only; the chapter reads unlabelled
    # reviews with sentiment words instead, as IMDB's are.
    extra = {"unlabelled": "with sentiment words"} if dataset == "toy" else {}
    return dict(
        **extra,
        dataset=dataset,
        text=corpus_version(dataset),
        profile=config.profile(),
        vocabulary="pretraining text",
        specials=list(SPECIALS),
        max_size=max_size,
        min_count=min_count,
        max_len=max_len,
        heldout=heldout,
        split_seed=split_seed,
        val_fraction=val_fraction,
    )


@dataclass
class PretrainingText:
    """``vocab``; ``pretrain`` (the reviews pretraining reads) and ``heldout`` (unlabelled
    reviews it never reads); ``corpus``: the labelled train, validation and test splits for
    fine-tuning. Every review starts with ``<cls>``."""

    vocab: Vocab
    pretrain: TokenSplit
    heldout: TokenSplit
    corpus: Corpus


def with_cls(split: TokenSplit, max_len: int | None) -> TokenSplit:
    """The reviews of ``split`` cut to ``max_len`` ids, each preceded by :data:`CLS` (no Python
    loop per token)."""
    lengths = split.lengths if max_len is None else np.minimum(split.lengths, max_len)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    ids = np.full(offsets[-1], CLS, dtype=np.int32)
    inside = np.ones(offsets[-1], dtype=bool)
    inside[offsets[:-1]] = False  # the CLS slots
    starts = np.repeat(split.offsets[:-1] - (offsets[:-1] + 1), lengths)
    ids[inside] = split.ids[starts + np.flatnonzero(inside)]
    return TokenSplit(ids, offsets, split.labels.copy())


def build_vocab(counts: np.ndarray, words: list[str], max_size: int, min_count: int):
    """The specials, then the words of ``counts`` (one count per entry of ``words``) seen at
    least ``min_count`` times, most frequent first, ties alphabetical, ``max_size`` at most;
    words that stand for no word (the specials themselves) are skipped."""
    keep = [
        i
        for i in np.flatnonzero(counts >= min_count)
        if words[i] not in SPECIALS and words[i] != ""
    ]
    keep.sort(key=lambda i: (-counts[i], words[i]))
    return Vocab([*SPECIALS, *(words[i] for i in keep[:max_size])])


def load_pretraining_text(data: dict) -> PretrainingText:
    """The text described by a spec's ``data`` section (:func:`pretraining_settings`)."""
    return _load(
        tuple(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(data.items())
        )
    )


@lru_cache(maxsize=2)
def _load(items: tuple) -> PretrainingText:
    data = dict(items)
    if data["text"] != corpus_version(data["dataset"]):
        raise ValueError(
            f"these settings ask for the text {data['text']!r}, but this code makes "
            f"{corpus_version(data['dataset'])!r}: build the spec again with the chapter's plan."
        )
    streams = word_streams(
        data["dataset"], data.get("unlabelled") == "with sentiment words"
    )
    words = list(streams["train"].words)

    def split_of(name):
        s = streams[name]
        return TokenSplit(s.ids, s.offsets, s.labels)

    train, val = validation_split(
        split_of("train"), data["val_fraction"], data["split_seed"]
    )
    unsup = split_of("unsup")
    rng = np.random.default_rng([data["split_seed"], 11])
    is_heldout = np.zeros(len(unsup), dtype=bool)
    is_heldout[rng.choice(len(unsup), size=data["heldout"], replace=False)] = True
    pretrain = TokenSplit.concat([train, unsup.subset(np.flatnonzero(~is_heldout))])
    counts = np.bincount(pretrain.ids, minlength=len(words))
    vocab = build_vocab(counts, words, data["max_size"], data["min_count"])

    def encode(split: TokenSplit, stream_words: list[str]) -> TokenSplit:
        lookup = np.array([vocab.stoi.get(w, OOV) for w in stream_words], np.int32)
        lookup[[i for i, w in enumerate(stream_words) if w == OOV_TOKEN]] = OOV
        coded = TokenSplit(lookup[split.ids], split.offsets, split.labels)
        return with_cls(coded, data["max_len"])

    test = streams["test"]
    return PretrainingText(
        vocab,
        encode(pretrain, words),
        encode(unsup.subset(np.flatnonzero(is_heldout)), words),
        Corpus(
            vocab,
            encode(train, words),
            encode(val, words),
            encode(TokenSplit(test.ids, test.offsets, test.labels), list(test.words)),
            source=data["dataset"],
        ),
    )
