"""IMDB reviews (Maas et al., 2011): tokeniser, vocabulary, indexed reviews cached on disk, splits.

``load_imdb()`` returns an :class:`ImdbData` with ``.vocab``, ``.train``, ``.val`` and ``.test``.
In the smoke profile (the default) it returns the generated corpus of :mod:`tme_lib.toy`, which
has the same structure plus the positions of the planted sentiment words.

Policies (taught in "Data and training loop", section "From text to tokens"):

- **Tokens**: lower case, ``<br />`` removed, words (with their apostrophe: ``don't``) and every
  punctuation sign as separate tokens; see :func:`tokenize`.
- **Vocabulary** from the *train* split only (never validation or test): ``PAD = 0``,
  ``OOV = 1``, then the words seen at least ``min_count`` times, most frequent first (ties in
  alphabetical order), optionally capped at ``max_size`` words.
- **Empty reviews** (nothing left after tokenising) are kept as a single OOV token, so that an
  attention layer never normalises over an empty set. An all-OOV review is an ordinary review.
- **Validation**: ``val_fraction`` (default 10 %) of the train reviews, drawn with a fixed
  seed and *stratified* (the same fraction of positive and negative reviews), so that val keeps
  the 50/50 balance of train. Test is the official test split, untouched.
- **Truncation**: with ``max_len`` every review keeps its first ``max_len`` tokens.
- **Cache**: the labelled reviews are tokenised and indexed once, then stored in
  ``<cache>/imdb-index/<key>/`` (``reviews.npz``: flat int32 ids, int64 offsets, labels;
  ``vocab.json``). The key holds :data:`TOKENIZER_VERSION` and the vocabulary parameters, so a
  changed tokeniser or ``min_count`` never reuses a stale index.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import config
from .download import DataError, extract_tar, find_or_download

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE = "aclImdb_v1.tar.gz"
LAYOUT = ("aclImdb/train/pos", "aclImdb/train/neg", "aclImdb/train/unsup",
          "aclImdb/test/pos", "aclImdb/test/neg")

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "<pad>", "<oov>"
TOKENIZER_VERSION = 2  # bump when tokenize() changes: it is part of every cache key

# a word: letters or digits (any alphabet), with inner apostrophes; else one non-space sign
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, drop the ``<br />`` line breaks (the only markup of IMDB reviews)
    and split it into words and single punctuation signs with one compiled regex:
    ``"Great film!<br />Didn't like the end..."`` gives
    ``['great', 'film', '!', "didn't", 'like', 'the', 'end', '.', '.', '.']``."""
    return _TOKEN.findall(text.lower().replace("<br />", " "))


class Vocab:
    """Token ↔ id mapping; ``itos[0]`` is padding, ``itos[1]`` the out-of-vocabulary token."""

    def __init__(self, itos: Sequence[str]):
        if list(itos[:2]) != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"a vocabulary starts with {PAD_TOKEN!r}, {OOV_TOKEN!r}")
        self.itos = list(itos)
        self.stoi = {word: i for i, word in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 5,
              max_size: int | None = None) -> "Vocab":
        """Words seen at least ``min_count`` times, most frequent first, ties alphabetical."""
        counts = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
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
        return self.ids[start:start + self.lengths[i]], float(self.labels[i])

    def planted_positions(self, i: int) -> np.ndarray:
        """Positions of the planted words of review ``i`` (toy corpus), within ``max_len``."""
        if self.planted is None:
            raise ValueError("only the generated smoke-profile corpus has planted positions")
        pos = self.planted[self.planted_offsets[i]:self.planted_offsets[i + 1]]
        return pos if self.max_len is None else pos[pos < self.max_len]

    def subset(self, index: np.ndarray) -> "TokenSplit":
        """The reviews ``index`` (in that order), copied into a new flat layout."""
        index = np.asarray(index, dtype=np.int64)
        ids, offsets = _gather(self.ids, self.offsets, index)
        planted = planted_offsets = None
        if self.planted is not None:
            planted, planted_offsets = _gather(self.planted, self.planted_offsets, index)
        return TokenSplit(ids, offsets, self.labels[index], planted, planted_offsets, self.max_len)

    def truncated(self, max_len: int | None) -> "TokenSplit":
        """The same reviews seen through their first ``max_len`` tokens (no copy)."""
        return TokenSplit(self.ids, self.offsets, self.labels, self.planted,
                          self.planted_offsets, max_len)


def _gather(flat: np.ndarray, offsets: np.ndarray, index: np.ndarray):
    """Concatenate the segments ``index`` of a flat array without a Python loop per element."""
    lengths = offsets[index + 1] - offsets[index]
    new_offsets = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # position j of the output reads flat[start of its segment + (j - start of its output segment)]
    starts = np.repeat(offsets[index] - new_offsets[:-1], lengths)
    return flat[starts + np.arange(new_offsets[-1])], new_offsets


def pack(arrays: Sequence[np.ndarray], labels: Sequence[float], dtype=np.int32) -> TokenSplit:
    """Build a :class:`TokenSplit` from one id array per review."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    ids = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return TokenSplit(ids, offsets, np.asarray(labels, dtype=np.float32))


@dataclass
class ImdbData:
    """A vocabulary and its three splits; ``source`` is ``"imdb"`` or ``"toy"``."""

    vocab: Vocab
    train: TokenSplit
    val: TokenSplit
    test: TokenSplit
    source: str = "imdb"

    def truncated(self, max_len: int | None) -> "ImdbData":
        return ImdbData(self.vocab, self.train.truncated(max_len), self.val.truncated(max_len),
                        self.test.truncated(max_len), self.source)


def validation_split(split: TokenSplit, fraction: float, seed: int) -> tuple[TokenSplit, TokenSplit]:
    """``(train, val)``: a seeded, stratified ``fraction`` of each class goes to val."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        val.append(rng.choice(members, size=round(fraction * len(members)), replace=False))
    is_val = np.zeros(len(split), dtype=bool)
    is_val[np.concatenate(val)] = True
    return split.subset(np.flatnonzero(~is_val)), split.subset(np.flatnonzero(is_val))


def imdb_root() -> Path:
    """The extracted ``aclImdb/`` folder: taken from the data folder if it holds one, else
    extracted (once, atomically) from ``aclImdb_v1.tar.gz`` found there or downloaded."""
    folder = config.data_dir() / "aclImdb"
    if folder.is_dir():
        missing = [p for p in LAYOUT if not (folder.parent / p).is_dir()]
        if missing:
            raise DataError(f"{folder} lacks {', '.join(missing)}: it is not a complete aclImdb "
                            "folder. Remove it from TME_DATA_DIR or complete it.")
        return folder
    archive = find_or_download(ARCHIVE, URL, sha256=SHA256)
    return extract_tar(archive, "imdb", LAYOUT) / "aclImdb"


def _read_folder(folder: Path) -> list[str]:
    """Texts of a folder's reviews, ordered by their numeric id (``<id>_<rating>.txt``)."""
    files = sorted(folder.glob("*.txt"), key=lambda p: int(p.stem.split("_")[0]))
    return [p.read_text(encoding="utf-8") for p in files]


def read_reviews(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels (1 = positive) of ``train`` or ``test``: negatives first, then positives."""
    neg, pos = _read_folder(root / split / "neg"), _read_folder(root / split / "pos")
    return neg + pos, np.r_[np.zeros(len(neg)), np.ones(len(pos))].astype(np.float32)


def _index_key(min_count: int, max_size: int | None) -> str:
    return f"tok{TOKENIZER_VERSION}-min{min_count}-max{max_size or 'all'}"


def _build_index(root: Path, min_count: int, max_size: int | None):
    """Tokenise train and test once, build the vocabulary on train, encode both."""
    tokens, labels = {}, {}
    for name in ("train", "test"):
        texts, labels[name] = read_reviews(root, name)
        tokens[name] = [tokenize(t) for t in tqdm(texts, desc=f"tokenising {name}", unit=" reviews")]
    vocab = Vocab.build(tokens["train"], min_count=min_count, max_size=max_size)
    splits = {name: pack([vocab.encode(t) for t in tokens[name]], labels[name]) for name in tokens}
    return vocab, splits


def load_index(min_count: int = 5, max_size: int | None = None) -> tuple[Vocab, dict[str, TokenSplit]]:
    """The vocabulary and the full indexed ``train`` and ``test`` splits, from the cache when
    present (no tokenising then), else built from the reviews and saved."""
    folder = config.cache_dir() / "imdb-index" / _index_key(min_count, max_size)
    if (folder / "reviews.npz").exists():
        vocab = Vocab(json.loads((folder / "vocab.json").read_text(encoding="utf-8")))
        with np.load(folder / "reviews.npz") as npz:
            splits = {name: TokenSplit(npz[f"{name}_ids"], npz[f"{name}_offsets"], npz[f"{name}_labels"])
                      for name in ("train", "test")}
        return vocab, splits
    vocab, splits = _build_index(imdb_root(), min_count, max_size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab.itos), encoding="utf-8")
    arrays = {f"{name}_{part}": getattr(s, part) for name, s in splits.items()
              for part in ("ids", "offsets", "labels")}
    tmp = folder / "reviews.tmp.npz"  # written whole, then renamed: never a partial cache
    np.savez(tmp, **arrays)
    tmp.replace(folder / "reviews.npz")
    return vocab, splits


def load_imdb(min_count: int = 5, max_size: int | None = None, val_fraction: float = 0.1,
              seed: int = 0, max_len: int | None = None) -> ImdbData:
    """IMDB (full profile) or the planted-word toy corpus (smoke profile), split into
    train/val/test; see the module docstring for the policies. ``min_count`` and ``max_size``
    apply to the real vocabulary only."""
    if not config.is_full():
        from .toy import load_toy  # toy builds on this module's classes

        return load_toy(val_fraction=val_fraction, seed=seed, max_len=max_len)
    vocab, splits = load_index(min_count, max_size)
    train, val = validation_split(splits["train"], val_fraction, seed)
    return ImdbData(vocab, train, val, splits["test"]).truncated(max_len)


def unsup_token_stream() -> list[list[str]]:
    """Token lists of the train and unsupervised reviews (never test), for training word
    vectors; in the smoke profile, those of the toy corpus. Cached once in
    ``<cache>/imdb-index/tok<version>-stream.npz`` with its own complete word list, so no word
    is lost to a vocabulary cut-off."""
    if not config.is_full():
        from .toy import toy_token_stream

        return toy_token_stream()
    path = config.cache_dir() / "imdb-index" / f"tok{TOKENIZER_VERSION}-stream.npz"
    if not path.exists():
        root = imdb_root()
        texts = read_reviews(root, "train")[0] + _read_folder(root / "train" / "unsup")
        token_lists = [tokenize(t) for t in tqdm(texts, desc="tokenising train+unsup", unit=" reviews")]
        words = sorted({w for tokens in token_lists for w in tokens})
        stoi = {w: i for i, w in enumerate(words)}
        ids = [np.fromiter((stoi[w] for w in tokens), np.int32, len(tokens)) for tokens in token_lists]
        split = pack(ids, np.zeros(len(ids)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=split.ids, offsets=split.offsets, words=np.array(words))
        tmp.replace(path)
    with np.load(path) as npz:
        words, ids, offsets = npz["words"].tolist(), npz["ids"], npz["offsets"]
    tokens = [words[i] for i in ids.tolist()]
    return [tokens[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
