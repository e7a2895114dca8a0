"""Frozen 50-d word vectors aligned to a vocabulary: word2vec trained on IMDB, or GloVe 6B.

``load_vectors(vocab, source)`` returns a ``FloatTensor[len(vocab), 50]`` whose row ``i`` is the
vector of ``vocab.itos[i]`` ("Data and training loop", section "Frozen word vectors"):

- row ``PAD`` (0) is zeros, so padding contributes nothing to a sum;
- row ``OOV`` (1), and the row of every vocabulary word that the source lacks, is the mean of
  the vectors of the words the source knows: an unknown word then looks like an average word
  rather than a random direction.

Sources:

``"word2vec"`` (default)
    gensim's word2vec (CBOW, window 5, min count 5, 5 epochs) trained on the IMDB *train and
    unsupervised* reviews, never on test, or on the toy corpus in the smoke profile. Training is
    bit-for-bit reproducible across runs and processes: one worker thread (several threads
    update the vectors in a racy order), a fixed seed, and a deterministic string hash for
    gensim's ``hashfxn`` (its default, Python's ``hash``, is salted per process; gensim 4 seeds
    the initial vectors from ``seed`` alone, the hash guards its older per-word seeding).
    On the full data (20 M tokens) training takes about 4 minutes on one CPU core.
    Cached in ``<cache>/vectors/`` under a name holding every parameter and the corpus.
``"glove"``
    GloVe 6B 50-d (Wikipedia 2014 + Gigaword 5). ``glove.6B.50d.txt`` or ``glove.6B.zip`` is
    taken from the data folder (``TME_DATA_DIR``) when present; otherwise the full profile
    downloads the zip (822 MB), the smoke profile never does. Stanford publishes no checksum:
    the download is checked against its announced length and the ZIP's CRC-32 of the member is
    verified on reading. The rows for a vocabulary are cached as a small ``.npy``.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import config
from .corpus import corpus_version, default_dataset, unlabelled_tokens
from .download import DataError, find_or_download
from .text import OOV, PAD, Vocab

DIM = 50
GLOVE_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
GLOVE_ZIP, GLOVE_TXT = "glove.6B.zip", "glove.6B.50d.txt"
GLOVE_WORDS = 400_000
WORD2VEC_DEFAULTS = dict(sg=0, window=5, min_count=5, epochs=5, seed=0)


def stable_hash(text: str) -> int:
    """A string hash that is the same in every process (first 4 bytes of its sha256), for
    gensim's ``hashfxn`` (its per-word seeding)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little")


def _align(
    vocab: Vocab, words: list[str], matrix: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Rows of ``matrix`` (one per word of ``words``) in the order of ``vocab``; see the module
    docstring for PAD, OOV and missing words. Also returns the missing words."""
    index = {w: i for i, w in enumerate(words)}
    rows = np.array([index.get(w, -1) for w in vocab.itos])
    known = rows >= 0
    known[[PAD, OOV]] = False
    out = np.empty((len(vocab), matrix.shape[1]), dtype=np.float32)
    out[known] = matrix[rows[known]]
    out[~known] = matrix[rows[known]].mean(axis=0) if known.any() else 0.0
    out[PAD] = 0.0
    missing = [w for w, k in zip(vocab.itos[2:], known[2:]) if not k]
    return out, missing


def train_word2vec(
    sentences: list[list[str]], dim: int = DIM, **params
) -> tuple[list[str], np.ndarray]:
    """Train word2vec on ``sentences``, with a progress bar over its epochs; returns its words
    and their vectors ``[n, dim]``."""
    from gensim.models import Word2Vec  # heavy import, only when training
    from gensim.models.callbacks import CallbackAny2Vec

    params = {**WORD2VEC_DEFAULTS, **params}
    bar = tqdm(total=params["epochs"], desc="training word2vec", unit=" epochs")

    class Progress(CallbackAny2Vec):
        def on_epoch_end(self, model):
            bar.update(1)

    try:
        model = Word2Vec(
            sentences,
            vector_size=dim,
            workers=1,
            hashfxn=stable_hash,
            callbacks=[Progress()],
            **params,
        )
    finally:
        bar.close()
    return list(model.wv.index_to_key), model.wv.vectors.astype(np.float32)


def word2vec_vectors(
    dim: int = DIM, corpus: str | None = None, **params
) -> tuple[list[str], np.ndarray]:
    """Words and vectors of word2vec trained on the train+unsup reviews of ``corpus``
    (``"imdb"`` or ``"toy"``; default: the profile's), cached."""
    corpus = corpus or default_dataset()
    params = {**WORD2VEC_DEFAULTS, **params}
    key = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    path = (
        config.cache_dir()
        / "vectors"
        / f"word2vec-{corpus_version(corpus)}-d{dim}-{key}.npz"
    )
    cached = config.read_cached(path, _read_word2vec)
    if cached is not None:
        return cached
    sentences = unlabelled_tokens(corpus)
    start = time.perf_counter()
    words, matrix = train_word2vec(sentences, dim, **params)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, words=np.array(words), vectors=matrix, seconds=seconds)
    tmp.replace(path)
    return _read_word2vec(path)


def _read_word2vec(path: Path) -> tuple[list[str], np.ndarray]:
    with np.load(path) as npz:
        return npz["words"].tolist(), npz["vectors"]


def vector_settings(source: str = "word2vec", corpus: str | None = None) -> dict:
    """Every setting that determines the vectors, for a spec's ``inputs`` section: the source,
    the dimension, and for word2vec the corpus it is trained on and all its training settings
    (:data:`WORD2VEC_DEFAULTS`). ``load_vectors(vocab, **vector_settings())`` loads them."""
    if source == "word2vec":
        return dict(
            source=source,
            dim=DIM,
            corpus=corpus or default_dataset(),
            **WORD2VEC_DEFAULTS,
        )
    if source == "glove":
        return dict(source=source, dim=DIM, file=GLOVE_TXT)
    raise ValueError(f"source={source!r}: use 'word2vec' or 'glove'")


def glove_file(download: bool | None = None) -> Path | None:
    """The local GloVe file (txt or zip) in the data folder, downloading the zip when
    ``download`` (default: in the full profile only); ``None`` if absent and not downloaded."""
    root = config.data_dir()
    for name in (GLOVE_TXT, GLOVE_ZIP):
        if (root / name).exists():
            return root / name
    if download is None:
        download = config.is_full()
    return find_or_download(GLOVE_ZIP, GLOVE_URL) if download else None


def _glove_row(path: Path, number: int, rest: str) -> np.ndarray:
    """The vector of line ``number`` of a GloVe file: :data:`DIM` numbers after the word."""
    try:
        row = np.array(rest.split(" "), dtype=np.float32)
    except ValueError:
        row = None
    if row is None or row.shape != (DIM,) or not np.isfinite(row).all():
        raise DataError(
            f"{path}, line {number}: expected a word and {DIM} numbers, got "
            f"{rest[:60]!r}. The file is damaged: replace it with the original."
        )
    return row


def _read_glove(path: Path, wanted: set[str]) -> tuple[list[str], np.ndarray]:
    """The GloVe vectors of the words in ``wanted`` (the other 400k lines are skipped)."""
    if path.suffix == ".zip":
        try:
            handle = io.TextIOWrapper(
                zipfile.ZipFile(path).open(GLOVE_TXT), encoding="utf-8"
            )
        except (zipfile.BadZipFile, KeyError) as err:
            raise DataError(
                f"{path} is not a GloVe 6B zip ({err}): delete it and run again."
            ) from err
    else:
        handle = open(path, encoding="utf-8")
    words, rows = [], []
    try:
        with handle:
            lines = tqdm(
                handle, total=GLOVE_WORDS, desc=f"reading {path.name}", unit=" words"
            )
            for number, line in enumerate(lines, start=1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if word in wanted:
                    words.append(word)
                    rows.append(_glove_row(path, number, rest))
    except zipfile.BadZipFile as err:  # raised on a CRC mismatch at the end of the member
        raise DataError(f"{path} is corrupt ({err}): delete it and run again.") from err
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason}); delete it and run again, "
            "or replace it with the original file."
        ) from None
    return words, np.stack(rows) if rows else np.zeros((0, DIM), np.float32)


def _vocab_key(vocab: Vocab) -> str:
    return hashlib.sha256(json.dumps(vocab.itos).encode("utf-8")).hexdigest()[:16]


def glove_vectors(vocab: Vocab, download: bool | None = None) -> np.ndarray:
    """GloVe rows aligned to ``vocab``, cached per vocabulary in ``<cache>/vectors/``."""
    path = config.cache_dir() / "vectors" / f"glove50-{_vocab_key(vocab)}.npy"
    cached = config.read_cached(path, np.load)
    if cached is not None:
        return cached
    source = glove_file(download)
    if source is None:
        raise DataError(
            f"No {GLOVE_TXT} or {GLOVE_ZIP} in the data folder {config.data_dir()}, and the smoke "
            f"profile downloads nothing. Put one there (folder set by TME_DATA_DIR; from "
            f"{GLOVE_URL}), or use TME_PROFILE=full to download it, or source='word2vec'."
        )
    words, matrix = _read_glove(source, set(vocab.itos))
    aligned, missing = _align(vocab, words, matrix)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, aligned)
    path.with_suffix(".missing.json").write_text(json.dumps(missing), encoding="utf-8")
    return aligned


def load_vectors(
    vocab: Vocab,
    source: str = "word2vec",
    dim: int = DIM,
    corpus: str | None = None,
    **params,
) -> torch.Tensor:
    """``FloatTensor[len(vocab), dim]`` of frozen vectors aligned to ``vocab`` (module docstring
    for the sources and the PAD/OOV policy). ``corpus`` and ``params`` set word2vec's training
    text and settings (``sg``, ``window``, ``min_count``, ``epochs``, ``seed``)."""
    if source == "word2vec":
        aligned, _ = _align(vocab, *word2vec_vectors(dim, corpus, **params))
    elif source == "glove":
        params.pop("file", None)
        if dim != DIM or params or corpus:
            raise ValueError(
                "GloVe vectors here are the 50-d ones and take no parameters"
            )
        aligned = glove_vectors(vocab)
    else:
        raise ValueError(f"source={source!r}: use 'word2vec' or 'glove'")
    return torch.from_numpy(aligned)


def missing_words(vocab: Vocab, source: str = "word2vec", **params) -> list[str]:
    """Words of ``vocab`` (besides PAD and OOV) that the source has no vector for."""
    if source == "glove":
        glove_vectors(vocab)
        path = (
            config.cache_dir() / "vectors" / f"glove50-{_vocab_key(vocab)}.missing.json"
        )
        return json.loads(path.read_text(encoding="utf-8"))
    return _align(vocab, *word2vec_vectors(**params))[1]


def nearest_neighbours(
    vectors: torch.Tensor, vocab: Vocab, word: str, k: int = 10
) -> list[tuple[str, float]]:
    """The ``k`` words closest to ``word`` by cosine similarity ``u·v / (|u| |v|)``, with their
    similarity; the word itself, PAD and OOV are left out."""
    if word not in vocab.stoi:
        raise KeyError(f"{word!r} is not in the vocabulary")
    unit = torch.nn.functional.normalize(vectors.float(), dim=1)
    similarity = unit @ unit[vocab.stoi[word]]
    similarity[[PAD, OOV, vocab.stoi[word]]] = -float("inf")
    best = torch.topk(similarity, min(k, len(vocab) - 3))
    return [
        (vocab.itos[i], round(float(s), 4)) for s, i in zip(best.values, best.indices)
    ]
