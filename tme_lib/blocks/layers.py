"""Layers shared by the self-attention models: normalisations that respect padding and the
residual self-attention layer.

Taught in ``notebooks/02_tme10_self_attention``, section "A residual self-attention layer";
the aptamer transformer stacks the same layer. Layer ``l`` computes

    x^(l) = g(x^(l-1) + f(x̃^(l-1)))

where ``x̃`` is the normalised input (LayerNorm, or a BatchNorm whose statistics ignore padding),
``f`` is multi-head self-attention with learned query, key and value maps shared by all positions
of the layer, and ``g`` is a position-wise network. To keep an identity path through every layer
we take ``g(z) = z + MLP(norm(z))`` (a "pre-norm" transformer layer); dropout follows ``f`` and
the MLP (not the attention weights).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadAttention

NORMS = ("layer", "batch")


class MaskedBatchNorm(nn.Module):
    """BatchNorm over the features of the real tokens only.

    ``x̃ = γ·(x - μ)/√(σ² + ε) + β`` with ``μ, σ²`` the mean and variance of each feature over
    all real tokens of the batch (padding would otherwise pull them towards its own values, and
    a review's output would depend on how much padding its batch has). Running statistics are
    used in eval mode, as in :class:`torch.nn.BatchNorm1d`.
    """

    def __init__(self, d: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.register_buffer("running_mean", torch.zeros(d))
        self.register_buffer("running_var", torch.ones(d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training:
            real = x[mask]  # [n_real, d]
            mean, var = real.mean(dim=0), real.var(dim=0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(real.var(dim=0, unbiased=True), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class _LayerNorm(nn.LayerNorm):
    """LayerNorm that accepts (and ignores) the mask, so both norms have one signature."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


def make_norm(kind: str, d: int) -> nn.Module:
    """``"layer"``: LayerNorm over each token's features; ``"batch"``: :class:`MaskedBatchNorm`."""
    if kind == "layer":
        return _LayerNorm(d)
    if kind == "batch":
        return MaskedBatchNorm(d)
    raise ValueError(f"norm={kind!r} is not a normalisation; use one of {NORMS}.")


class SelfAttentionLayer(nn.Module):
    """One residual self-attention layer, ``x ↦ g(x + f(x̃))`` with ``g(z) = z + MLP(z̃)``.

    Parameters: attention ``4·(d² + d)``, MLP ``d·h + h + h·d + d`` (``h = ffn_mult·d``), two
    norms ``2·2d``. Section "A residual self-attention layer".
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        dropout: float = 0.1,
        norm: str = "layer",
        ffn_mult: int = 2,
    ):
        super().__init__()
        self.norm_attention = make_norm(norm, d_model)
        # No dropout on the attention weights themselves: PyTorch's fused CPU kernel has none,
        # and falls back to a path about 6 times slower (benchmarks/bench_tme10.py).
        self.attention = MultiHeadAttention(d_model, n_heads)
        self.norm_mlp = make_norm(norm, d_model)
        hidden = ffn_mult * d_model
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        need_weights: bool = False,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, T, d]``, ``mask [B, T]`` → ``(x' [B, T, d], weights [B, H, T, T] or None)``;
        ``bias`` is added to the attention scores (see :class:`MultiHeadAttention`)."""
        attended, weights = self.attention(
            self.norm_attention(x, mask), mask=mask, need_weights=need_weights, bias=bias
        )
        z = x + self.dropout(attended)
        return z + self.dropout(self.mlp(self.norm_mlp(z, mask))), weights
