"""Text as the models see it: tokeniser, vocabulary, reviews packed as flat id arrays, splits.

Shared by the real corpus (:mod:`tme_lib.data.imdb`) and the generated one
(:mod:`tme_lib.data.toy`). Policies (taught in "Data and training loop", section "From text
to tokens"):

- **Tokens**: lower case, ``<br />`` removed, words (with their apostrophe: ``don't``) and every
  punctuation sign as separate tokens; see :func:`tokenize`.
- **Vocabulary** from IMDB's 25,000 *train* reviews, the validation reviews among them (they
  are drawn from train later, by :func:`validation_split`), never from test. Which words exist
  uses no label, so validation scores stay honest (a word seen only in validation reviews is in
  the vocabulary, but nothing about its sentiment is learned from them): ``PAD = 0``,
  ``OOV = 1``, then the words seen at least ``min_count`` times, most frequent first (ties in
  alphabetical order), optionally capped at ``max_size`` words.
- **Empty reviews** (nothing left after tokenising) are kept as a single OOV token, so that an
  attention layer never normalises over an empty set. An all-OOV review is an ordinary review.
- **Validation**: a fraction of the train reviews, drawn with a fixed seed and *stratified*
  (the same fraction of positive and negative reviews), see :func:`validation_split`.
- **Truncation**: with ``max_len`` every review keeps its first ``max_len`` tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "<pad>", "<oov>"
TOKENIZER_VERSION = 2  # part of every spec and cache key of IMDB text

# a word: letters or digits (any alphabet), with inner apostrophes; else one non-space sign
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
LINE_BREAK = "<br />"  # the only markup of IMDB reviews
# Characters that draw nothing and would split a word in two ("gr\u200beat"): zero-width
# space, non-joiner and joiner, word joiner, byte-order mark. Removed before splitting.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_DROP_ZERO_WIDTH = str.maketrans("", "", ZERO_WIDTH)

# What each tokeniser version is: the SHA-256 of its settings (tokenizer_fingerprint). Changing
# a setting without a new version is refused, so a cached index or a record made by another
# tokeniser is never reused. Version 2 gained the removal of zero-width characters, none of
# which occurs in the IMDB archive (tests/test_faults.py checks it where the archive is): its
# tokens are unchanged, so the version is too.
TOKENIZERS = {
    2: "a1dcd7042cfd088fb61a6629ec14355829de6cdf9fef8ff9d4e497a39bb9f5fb",
}


def tokenizer_fingerprint() -> str:
    """SHA-256 of every setting of :func:`tokenize`: pattern, markup, zero-width characters."""
    settings = [_TOKEN.pattern, _TOKEN.flags, LINE_BREAK, ZERO_WIDTH, "lower"]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()


def tokenizer_version() -> int:
    """:data:`TOKENIZER_VERSION`, after checking that the tokeniser's settings are those
    registered for it in :data:`TOKENIZERS`."""
    if TOKENIZERS.get(TOKENIZER_VERSION) != tokenizer_fingerprint():
        raise RuntimeError(
            f"The tokeniser's settings changed (fingerprint {tokenizer_fingerprint()[:12]}) "
            f"but TOKENIZER_VERSION is still {TOKENIZER_VERSION}: give the new tokeniser a new "
            "version and register its fingerprint in TOKENIZERS (tme_lib/data/text.py), so "
            "that nothing tokenised the old way is reused."
        )
    return TOKENIZER_VERSION


def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, drop the ``<br />`` line breaks (the only markup of IMDB reviews)
    and the zero-width characters, and split it into words and single punctuation signs with
    one compiled regex: ``"Great film!<br />Didn't like the end..."`` gives
    ``['great', 'film', '!', "didn't", 'like', 'the', 'end', '.', '.', '.']``."""
    if not isinstance(text, str):
        raise TypeError(
            f"tokenize() takes a str, not {type(text).__name__}"
            + (
                ": decode bytes first, e.g. text.decode('utf-8')."
                if isinstance(text, bytes)
                else "."
            )
        )
    text = text.translate(_DROP_ZERO_WIDTH).lower().replace(LINE_BREAK, " ")
    return _TOKEN.findall(text)


class Vocab:
    """Token ↔ id mapping; ``itos[0]`` is padding, ``itos[1]`` the out-of-vocabulary token."""

    def __init__(self, itos: Sequence[str]):
        if list(itos[:2]) != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"a vocabulary starts with {PAD_TOKEN!r}, {OOV_TOKEN!r}")
        self.itos = list(itos)
        self.stoi = {word: i for i, word in enumerate(self.itos)}

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_count: int = 5,
        max_size: int | None = None,
    ) -> Vocab:
        """Words seen at least ``min_count`` times, most frequent first, ties alphabetical."""
        counts = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count),
            key=lambda w: (-counts[w], w),
        )
        return cls([PAD_TOKEN, OOV_TOKEN, *words[:max_size]])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids of ``tokens`` (OOV for unknown words); an empty input gives ``[OOV]``."""
        get = self.stoi.get
        ids = np.fromiter((get(t, OOV) for t in tokens), dtype=np.int32)
        return ids if len(ids) else np.array([OOV], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]


@dataclass
class TokenSplit:
    """Reviews as one flat id array: review ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

    ``split[i]`` gives ``(ids, label)``. ``planted`` (toy corpus only) holds, in the same flat
    layout with ``planted_offsets``, the positions of the planted sentiment words of each review."""

    ids: np.ndarray  # int32 [total tokens]
    offsets: np.ndarray  # int64 [n + 1]
    labels: np.ndarray  # float32 [n], 1.0 = positive
    planted: np.ndarray | None = None
    planted_offsets: np.ndarray | None = None
    max_len: int | None = field(default=None)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per review, after truncation to ``max_len``."""
        lengths = np.diff(self.offsets)
        return lengths if self.max_len is None else np.minimum(lengths, self.max_len)

    def __getitem__(self, i: int) -> tuple[np.ndarray, float]:
        start = self.offsets[i]
        return self.ids[start : start + self.lengths[i]], float(self.labels[i])

    def planted_positions(self, i: int) -> np.ndarray:
        """Positions of the planted words of review ``i`` (toy corpus), within ``max_len``."""
        if self.planted is None:
            raise ValueError(
                "only the generated smoke-profile corpus has planted positions"
            )
        pos = self.planted[self.planted_offsets[i] : self.planted_offsets[i + 1]]
        return pos if self.max_len is None else pos[pos < self.max_len]

    def subset(self, index: np.ndarray) -> TokenSplit:
        """The reviews ``index`` (in that order), copied into a new flat layout."""
        index = np.asarray(index, dtype=np.int64)
        ids, offsets = _gather(self.ids, self.offsets, index)
        planted = planted_offsets = None
        if self.planted is not None:
            planted, planted_offsets = _gather(self.planted, self.planted_offsets, index)
        return TokenSplit(
            ids, offsets, self.labels[index], planted, planted_offsets, self.max_len
        )

    @staticmethod
    def concat(splits: list[TokenSplit]) -> TokenSplit:
        """The reviews of ``splits``, one after the other (planted positions are dropped; the
        cut is that of the first split)."""
        ids = np.concatenate([s.ids[s.offsets[0] : s.offsets[-1]] for s in splits])
        lengths = np.concatenate([np.diff(s.offsets) for s in splits])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        labels = np.concatenate([s.labels for s in splits])
        return TokenSplit(ids, offsets, labels, max_len=splits[0].max_len)

    def truncated(self, max_len: int | None) -> TokenSplit:
        """The same reviews seen through their first ``max_len`` tokens (no copy)."""
        return TokenSplit(
            self.ids,
            self.offsets,
            self.labels,
            self.planted,
            self.planted_offsets,
            max_len,
        )


def _gather(flat: np.ndarray, offsets: np.ndarray, index: np.ndarray):
    """Concatenate the segments ``index`` of a flat array without a Python loop per element."""
    lengths = offsets[index + 1] - offsets[index]
    new_offsets = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # position j of the output reads flat[start of its segment + (j - start of its output segment)]
    starts = np.repeat(offsets[index] - new_offsets[:-1], lengths)
    return flat[starts + np.arange(new_offsets[-1])], new_offsets


def pack(
    arrays: Sequence[np.ndarray], labels: Sequence[float], dtype=np.int32
) -> TokenSplit:
    """Build a :class:`TokenSplit` from one id array per review."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    ids = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return TokenSplit(ids, offsets, np.asarray(labels, dtype=np.float32))


@dataclass
class Corpus:
    """A vocabulary and its three splits; ``source`` is ``"imdb"`` or ``"toy"``."""

    vocab: Vocab
    train: TokenSplit
    val: TokenSplit
    test: TokenSplit
    source: str = "imdb"

    def truncated(self, max_len: int | None) -> Corpus:
        return Corpus(
            self.vocab,
            self.train.truncated(max_len),
            self.val.truncated(max_len),
            self.test.truncated(max_len),
            self.source,
        )


def validation_split(
    split: TokenSplit, fraction: float, seed: int
) -> tuple[TokenSplit, TokenSplit]:
    """``(train, val)``: a seeded, stratified ``fraction`` of each class goes to val."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        val.append(
            rng.choice(members, size=round(fraction * len(members)), replace=False)
        )
    is_val = np.zeros(len(split), dtype=bool)
    is_val[np.concatenate(val)] = True
    return split.subset(np.flatnonzero(~is_val)), split.subset(np.flatnonzero(is_val))
