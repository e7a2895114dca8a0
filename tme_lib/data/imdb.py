"""IMDB reviews (Maas et al., 2011): reading the archive, the indexed reviews cached on disk.

``load_imdb()`` returns a :class:`~tme_lib.data.text.Corpus` with ``.vocab``, ``.train``,
``.val`` and ``.test``, built with the policies of :mod:`tme_lib.data.text`. IMDB-specific:

- **Validation**: ``val_fraction`` (default 10 %) of the official train reviews, stratified and
  seeded (``seed``); test is the official test split, untouched.
- **Cache**: the labelled reviews are tokenised and indexed once, then stored in
  ``<cache>/imdb-index/<key>/index.npz`` (flat int32 ids, int64 offsets, labels, the
  vocabulary). The key holds :data:`~tme_lib.data.text.TOKENIZER_VERSION` and the vocabulary
  parameters, so a changed tokeniser or ``min_count`` never reuses a stale index. The file also
  holds the fingerprint of the archive (or folder) it was built from, and is built again when
  another copy of the data is in place, or when it does not hold 25,000 train and 25,000 test
  reviews; it is built under a lock, so a second process waits and then reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import config
from .download import (
    DataError,
    check_counts,
    extract_tar,
    find_or_download,
    fingerprint,
)
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


def source_fingerprint() -> dict | None:
    """What the cached index and word streams are built from: the extracted folder of the data
    folder, or the archive's fingerprint (path, size, modification time); ``None`` when there
    is neither (the cache is then used as it is, and nothing is downloaded to check it)."""
    folder = config.data_dir() / "aclImdb"
    if folder.is_dir():
        return {"folder": str(folder.resolve())}
    for archive in (
        config.data_dir() / ARCHIVE,
        config.cache_dir() / "downloads" / ARCHIVE,
    ):
        if archive.exists():
            return fingerprint(archive)
    return None


def expected_reviews() -> dict[str, int]:
    """Reviews per split of the archive (from :data:`COUNTS`): ``train``, ``test``, ``unsup``."""
    return {
        "train": COUNTS["aclImdb/train/pos"] + COUNTS["aclImdb/train/neg"],
        "test": COUNTS["aclImdb/test/pos"] + COUNTS["aclImdb/test/neg"],
        "unsup": COUNTS["aclImdb/train/unsup"],
    }


def _source_of(npz) -> dict | None:
    return json.loads(str(npz["source"])) if "source" in npz else None


def _stale(path: Path, source_then: dict | None, counts: dict[str, int]) -> str | None:
    """Why the cache file ``path`` cannot be used: built from another archive, or with a wrong
    number of reviews; ``None`` when it can."""
    source_now = source_fingerprint()
    if source_now is not None and source_then != source_now:
        return f"{path} was built from another copy of the IMDB data than {source_now}"
    want = expected_reviews()
    wrong = {k: n for k, n in counts.items() if n != want[k]}
    if wrong:
        return (
            f"{path} holds {', '.join(f'{n} {k}' for k, n in wrong.items())} reviews, "
            f"not {', '.join(str(want[k]) for k in wrong)}"
        )
    return None


def _save_npz(path: Path, **arrays) -> None:
    """Write ``path`` whole or not at all (a temporary file of this process, then a rename),
    with the fingerprint of the data it was built from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    with config.writing(tmp, f"the cache file {path.name}"):
        np.savez(tmp, source=np.array(json.dumps(source_fingerprint())), **arrays)
    tmp.replace(path)


def _cached(path: Path, reader, what: str, build):
    """The cache file ``path`` read by ``reader`` (``(result, source, counts)``), if it is
    there, was built from the data now in place and holds the expected numbers of reviews;
    else ``build()`` under a lock (another process building it waits, then reads it)."""

    def usable(say: bool = True):
        found = config.read_cached(path, reader)
        if found is None:
            return None
        result, source, counts = found
        problem = _stale(path, source, counts)
        if problem:
            if say:
                print(f"{problem}: it is built again.")
            return None
        return result

    result = usable()
    if result is not None:
        return result
    with config.file_lock(f"{path.parent.name}-{path.stem}", what):
        result = usable(say=False)  # built by another process while this one waited
        if result is None:
            build()
            result = usable()
    if result is None:
        raise DataError(
            f"{path} was just built but cannot be used; delete it and run again."
        )
    return result


def _read_index(path: Path):
    with np.load(path) as npz:
        vocab = Vocab([str(w) for w in npz["vocab"]])
        splits = {
            name: TokenSplit(
                npz[f"{name}_ids"], npz[f"{name}_offsets"], npz[f"{name}_labels"]
            )
            for name in ("train", "test")
        }
        source = _source_of(npz)
    return (vocab, splits), source, {k: len(v) for k, v in splits.items()}


def load_index(
    min_count: int = 5, max_size: int | None = None
) -> tuple[Vocab, dict[str, TokenSplit]]:
    """The vocabulary and the full indexed ``train`` and ``test`` splits, from the cache when it
    is current (no tokenising then), else built from the reviews and saved (under a lock)."""
    path = (
        config.cache_dir() / "imdb-index" / _index_key(min_count, max_size) / "index.npz"
    )

    def build():
        vocab, splits = _build_index(imdb_root(), min_count, max_size)
        arrays = {
            f"{name}_{part}": getattr(s, part)
            for name, s in splits.items()
            for part in ("ids", "offsets", "labels")
        }
        _save_npz(path, vocab=np.array(vocab.itos), **arrays)

    return _cached(path, _read_index, f"the IMDB index {path}", build)


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
        stream = npz["words"].tolist(), npz["ids"], npz["offsets"]
        counts = {
            k: int(npz[f"n_{k}"]) for k in ("train", "unsup", "test") if f"n_{k}" in npz
        }
        return stream, _source_of(npz), counts


def _word_stream(name: str, read_texts) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(words, ids, offsets)`` of the reviews ``read_texts()`` returns (``{split: texts}``),
    tokenised once and cached in ``<cache>/imdb-index/tok<version>-<name>.npz`` with its own
    complete word list (no word is lost to a vocabulary cut-off): review ``i`` is
    ``words[ids[offsets[i]:offsets[i + 1]]]``."""
    path = config.cache_dir() / "imdb-index" / f"tok{tokenizer_version()}-{name}.npz"

    def build():
        parts = read_texts()
        texts = [t for part in parts.values() for t in part]
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
        sizes = {f"n_{k}": np.array(len(v)) for k, v in parts.items()}
        _save_npz(
            path, ids=split.ids, offsets=split.offsets, words=np.array(words), **sizes
        )

    return _cached(path, _read_stream, f"the tokenised reviews {path}", build)


def train_unsup_stream() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The 25,000 train reviews (in the order of :func:`read_reviews`, so review ``i`` is review
    ``i`` of the indexed train split) then the 50,000 unlabelled ones, as a word stream."""

    def texts():
        root = imdb_root()
        return {
            "train": read_reviews(root, "train")[0],
            "unsup": _read_folder(root / "train" / "unsup"),
        }

    return _word_stream("stream", texts)


def test_stream() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The 25,000 test reviews, in the order of :func:`read_reviews`, as a word stream."""
    return _word_stream(
        "test-stream", lambda: {"test": read_reviews(imdb_root(), "test")[0]}
    )


def unsup_token_stream() -> list[list[str]]:
    """Token lists of the train and unsupervised reviews (never test), for training word
    vectors (:func:`train_unsup_stream`)."""
    words, ids, offsets = train_unsup_stream()
    tokens = [words[i] for i in ids.tolist()]
    return [tokens[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
