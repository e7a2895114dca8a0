"""Smoke-profile corpus: short reviews of filler words whose sentiment is carried by planted words.

Each review draws its length (8 to 60 tokens) and its filler words (Zipf-like frequencies, about
2 % of them out of vocabulary, as in IMDB) from distributions that do not depend on the label,
then plants 1 to 3 sentiment words of its class
(:data:`POSITIVE` or :data:`NEGATIVE`) at random positions. The label can therefore be learnt only
through the planted words, and their positions are recorded: an attention model is *faithful*
when it puts more of its mass on them than the uniform share ``planted / length`` (TME 9,
"Where does the model look?"). Unlabelled reviews have filler words only.

Generated from a seed, hermetic (no file, no download) and fast: ``load_toy()`` takes a few
milliseconds. It has the same structure as :func:`tme_lib.data.imdb.load_imdb`'s result.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np

from .text import OOV, OOV_TOKEN, PAD_TOKEN, Corpus, TokenSplit, Vocab, validation_split

POSITIVE = ("great", "excellent", "wonderful", "superb", "brilliant", "loved")
NEGATIVE = ("awful", "boring", "terrible", "worst", "dull", "hated")
FILLER = tuple(
    "the a and of to is in it this that was as with for but film movie on are his her they be one "
    "all at by an who so from like there or just about out if has what some can more when "
    "very up no time my even would which story only really see their had we me than much well "
    "been get will other do also into first people because how made could then them way make any "
    "after most too plot acting character characters scene scenes watch think seen many never "
    "little where know ever life show did two over does still camera role music book end here "
    "these man while say why such through back real director actors years old new off series "
    "work go".split()
)
MIN_LEN, MAX_LEN = 8, 60
OOV_RATE = 0.02
SIZES = {"train": 2000, "test": 1000, "unsup": 2000}
VERSION = 2  # the version of the generated corpus, part of every spec and cache key that names it
# What each version is: the SHA-256 of the generator's settings (settings_fingerprint). A changed
# setting without a new version is refused (version()), so no spec or cache of the old corpus
# is reused for the new one.
VERSIONS = {2: "18842c808b3cdd335955b3d8b3b65bae6d1e69e032f1436d5187bf5712899c02"}


def settings_fingerprint() -> str:
    """SHA-256 of every setting above: lengths, unknown-word rate, sizes, word lists."""
    settings = [MIN_LEN, MAX_LEN, OOV_RATE, SIZES, FILLER, POSITIVE, NEGATIVE]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def version() -> int:
    """:data:`VERSION`, after checking that the settings are those registered for it."""
    if VERSIONS.get(VERSION) != settings_fingerprint():
        raise RuntimeError(
            f"The toy corpus's settings changed (fingerprint {settings_fingerprint()[:12]}) but "
            f"its VERSION is still {VERSION}: give it a new version and register the "
            "fingerprint in VERSIONS (tme_lib/data/toy.py)."
        )
    return VERSION


def _split(rng: np.random.Generator, n: int, vocab: Vocab, labelled: bool) -> TokenSplit:
    """``n`` reviews; ids drawn in bulk so no Python loop runs per token."""
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n)
    labels = rng.integers(0, 2, size=n).astype(np.float32)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    filler_ids = np.array([vocab.stoi[w] for w in FILLER])
    zipf = 1.0 / np.arange(1, len(FILLER) + 1)
    ids = rng.choice(filler_ids, size=offsets[-1], p=zipf / zipf.sum()).astype(np.int32)
    ids[rng.random(len(ids)) < OOV_RATE] = OOV
    if not labelled:
        return TokenSplit(ids, offsets, np.full(n, np.nan, dtype=np.float32))
    pos_ids = np.array([vocab.stoi[w] for w in POSITIVE])
    neg_ids = np.array([vocab.stoi[w] for w in NEGATIVE])
    planted = []
    for i in range(n):  # one loop per review, not per token
        positions = np.sort(
            rng.choice(lengths[i], size=rng.integers(1, 4), replace=False)
        )
        ids[offsets[i] + positions] = rng.choice(
            pos_ids if labels[i] else neg_ids, size=len(positions)
        )
        planted.append(positions)
    planted_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(p) for p in planted], out=planted_offsets[1:])
    return TokenSplit(ids, offsets, labels, np.concatenate(planted), planted_offsets)


def generate(seed: int) -> tuple[Vocab, dict[str, TokenSplit]]:
    """The vocabulary and the ``train``, ``test`` and ``unsup`` splits generated from ``seed``
    with the current settings (cached per :func:`version`)."""
    return _generate(seed, version())


@lru_cache(maxsize=4)
def _generate(seed: int, version: int) -> tuple[Vocab, dict[str, TokenSplit]]:
    vocab = Vocab([PAD_TOKEN, OOV_TOKEN, *FILLER, *POSITIVE, *NEGATIVE])
    rng = np.random.default_rng(seed)
    splits = {
        name: _split(rng, n, vocab, labelled=name != "unsup") for name, n in SIZES.items()
    }
    return vocab, splits


def unlabelled_with_sentiment(corpus_seed: int = 0) -> TokenSplit:
    """Unlabelled reviews that carry sentiment, as IMDB's do: made like the labelled ones (planted
    words of a hidden class), their labels and positions dropped; as many as the unlabelled
    split, from a generator of their own (the corpus of :func:`generate` is unchanged). The
    pretraining chapter's smoke profile reads them."""
    vocab = generate(corpus_seed)[0]
    made = _split(np.random.default_rng([corpus_seed, 1]), SIZES["unsup"], vocab, True)
    return TokenSplit(made.ids, made.offsets, np.full(len(made), np.nan, np.float32))


def load_toy(
    val_fraction: float = 0.1,
    seed: int = 0,
    max_len: int | None = None,
    corpus_seed: int = 0,
) -> Corpus:
    """The toy corpus as an :class:`~tme_lib.data.text.Corpus` (``source="toy"``): ``corpus_seed``
    fixes the reviews, ``seed`` the validation draw, as for IMDB."""
    vocab, splits = generate(corpus_seed)
    train, val = validation_split(splits["train"], val_fraction, seed)
    return Corpus(vocab, train, val, splits["test"], source="toy").truncated(max_len)


def toy_token_stream(corpus_seed: int = 0) -> list[list[str]]:
    """Token lists of the toy train and unlabelled reviews (never test), for word vectors; the
    out-of-vocabulary tokens, which stand for words without a spelling here, are left out."""
    vocab, splits = generate(corpus_seed)
    words = np.array(vocab.itos)
    return [
        words[ids[ids != OOV]].tolist()
        for name in ("train", "unsup")
        for split in [splits[name]]
        for ids, _ in (split[i] for i in range(len(split)))
    ]
