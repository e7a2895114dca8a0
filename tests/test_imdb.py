"""Tokeniser, vocabulary, indexed reviews and their cache, splits, on a tiny aclImdb tree."""

from __future__ import annotations

import numpy as np
import pytest

from tme_lib.data import imdb
from tme_lib.data.imdb import load_imdb
from tme_lib.data.text import OOV, PAD, TokenSplit, Vocab, tokenize


@pytest.fixture
def full_tiny(tiny_imdb_dir, monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "full")
    return tiny_imdb_dir


def test_tokenize_lowercases_drops_breaks_and_keeps_punctuation():
    assert tokenize("Great film!<br /><br />I didn't LIKE it...") == [
        "great",
        "film",
        "!",
        "i",
        "didn't",
        "like",
        "it",
        ".",
        ".",
        ".",
    ]
    assert tokenize("Café-crème, 'quoted' rock'n'roll") == [
        "café",
        "-",
        "crème",
        ",",
        "'",
        "quoted",
        "'",
        "rock'n'roll",
    ]
    assert tokenize("") == []


def test_vocab_ids_and_order():
    vocab = Vocab.build([["b", "a", "a", "c"], ["b", "a"]], min_count=2)
    assert vocab.itos == [
        "<pad>",
        "<oov>",
        "a",
        "b",
    ]  # c is too rare; a is the most frequent
    assert vocab.encode(["a", "zzz", "b"]).tolist() == [2, OOV, 3]
    assert vocab.encode([]).tolist() == [OOV]  # an empty review keeps one OOV token
    assert vocab.stoi["<pad>"] == PAD == 0
    assert len(Vocab.build([["a", "b", "c"]], min_count=1, max_size=2)) == 4


def test_vocabulary_comes_from_train_only(full_tiny):
    data = load_imdb(min_count=1, val_fraction=0.0)
    assert "great" in data.vocab.stoi
    assert "testonlyword" not in data.vocab.stoi  # only in test reviews
    assert "unsuponlyword" not in data.vocab.stoi  # only in unlabelled reviews
    ids, label = data.test[0]  # test is sorted negatives first
    # "and" occurs in test and unsup reviews only: OOV
    assert label == 0.0 and data.vocab.decode(ids) == ["awful", "<oov>", "boring", "."]


def test_empty_and_all_oov_reviews_survive(full_tiny):
    data = load_imdb(min_count=2, val_fraction=0.0)
    lengths = np.concatenate([data.train.lengths, data.test.lengths])
    assert lengths.min() >= 1
    texts, _ = imdb.read_reviews(full_tiny, "train")
    empty, rare = texts.index(""), texts.index("Zyzzyva quokka")
    assert data.train[empty][0].tolist() == [OOV]
    assert data.train[rare][0].tolist() == [OOV, OOV]


def test_second_load_reads_the_cache_without_tokenising(full_tiny, monkeypatch):
    first = load_imdb(min_count=1)
    monkeypatch.setattr(imdb, "tokenize", lambda text: pytest.fail("tokenised again"))
    monkeypatch.setattr(imdb, "imdb_root", lambda: pytest.fail("read the reviews again"))
    second = load_imdb(min_count=1)
    assert second.vocab.itos == first.vocab.itos
    for a, b in [
        (first.train, second.train),
        (first.val, second.val),
        (first.test, second.test),
    ]:
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels)


def test_cache_key_follows_vocabulary_parameters(full_tiny):
    assert len(load_imdb(min_count=1).vocab) > len(load_imdb(min_count=3).vocab)


def test_validation_is_stratified_seeded_and_disjoint(full_tiny):
    data = load_imdb(min_count=1, val_fraction=0.25, seed=3)
    assert len(data.val) == 2 and sorted(data.val.labels.tolist()) == [0.0, 1.0]
    assert len(data.train) == 6
    again = load_imdb(min_count=1, val_fraction=0.25, seed=3)
    assert np.array_equal(data.val.ids, again.val.ids)
    reviews = lambda s: {tuple(s[i][0].tolist()) for i in range(len(s))}  # noqa: E731
    assert not reviews(data.val) & reviews(data.train)


def test_max_len_truncates(full_tiny):
    data = load_imdb(min_count=1, max_len=3)
    assert data.train.lengths.max() == 3
    assert all(len(data.train[i][0]) <= 3 for i in range(len(data.train)))


def test_subset_gathers_the_right_reviews():
    labels = np.array([0, 1, 0], np.float32)
    split = TokenSplit(np.arange(10, dtype=np.int32), np.array([0, 3, 4, 10]), labels)
    sub = split.subset(np.array([2, 0]))
    assert sub[0][0].tolist() == [4, 5, 6, 7, 8, 9] and sub[1][0].tolist() == [0, 1, 2]
    assert sub.labels.tolist() == [0.0, 0.0]


def test_token_stream_has_train_and_unsup_but_never_test(full_tiny):
    words = {w for tokens in imdb.unsup_token_stream() for w in tokens}
    assert {"unsuponlyword", "zyzzyva", "great"} <= words
    assert "testonlyword" not in words


def test_smoke_profile_gives_the_toy_corpus():
    from tme_lib.data.corpus import data_settings, load_corpus

    data = load_corpus(data_settings())
    assert data.source == "toy" and len(data.train) > 1000
    assert data.train.planted_positions(0).size >= 1


@pytest.mark.real_data
def test_real_imdb_sizes_and_balance(real_data):
    data = load_imdb()
    assert (len(data.train), len(data.val), len(data.test)) == (22500, 2500, 25000)
    assert (
        data.train.labels.mean() == pytest.approx(0.5) and data.test.labels.mean() == 0.5
    )
    assert data.vocab.itos[:2] == ["<pad>", "<oov>"] and data.vocab.itos[2] in {
        "the",
        ".",
    }
