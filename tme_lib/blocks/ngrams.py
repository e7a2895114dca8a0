"""Word pairs for attention models: hashed bigram ids, their embeddings, a naive-Bayes prior.

The bag-of-words baselines (:mod:`tme_lib.training.bag_of_words`) owe much of their lead to
bigrams ("not good") and to naive-Bayes weights. These blocks give an attention model the
same two things:

- :func:`hashed_bigram_ids`: the bigram ``(x_i, x_{i+1})`` at position ``i`` mapped to one of
  ``buckets`` ids by a fixed hash, as fastText does (no bigram vocabulary to build or store);
- :class:`NgramEmbedding`: ``e_i = E[x_i] + G[h(x_i, x_{i+1})]``, word vectors (frozen or
  fine-tuned) plus a learned vector per bigram bucket;
- :func:`token_log_count_ratio`: the naive-Bayes log-count ratio of every token,
  ``r = log((p / |p|₁) / (q / |q|₁))`` over review presence, usable as a prior on attention
  scores (a word with a large ``|r|`` is a strong sentiment clue).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# A large prime: (a·P + b) mod buckets spreads the pairs of a vocabulary of ~10⁵ words.
_PRIME = 1_000_003


def hashed_bigram_ids(x: torch.Tensor, mask: torch.Tensor, buckets: int) -> tuple:
    """``(ids [B, T], mask [B, T])``: at position ``i``, ``1 + (x_i·P + x_{i+1}) mod buckets``
    when both tokens are real, else 0 (padding); the last real position has no bigram. Ids run
    from 1 to ``buckets``, so 0 stays the padding id of an ``nn.Embedding``."""
    if buckets < 1:
        raise ValueError(f"buckets={buckets}: give at least one bucket.")
    left, right = x[:, :-1].long(), x[:, 1:].long()
    real = mask[:, :-1] & mask[:, 1:]
    ids = torch.zeros_like(x, dtype=torch.long)
    ids[:, :-1] = torch.where(real, 1 + (left * _PRIME + right) % buckets, 0)
    pair_mask = torch.zeros_like(mask)
    pair_mask[:, :-1] = real
    return ids, pair_mask


class NgramEmbedding(nn.Module):
    """``e_i = E[x_i] + G[h(x_i, x_{i+1})]``: word vectors ``E`` (frozen unless
    ``fine_tune``) plus a learned vector per bigram bucket ``G`` (starting at zero, so the
    model starts from the word vectors alone). Parameters: ``(buckets + 1)·d`` (+ ``V·d`` when
    fine-tuned)."""

    def __init__(
        self, vectors: torch.Tensor, buckets: int = 2**18, fine_tune: bool = False
    ):
        super().__init__()
        self.buckets = buckets
        self.words = nn.Embedding.from_pretrained(
            vectors.float().clone(), freeze=not fine_tune, padding_idx=0
        )
        self.pairs = nn.Embedding(buckets + 1, vectors.shape[1], padding_idx=0)
        nn.init.zeros_(self.pairs.weight)

    @property
    def dim(self) -> int:
        return self.words.embedding_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ids, _ = hashed_bigram_ids(x, mask, self.buckets)
        return self.words(x) + self.pairs(ids)


def token_log_count_ratio(split, vocab_size: int, alpha: float = 1.0) -> torch.Tensor:
    """``r [vocab_size]``: for each token id, ``log((p / |p|₁) / (q / |q|₁))`` with ``p = α +``
    the number of positive reviews of ``split`` that contain it and ``q`` the same for negative
    reviews (the unigram part of :func:`tme_lib.training.bag_of_words.log_count_ratio`). Computed
    on the training split only; ids 0 (padding) and 1 (out of vocabulary) get 0."""
    p = np.full(vocab_size, alpha, dtype=np.float64)
    q = np.full(vocab_size, alpha, dtype=np.float64)
    for i in range(len(split)):
        ids, label = split[i]
        present = np.unique(ids)
        (p if label > 0.5 else q)[present] += 1
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    r[:2] = 0.0
    return torch.from_numpy(r).float()
