"""Attention primitives shared by the course: the masked softmax, global attention with one
query per sequence, scaled dot-product attention, multi-head attention, a distance bias on the
scores and sinusoidal positional encodings.

Global attention (:func:`attend`) is taught in ``notebooks/01_tme9_global_attention``; the rest
in ``notebooks/02_tme10_self_attention`` (sections "Scaled dot-product attention", "Several
heads", "Positional encodings" and "Attention that fades with distance"); the aptamer chapter
uses them too. Nothing here
knows about text: a sequence is a tensor ``[B, T, d]`` and a key-padding ``mask`` is a
``BoolTensor[B, T]`` that is ``True`` on real elements.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# The length guard. Attention costs T² per head: beyond these bounds a forward pass takes
# minutes and the score matrices take gigabytes, so the course refuses instead of trying.
# Reviews are cut to the spec's ``data.max_len`` (400 tokens) before they reach a model.
MAX_LENGTH = 4096  # tokens per sequence, any path
# memory of the [B, heads, Tq, Tk] scores the explicit path keeps
MAX_SCORE_BYTES = 2 * 1024**3


def _size(n_bytes: float) -> str:
    return (
        f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"
    )


def check_length(
    batch: int, heads: int, n_query: int, n_key: int, explicit: bool
) -> None:
    """Raise ``ValueError`` when a sequence is longer than :data:`MAX_LENGTH`, or when the
    explicit path (weights kept) would need more than :data:`MAX_SCORE_BYTES` for its scores;
    the message gives the bound and the memory asked for."""
    length = max(n_query, n_key)
    need = 4 * batch * heads * n_query * n_key  # float32 scores
    if length > MAX_LENGTH:
        raise ValueError(
            f"sequences of {length} tokens: self-attention here handles at most {MAX_LENGTH} "
            f"(its scores alone would take {_size(need)} for this batch). Cut the "
            "input first: the chapters cut reviews at the spec's data max_len."
        )
    if explicit and need > MAX_SCORE_BYTES:
        raise ValueError(
            f"keeping the attention weights of {batch} sequences × {heads} heads × "
            f"{n_query}×{n_key} positions needs {_size(need)}, above the bound of "
            f"{_size(MAX_SCORE_BYTES)}: ask for the weights of fewer or shorter "
            "sequences, or call without need_weights."
        )


def _key_mask(mask: torch.Tensor, ndim: int) -> torch.Tensor:
    """View a key-padding mask ``[B, Tk]`` as ``[B, 1, ..., 1, Tk]`` so it broadcasts against
    scores ``[B, ..., Tq, Tk]`` (``ndim`` dimensions)."""
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a BoolTensor (True on real keys), got {mask.dtype}."
        )
    return mask.reshape(mask.shape[0], *([1] * (ndim - 2)), mask.shape[-1])


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``p_i = exp(s_i) / Σ_{j real} exp(s_j)`` over the last dimension, with exactly ``p_i = 0``
    where ``mask`` (broadcastable to ``scores``) is False; a row without any real position gives
    all zeros, not NaN. Taught in TME 9, "Simple attention: one learned question"; used by
    every attention of the course."""
    # The most negative finite number (not -inf): exp() of it, minus the row's maximum, is exactly
    # 0 whenever the row has a real position, and an all-padding row stays finite; multiplying by
    # the mask then zeroes such rows.
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1) * mask


def attend(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
):
    """Global attention with one query per review.

    ``p(a_i|t) = softmax_i(q·k_i)`` over the real tokens, ``t̂ = Σ_i p(a_i|t) v_i``.
    ``query [B, d]`` (or ``[d]``, shared by all reviews), ``keys [B, T, d]``,
    ``values [B, T, dv]``, ``mask [B, T]``. Returns ``(t̂ [B, dv], weights [B, T])``.
    Section "Simple attention: one learned question".

    No ``1/√d`` here, unlike self-attention (:func:`scaled_dot_product_attention`): the
    query is a learned
    vector (or map), so a scale would only make Adam take √d times longer to sharpen it.
    """
    scores = (keys @ query.expand(keys.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # [B, T]
    weights = masked_softmax(scores, mask)
    return (weights.unsqueeze(-1) * values).sum(1), weights


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, returning the values and the weights.

    ``weights = softmax(query @ keyᵀ / √d + bias)`` over the keys, ``values = weights @ value``,
    where ``d`` is the last dimension of ``query`` and ``key`` and ``bias`` (optional, a float
    tensor broadcastable to the scores ``[B, ..., Tq, Tk]``) adds what the model knows about each
    (query, key) pair beyond their vectors (the aptamer chapter's base-pair bias). Section
    "Scaled dot-product attention".

    Shapes: ``query [B, ..., Tq, d]``, ``key [B, ..., Tk, d]``, ``value [B, ..., Tk, dv]``;
    ``mask`` is a key-padding mask ``BoolTensor[B, Tk]`` (``True`` on real keys). Padding keys get
    exactly zero weight; a query whose keys are all padding gets all-zero weights and a zero
    value (not NaN). Returns ``(values [B, ..., Tq, dv], weights [B, ..., Tq, Tk])``.
    """
    # Scaling the query rather than the scores divides d·Tq numbers instead of Tq·Tk.
    scores = (query / math.sqrt(query.shape[-1])) @ key.transpose(-2, -1)
    if bias is not None:
        scores = scores + bias
    if mask is None:
        weights = scores.softmax(dim=-1)
        return weights @ value, weights
    weights = masked_softmax(scores, _key_mask(mask, scores.ndim))
    return weights @ value, weights


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[B, T, n_heads·dh] -> [B, n_heads, T, dh]``: head ``h`` gets features
    ``h·dh … (h+1)·dh-1``."""
    batch, length, width = x.shape
    if width % n_heads:
        raise ValueError(f"width {width} is not divisible by n_heads={n_heads}.")
    return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, n_heads, T, dh] -> [B, T, n_heads·dh]``, the inverse of :func:`split_heads`."""
    batch, n_heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, n_heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with learned query, key, value and output maps.

    For each head ``h``: ``head_h = attention(X W_h^q, X W_h^k, X W_h^v)`` with the scaled dot
    product above on ``d_model / n_heads`` features; the heads are concatenated and mixed by
    ``W^o``. Section "Several heads". Parameters: ``4·(d_model² + d_model)``.

    ``forward(..., need_weights=True)`` computes the weights with
    :func:`scaled_dot_product_attention` and returns them (for pictures and entropies);
    ``need_weights=False`` calls PyTorch's fused kernel, which is faster and never stores the
    ``T×T`` weights, and returns ``None`` in their place. Both give the same values.
    ``dropout`` is applied to the attention weights during training.
    """

    def __init__(self, d_model: int, n_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Queries from ``x [B, Tq, d_model]``, keys and values from ``context [B, Tk, d_model]``
        (``x`` itself when ``None``: self-attention). ``mask``: key padding ``[B, Tk]``;
        ``bias``: added to the scores, broadcastable to ``[B, n_heads, Tq, Tk]``.
        Returns ``(output [B, Tq, d_model], weights [B, n_heads, Tq, Tk] or None)``."""
        context = x if context is None else context
        check_length(x.shape[0], self.n_heads, x.shape[1], context.shape[1], need_weights)
        q = split_heads(self.query(x), self.n_heads)
        k = split_heads(self.key(context), self.n_heads)
        v = split_heads(self.value(context), self.n_heads)
        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            values, weights = scaled_dot_product_attention(q, k, v, mask, bias)
            if p_drop:
                values = F.dropout(weights, p_drop, training=True) @ v
        else:
            keep = None if mask is None else _key_mask(mask, 4)
            attn_mask = keep
            if bias is not None:  # one float mask: the bias, and -inf on padding keys
                attn_mask = bias if keep is None else bias.masked_fill(~keep, -math.inf)
            values = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=p_drop
            )
            if mask is not None:
                # Same convention as the explicit path: no real key, zero value.
                values = values * keep.any(dim=-1, keepdim=True)
            weights = None
        return self.out(merge_heads(values)), weights


def positional_encoding(n_positions: int, d: int) -> torch.Tensor:
    """Sinusoidal positional encodings, a ``FloatTensor[n_positions, d]``.

    ``pe[i, h] = sin(i / 10000^(h/d))`` for even ``h`` and ``cos(i / 10000^((h-1)/d))`` for odd
    ``h``: each pair of features turns at its own frequency, so ``pe[i] · pe[j]`` depends only on
    ``i - j``. Section "Positional encodings".
    """
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    even = torch.arange(0, d, 2, dtype=torch.float32)
    # [n, ceil(d/2)], the angle of features h and h+1
    angle = position / 10000 ** (even / d)
    pe = torch.empty(n_positions, d)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d // 2])
    return pe


def distance_bias(
    length: int, slope: float, cls: bool = False, device: torch.device | None = None
) -> torch.Tensor | None:
    """``b[i, j] = -slope·|i - j|`` ``[length, length]``, added to the attention scores: weights
    decay with distance, ``∝ exp(q_i·k_j/√d) · exp(-slope·|i - j|)``. With a CLS token (position
    0) its row and column stay 0: it still sees, and is seen by, every word. ``None`` when
    ``slope`` is 0. Refuses lengths above :data:`MAX_LENGTH` (the bias is ``length²``
    floats)."""
    if not slope:
        return None
    check_length(1, 1, length, length, explicit=False)
    position = torch.arange(length, device=device, dtype=torch.float32)
    bias = -slope * (position[:, None] - position[None, :]).abs()
    if cls:
        bias[0, :] = 0.0
        bias[:, 0] = 0.0
    return bias
