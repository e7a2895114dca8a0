"""IMDB reviews (Maas et al., 2011): reading the archive, the indexed reviews cached on disk.

``load_imdb()`` returns a :class:`~tme_lib.data.text.Corpus` with ``.vocab``, ``.train``,
``.val`` and ``.test``, built with the policies of :mod:`tme_lib.data.text`. IMDB-specific:

- **Validation**: ``val_fraction`` (default 10 %) of the official train reviews, stratified and
  seeded (``seed``); test is the official test split, untouched.
- **Cache**: the labelled reviews are tokenised and indexed once, then stored in
  ``<cache>/imdb-index/<key>/`` (``reviews.npz``: flat int32 ids, int64 offsets, labels;
  ``vocab.json``). The key holds :data:`~tme_lib.data.text.TOKENIZER_VERSION` and the
  vocabulary parameters, so a changed tokeniser or ``min_count`` never reuses a stale index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import config
from .download import DataError, check_counts, extract_tar, find_or_download
from .text import (
    Corpus,
    TokenSplit,
    Vocab,
    pack,
    tokenize,
    tokenizer_version,
    validation_split,
)

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE = "aclImdb_v1.tar.gz"
LAYOUT = (
    "aclImdb/train/pos",
    "aclImdb/train/neg",
    "aclImdb/train/unsup",
    "aclImdb/test/pos",
    "aclImdb/test/neg",
)


# Reviews per folder of the official archive: 25,000 train, 25,000 test, 50,000 unlabelled.
COUNTS = {
    "aclImdb/train/pos": 12_500,
    "aclImdb/train/neg": 12_500,
    "aclImdb/test/pos": 12_500,
    "aclImdb/test/neg": 12_500,
    "aclImdb/train/unsup": 50_000,
}


def imdb_root() -> Path:
    """The extracted ``aclImdb/`` folder: taken from the data folder if it holds one (checked:
    every folder there with its number of reviews), else extracted (once, atomically, verified)
    from ``aclImdb_v1.tar.gz`` found there or downloaded."""
    folder = config.data_dir() / "aclImdb"
    if folder.is_dir():
        missing = [p for p in LAYOUT if not (folder.parent / p).is_dir()]
        if missing:
            raise DataError(
                f"{folder} lacks {', '.join(missing)}: it is not a complete aclImdb "
                "folder. Remove it from TME_DATA_DIR or complete it."
            )
        check_counts(folder.parent, COUNTS, str(folder))
        return folder
    archive = find_or_download(ARCHIVE, URL, sha256=SHA256)
    return (
        extract_tar(archive, "imdb", LAYOUT, counts=COUNTS, official_sha256=SHA256)
        / "aclImdb"
    )


def _review_id(path: Path) -> int:
    """The numeric id of a review file ``<id>_<rating>.txt``."""
    try:
        return int(path.stem.split("_")[0])
    except ValueError:
        raise DataError(
            f"{path} is not a review file: IMDB reviews are named <id>_<rating>.txt "
            "(e.g. 123_8.txt). Remove it from the folder."
        ) from None


def _read_review(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not valid UTF-8 ({err.reason} at byte {err.start}). The "
            "archive's reviews are UTF-8: replace the file with the original, or delete the "
            "extracted folder to extract it again."
        ) from None


def _read_folder(folder: Path) -> list[str]:
    """Texts of a folder's reviews, ordered by their numeric id (``<id>_<rating>.txt``)."""
    files = sorted(folder.glob("*.txt"), key=_review_id)
    return [_read_review(p) for p in files]


def read_reviews(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels (1 = positive) of ``train`` or ``test``: negatives first, then positives."""
    neg, pos = _read_folder(root / split / "neg"), _read_folder(root / split / "pos")
    return neg + pos, np.r_[np.zeros(len(neg)), np.ones(len(pos))].astype(np.float32)


def _index_key(min_count: int, max_size: int | None) -> str:
    return f"tok{tokenizer_version()}-min{min_count}-max{max_size or 'all'}"


def _build_index(root: Path, min_count: int, max_size: int | None):
    """Tokenise train and test once, build the vocabulary on train, encode both."""
    tokens, labels = {}, {}
    for name in ("train", "test"):
        texts, labels[name] = read_reviews(root, name)
        tokens[name] = [
            tokenize(t) for t in tqdm(texts, desc=f"tokenising {name}", unit=" reviews")
        ]
    vocab = Vocab.build(tokens["train"], min_count=min_count, max_size=max_size)
    splits = {
        name: pack([vocab.encode(t) for t in tokens[name]], labels[name])
        for name in tokens
    }
    return vocab, splits


def _read_index(path: Path) -> tuple[Vocab, dict[str, TokenSplit]]:
    vocab = Vocab(json.loads((path.parent / "vocab.json").read_text(encoding="utf-8")))
    with np.load(path) as npz:
        splits = {
            name: TokenSplit(
                npz[f"{name}_ids"], npz[f"{name}_offsets"], npz[f"{name}_labels"]
            )
            for name in ("train", "test")
        }
    return vocab, splits


def load_index(
    min_count: int = 5, max_size: int | None = None
) -> tuple[Vocab, dict[str, TokenSplit]]:
    """The vocabulary and the full indexed ``train`` and ``test`` splits, from the cache when
    present (no tokenising then), else built from the reviews and saved."""
    folder = config.cache_dir() / "imdb-index" / _index_key(min_count, max_size)
    cached = config.read_cached(folder / "reviews.npz", _read_index)
    if cached is not None:
        return cached
    vocab, splits = _build_index(imdb_root(), min_count, max_size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab.itos), encoding="utf-8")
    arrays = {
        f"{name}_{part}": getattr(s, part)
        for name, s in splits.items()
        for part in ("ids", "offsets", "labels")
    }
    tmp = folder / "reviews.tmp.npz"  # written whole, then renamed: never a partial cache
    np.savez(tmp, **arrays)
    tmp.replace(folder / "reviews.npz")
    return vocab, splits


def load_imdb(
    min_count: int = 5,
    max_size: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_len: int | None = None,
) -> Corpus:
    """IMDB split into train/val/test; see the module docstring for the policies."""
    vocab, splits = load_index(min_count, max_size)
    train, val = validation_split(splits["train"], val_fraction, seed)
    return Corpus(vocab, train, val, splits["test"], source="imdb").truncated(max_len)


def _read_stream(path: Path):
    with np.load(path) as npz:
        return npz["words"].tolist(), npz["ids"], npz["offsets"]


def _word_stream(name: str, read_texts) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(words, ids, offsets)`` of the reviews ``read_texts()`` returns, tokenised once and
    cached in ``<cache>/imdb-index/tok<version>-<name>.npz`` with its own complete word list
    (no word is lost to a vocabulary cut-off): review ``i`` is
    ``words[ids[offsets[i]:offsets[i + 1]]]``."""
    path = config.cache_dir() / "imdb-index" / f"tok{tokenizer_version()}-{name}.npz"
    stream = config.read_cached(path, _read_stream)
    if stream is None:
        texts = read_texts()
        token_lists = [
            tokenize(t) for t in tqdm(texts, desc=f"tokenising {name}", unit=" reviews")
        ]
        words = sorted({w for tokens in token_lists for w in tokens})
        stoi = {w: i for i, w in enumerate(words)}
        ids = [
            np.fromiter((stoi[w] for w in tokens), np.int32, len(tokens))
            for tokens in token_lists
        ]
        split = pack(ids, np.zeros(len(ids)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=split.ids, offsets=split.offsets, words=np.array(words))
        tmp.replace(path)
        stream = _read_stream(path)
    return stream


def train_unsup_stream() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The 25,000 train reviews (in the order of :func:`read_reviews`, so review ``i`` is review
    ``i`` of the indexed train split) then the 50,000 unlabelled ones, as a word stream."""

    def texts():
        root = imdb_root()
        return read_reviews(root, "train")[0] + _read_folder(root / "train" / "unsup")

    return _word_stream("stream", texts)


def test_stream() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The 25,000 test reviews, in the order of :func:`read_reviews`, as a word stream."""
    return _word_stream("test-stream", lambda: read_reviews(imdb_root(), "test")[0])


def unsup_token_stream() -> list[list[str]]:
    """Token lists of the train and unsupervised reviews (never test), for training word
    vectors (:func:`train_unsup_stream`)."""
    words, ids, offsets = train_unsup_stream()
    tokens = [words[i] for i in ids.tolist()]
    return [tokens[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
