"""TME 9 models: global attention over frozen word vectors for IMDB sentiment.

Taught in ``notebooks/01_tme9_global_attention``. Every model embeds the token ids with frozen
50-d word vectors (a non-persistent buffer: checkpoints hold only what was learned), pools the
review into one vector ``t̂`` and classifies it with a linear layer ``logit = w·t̂ + b``.
They differ only in the pooling:

=========================  ===============================================================
``baseline``               ``t̂ = (1/n) Σ_i x_i`` over the ``n`` real tokens
``attention_simple``       one learned query ``q``: ``p(a_i|t) = softmax_i(q·x_i / √d)``,
                           ``t̂ = Σ_i p(a_i|t) x_i``
``attention_query``        ``q(t) = W_q x̄ + b_q`` from the mean ``x̄``; keys, values ``= x_i``
``attention_query_value``  as above with learned values ``v(x_i) = tanh(W_v x_i + b_v)``
``attention_lstm``         the same attention over the states of a bidirectional LSTM
=========================  ===============================================================

Padding (mask ``False``) never counts: the mean divides by the number of real tokens and the
attention gives padding exactly zero weight (:func:`tme_lib.attention.scaled_dot_product_attention`,
the course's one masked softmax; its ``1/√d`` only rescales the learned query). Every model's
``forward(x, mask)`` returns ``(logit [B], weights [B, T] or None)``.

The entropy penalty of section "Penalising the entropy" is not a model: any attention model
trained with ``TrainConfig(entropy_weight=λ)`` minimises ``L + λ·mean_b H(p(·|t_b))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tme_lib.attention import scaled_dot_product_attention


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, d]`` over the real positions of ``mask [B, T]``: ``(1/n) Σ_{i real} x_i``.

    Section "The baseline: the mean of the word vectors". A row without any real position gives
    a zero vector (not NaN). Returns ``[B, d]``.
    """
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor):
    """Global attention with one query per review.

    ``p(a_i|t) = softmax_i(q·k_i / √d)`` over the real tokens, ``t̂ = Σ_i p(a_i|t) v_i``.
    ``query [B, d]`` (or ``[d]``, shared by all reviews), ``keys [B, T, d]``,
    ``values [B, T, dv]``, ``mask [B, T]``. Returns ``(t̂ [B, dv], weights [B, T])``.
    Section "Simple attention: one learned question".
    """
    query = query.expand(keys.shape[0], -1).unsqueeze(1)  # [B, 1, d]: one query per review
    pooled, weights = scaled_dot_product_attention(query, keys, values, mask)
    return pooled.squeeze(1), weights.squeeze(1)


class FrozenEmbedding(nn.Module):
    """Looks token ids up in frozen word vectors ``[V, d]`` (row 0 = padding)."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        if vectors.dim() != 2:
            raise ValueError(f"vectors must be a [vocabulary, dim] matrix, got shape {tuple(vectors.shape)}.")
        self.register_buffer("vectors", vectors.detach().float().clone(), persistent=False)

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


class _GlobalAttention(nn.Module):
    """Shared skeleton: embed, ``pool`` (subclasses), then a linear classifier on ``t̂``."""

    def __init__(self, vectors: torch.Tensor, pooled_dim: int | None = None):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)
        self.classifier = nn.Linear(pooled_dim or self.embed.dim, 1)

    def pool(self, e: torch.Tensor, mask: torch.Tensor):
        """``(t̂ [B, dv], weights [B, T])`` from the embedded review ``e [B, T, d]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        pooled, weights = self.pool(self.embed(x), mask)
        return self.classifier(pooled).squeeze(-1), weights


class AttentionSimple(_GlobalAttention):
    """One learned query ``q`` shared by all reviews: ``p(a_i|t) = softmax_i(q·x_i / √d)``,
    ``t̂ = Σ_i p(a_i|t) x_i``. Parameters: ``d`` (query) ``+ d + 1`` (classifier).

    ``q`` starts at zero, so training starts from the baseline's uniform weights.
    Section "Simple attention: one learned question".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.query = nn.Parameter(torch.zeros(self.embed.dim))

    def pool(self, e, mask):
        return attend(self.query, e, e, mask)


class AttentionQuery(_GlobalAttention):
    """A question that depends on the review: ``q(t) = W_q x̄ + b_q`` with ``x̄`` the masked mean;
    keys and values are the word vectors: ``t̂ = Σ_i softmax_i(q(t)·x_i / √d) x_i``.
    Parameters: ``d² + d`` (query map) ``+ d + 1``. The query map starts at zero (uniform weights).
    Section "A question per review".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.query = nn.Linear(self.embed.dim, self.embed.dim)
        nn.init.zeros_(self.query.weight)
        nn.init.zeros_(self.query.bias)

    def pool(self, e, mask):
        return attend(self.query(masked_mean(e, mask)), e, self.values(e), mask)

    def values(self, e: torch.Tensor) -> torch.Tensor:
        return e


class AttentionQueryValue(AttentionQuery):
    """As :class:`AttentionQuery` with learned values ``v(x_i) = tanh(W_v x_i + b_v)``:
    ``t̂ = Σ_i p(a_i|t) v(x_i)``. Parameters: ``2(d² + d) + d + 1``.
    Section "Learned values".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.value = nn.Linear(self.embed.dim, self.embed.dim)

    def values(self, e: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.value(e))


class AttentionLSTM(_GlobalAttention):
    """Attention over the states ``h_i = [→h_i; ←h_i]`` of a bidirectional LSTM.

    ``q(t) = W_q h̄ + b_q`` from the masked mean of the states; keys and values are the states:
    ``t̂ = Σ_i softmax_i(q(t)·h_i / √(2H)) h_i``. Section "Attention over LSTM states".

    Why bidirectional: a left-to-right state ``→h_i`` only knows words ``1..i``, so the late states
    summarise more of the review and the attention drifts to the end of it; with both directions
    every state describes its word in the context of the whole review, and the weight ``p(a_i|t)``
    still points at a place in the text.

    Padding never reaches a state: the sequences are packed with their true lengths, so the
    backward LSTM starts on each review's last real word (a padded batch would make it read the
    padding first). Padding must be at the end of each row (as ``BucketLoader`` builds batches).
    ``dropout`` applies to the states during training. Parameters:
    ``2·4H(d + H + 2)`` (LSTM, both directions, two biases) ``+ (2H)² + 2H`` (query)
    ``+ 2H + 1`` (classifier).
    """

    def __init__(self, vectors: torch.Tensor, hidden: int = 64, dropout: float = 0.0):
        super().__init__(vectors, pooled_dim=2 * hidden)
        self.lstm = nn.LSTM(self.embed.dim, hidden, batch_first=True, bidirectional=True)
        self.query = nn.Linear(2 * hidden, 2 * hidden)
        self.dropout = nn.Dropout(dropout)

    def states(self, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """LSTM states ``[B, T, 2H]`` of the real tokens only (zero at padding positions)."""
        lengths = mask.sum(1).clamp_min(1).cpu()  # a review needs one step; its weights stay zero
        packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=e.shape[1])
        return h

    def pool(self, e, mask):
        h = self.dropout(self.states(e, mask))
        return attend(self.query(masked_mean(h, mask)), h, h, mask)


MODELS = {
    "baseline": Baseline,
    "attention_simple": AttentionSimple,
    "attention_query": AttentionQuery,
    "attention_query_value": AttentionQueryValue,
    "attention_lstm": AttentionLSTM,
}


def build_model(name: str, vectors: torch.Tensor, **kwargs) -> nn.Module:
    """The TME 9 model called ``name`` (a key of :data:`MODELS`) on frozen ``vectors``."""
    if name not in MODELS:
        raise KeyError(f"unknown TME 9 model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name](vectors, **kwargs)
