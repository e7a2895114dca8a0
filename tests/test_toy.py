"""The planted-word corpus: deterministic, labels carried by the planted words only."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from tme_lib.data import toy
from tme_lib.data.text import OOV, PAD
from tme_lib.data.toy import NEGATIVE, POSITIVE, load_toy


def _bags(split, size, keep):
    """Bag-of-words counts of each review, restricted to the ids ``keep``."""
    bags = np.zeros((len(split), size))
    for i in range(len(split)):
        ids = split[i][0]
        np.add.at(bags[i], ids[np.isin(ids, keep)], 1)
    return bags


def test_same_seed_same_corpus_other_seed_other_corpus():
    a, b, c = load_toy(), load_toy(), load_toy(corpus_seed=1)
    assert np.array_equal(a.train.ids, b.train.ids) and np.array_equal(
        a.test.planted, b.test.planted
    )
    assert not np.array_equal(a.test.ids[:100], c.test.ids[:100])


def test_planted_positions_hold_exactly_the_sentiment_words_of_the_label():
    data = load_toy()
    positive = {data.vocab.stoi[w] for w in POSITIVE}
    negative = {data.vocab.stoi[w] for w in NEGATIVE}
    for split in (data.train, data.val, data.test):
        for i in range(len(split)):
            ids, label = split[i]
            planted = split.planted_positions(i)
            expected = positive if label == 1.0 else negative
            assert 1 <= len(planted) <= 3 and set(ids[planted].tolist()) <= expected
            others = np.delete(ids, planted)
            assert not set(others.tolist()) & (positive | negative)
            assert PAD not in ids


def test_labels_are_learnable_through_planted_words_only():
    data = load_toy()
    sentiment = [data.vocab.stoi[w] for w in POSITIVE + NEGATIVE]
    filler = [data.vocab.stoi[w] for w in toy.FILLER]
    accuracy = {}
    for name, keep in [("planted", sentiment), ("filler", filler)]:
        model = LogisticRegression(max_iter=1000)
        model.fit(_bags(data.train, len(data.vocab), keep), data.train.labels)
        accuracy[name] = model.score(
            _bags(data.test, len(data.vocab), keep), data.test.labels
        )
    assert accuracy["planted"] == 1.0
    # filler words and lengths say nothing about the label
    assert accuracy["filler"] < 0.6


def test_a_few_filler_tokens_are_out_of_vocabulary():
    data = load_toy()
    assert 0.005 < (data.train.ids == OOV).mean() < 0.05
    assert "<oov>" not in {w for tokens in toy.toy_token_stream() for w in tokens}


def test_truncation_drops_planted_positions_beyond_max_len():
    data = load_toy(max_len=10)
    for i in range(len(data.train)):
        assert (data.train.planted_positions(i) < 10).all()
    assert data.train.lengths.max() == 10


def test_token_stream_is_train_and_unsup():
    stream = toy.toy_token_stream()
    assert len(stream) == toy.SIZES["train"] + toy.SIZES["unsup"]
    assert all(isinstance(w, str) for w in stream[0])
