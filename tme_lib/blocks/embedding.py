"""Frozen word vectors and what is computed from them without attention.

``FrozenEmbedding`` looks token ids up in fixed vectors, ``masked_mean`` averages them over the
real tokens, and ``Baseline`` classifies that mean: the model every chapter on IMDB starts
from ("Data and training loop", and TME 9, section "The baseline: the mean of the word
vectors").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, d]`` over the real positions of ``mask [B, T]``: ``(1/n) Σ_{i real} x_i``.

    Section "The baseline: the mean of the word vectors". A row without any real position gives
    a zero vector (not NaN). Returns ``[B, d]``.
    """
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class FrozenEmbedding(nn.Module):
    """Looks token ids up in frozen word vectors ``[V, d]`` (row 0 = padding)."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        if vectors.dim() != 2:
            raise ValueError(
                f"vectors must be a [vocabulary, dim] matrix, got shape {tuple(vectors.shape)}."
            )
        self.register_buffer(
            "vectors", vectors.detach().float().clone(), persistent=False
        )

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.vectors)


class Baseline(nn.Module):
    """Mean of the word vectors, then a linear classifier: ``logit = w·(1/n) Σ_i x_i + b``.

    No attention (every real word weighs ``1/n``), so ``forward`` returns ``(logit, None)``.
    Parameters: ``d + 1``. Section "The baseline: the mean of the word vectors".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)
        self.classifier = nn.Linear(self.embed.dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        return self.classifier(masked_mean(self.embed(x), mask)).squeeze(-1), None
