"""Frozen word vectors: alignment policy, caches, GloVe reading, reproducible word2vec."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from tme_lib.data import vectors
from tme_lib.data.download import DataError
from tme_lib.data.text import OOV, PAD, Vocab
from tme_lib.data.toy import load_toy

TRAIN_TWICE = """
import hashlib
import numpy as np
from tme_lib.data.vectors import train_word2vec
rng = np.random.default_rng(0)
words = [f"w{i}" for i in range(60)]
sentences = [[words[j] for j in rng.zipf(1.5, 25) % 60] for _ in range(300)]
found, matrix = train_word2vec(sentences, dim=16, min_count=1, epochs=2)
print(hashlib.sha256(matrix.tobytes() + " ".join(found).encode()).hexdigest(), hash("w1"))
"""


def test_word2vec_is_bit_for_bit_identical_across_processes():
    digests = []
    for hash_seed in (
        "1",
        "2",
    ):  # Python's own str hash differs between these two processes
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", TRAIN_TWICE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        digests.append(run.stdout.split())
    assert digests[0][1] != digests[1][1], (
        "the two processes should salt str hashes differently"
    )
    assert len(digests[0][0]) == 64 and digests[0][0] == digests[1][0]


def test_alignment_policy_pad_zero_oov_and_missing_are_the_mean():
    vocab = Vocab(["<pad>", "<oov>", "a", "b", "nowhere"])
    matrix = np.array([[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]], dtype=np.float32)
    aligned, missing = vectors._align(vocab, ["b", "a", "unused"], matrix)
    assert aligned[PAD].tolist() == [0.0, 0.0]
    assert aligned[2].tolist() == [3.0, 6.0] and aligned[3].tolist() == [1.0, 2.0]
    # mean of a and b only
    assert aligned[OOV].tolist() == [2.0, 4.0] == aligned[4].tolist()
    assert missing == ["nowhere"]


def test_smoke_word2vec_is_aligned_cached_and_meaningful(monkeypatch):
    data = load_toy()
    v = vectors.load_vectors(data.vocab)
    assert v.shape == (len(data.vocab), 50) and v.dtype == torch.float32
    assert (v[PAD] == 0).all() and vectors.missing_words(data.vocab) == []
    monkeypatch.setattr(
        vectors, "train_word2vec", lambda *a, **k: pytest.fail("trained again")
    )
    assert torch.equal(vectors.load_vectors(data.vocab), v)


def _glove_vocab():
    return Vocab(["<pad>", "<oov>", "the", "great", "awful", "missingword", "!"])


@pytest.mark.parametrize("zipped", [False, True])
def test_glove_rows_come_from_the_local_file(
    tiny_glove, isolated_folders, zipped, monkeypatch
):
    _, data = isolated_folders
    if zipped:  # the official zip instead of the extracted text file
        with zipfile.ZipFile(data / "glove.6B.zip", "w") as archive:
            archive.write(data / "glove.6B.50d.txt", "glove.6B.50d.txt")
        (data / "glove.6B.50d.txt").unlink()
    vocab = _glove_vocab()
    v = vectors.load_vectors(vocab, source="glove").numpy()
    for word in ("the", "great", "awful", "!"):
        np.testing.assert_allclose(v[vocab.stoi[word]], tiny_glove[word], atol=1e-6)
    known = np.stack([tiny_glove[w] for w in ("the", "great", "awful", "!")])
    np.testing.assert_allclose(v[vocab.stoi["missingword"]], known.mean(0), atol=1e-5)
    assert vectors.missing_words(vocab, "glove") == ["missingword"]
    monkeypatch.setattr(
        vectors, "_read_glove", lambda *a: pytest.fail("read GloVe again")
    )
    assert np.array_equal(vectors.load_vectors(vocab, source="glove").numpy(), v)


def test_glove_absent_in_smoke_profile_says_what_to_do(monkeypatch):
    monkeypatch.setattr(
        vectors, "find_or_download", lambda *a, **k: pytest.fail("downloaded")
    )
    with pytest.raises(DataError, match="TME_DATA_DIR"):
        vectors.load_vectors(_glove_vocab(), source="glove")


def test_nearest_neighbours_by_cosine():
    vocab = Vocab(["<pad>", "<oov>", "good", "great", "bad", "long"])
    v = torch.tensor(
        [[0, 0], [1, 1], [1, 0], [10, 1], [-1, 0], [0, 1]], dtype=torch.float32
    )
    neighbours = vectors.nearest_neighbours(v, vocab, "good", k=3)
    assert [w for w, _ in neighbours] == [
        "great",
        "long",
        "bad",
    ]  # cosine ignores the norm
    assert neighbours[0][1] == pytest.approx(10 / np.sqrt(101), abs=1e-4)
    with pytest.raises(KeyError):
        vectors.nearest_neighbours(v, vocab, "absent")
