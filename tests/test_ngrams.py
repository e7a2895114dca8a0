"""Hashed bigrams, their embedding and the naive-Bayes ratio of tokens."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tme_lib.blocks.ngrams import NgramEmbedding, hashed_bigram_ids, token_log_count_ratio
from tme_lib.data.text import pack
from tme_lib.training.bag_of_words import log_count_ratio


def test_bigram_ids_skip_padding_and_depend_on_the_order_of_the_pair():
    x = torch.tensor([[5, 6, 7, 0], [6, 5, 0, 0]])
    mask = x > 0
    ids, pair_mask = hashed_bigram_ids(x, mask, buckets=1000)
    assert pair_mask.tolist() == [[True, True, False, False], [True, False, False, False]]
    assert (ids[~pair_mask] == 0).all() and (ids[pair_mask] >= 1).all()
    assert (ids[pair_mask] <= 1000).all()
    assert ids[0, 0] != ids[1, 0]  # (5, 6) and (6, 5) are different bigrams
    again, _ = hashed_bigram_ids(x, mask, buckets=1000)
    assert torch.equal(ids, again)


def test_bigram_buckets_spread_the_pairs_of_a_vocabulary():
    x = torch.randint(2, 30_000, (64, 400), generator=torch.Generator().manual_seed(0))
    ids, pair_mask = hashed_bigram_ids(x, torch.ones_like(x, dtype=torch.bool), 2**16)
    counts = torch.bincount(ids[pair_mask], minlength=2**16 + 1)[1:]
    assert counts.max() <= 8  # 25,536 pairs in 65,536 buckets: no bucket takes many


def test_ngram_embedding_starts_from_the_word_vectors_and_learns_pairs_only():
    vectors = torch.randn(10, 4)
    emb = NgramEmbedding(vectors, buckets=50)
    x = torch.tensor([[3, 4, 5]])
    mask = torch.ones_like(x, dtype=torch.bool)
    assert torch.allclose(emb(x, mask), vectors[x])  # bigram vectors start at zero
    trainable = [n for n, p in emb.named_parameters() if p.requires_grad]
    assert trainable == ["pairs.weight"]
    assert sum(p.numel() for p in emb.parameters() if p.requires_grad) == 51 * 4
    tuned = NgramEmbedding(vectors, buckets=50, fine_tune=True)
    assert {n for n, p in tuned.named_parameters() if p.requires_grad} == {
        "words.weight",
        "pairs.weight",
    }


def test_token_ratio_matches_the_bag_of_words_formula_on_unigrams():
    reviews = [np.array([2, 3, 3]), np.array([2, 4]), np.array([4, 5]), np.array([5, 1])]
    labels = [1.0, 1.0, 0.0, 0.0]
    split = pack(reviews, labels)
    r = token_log_count_ratio(split, vocab_size=6)
    x = sp.csr_matrix(
        np.array(
            [
                [0, 0, 1, 2, 0, 0],
                [0, 0, 1, 0, 1, 0],
                [0, 0, 0, 0, 1, 1],
                [0, 1, 0, 0, 0, 1],
            ]
        )
    )
    want = log_count_ratio(x, np.array(labels))
    want[:2] = 0.0
    assert r.numpy() == pytest.approx(want, abs=1e-6)
    assert r[2] > 0 > r[5] and r[4] == pytest.approx(
        0.0
    )  # word 4 is in one review of each
