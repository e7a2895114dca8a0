"""A transformer encoder over token ids: learned word embeddings, positions, the residual
self-attention layers of TME 10, a final normalisation.

Taught in ``notebooks/05_pretraining`` (section "An encoder that learns its words"). It is the
stack of :class:`~tme_lib.blocks.layers.SelfAttentionLayer` that TME 10 teaches, with two
changes that pretraining needs: the word embeddings are learned (``vocab_size × d_model``), not
frozen vectors, and an optional CLS token is a word of the vocabulary (``cls_id``) that the
data pipeline prepends, so that pretraining and fine-tuning see the same inputs.

    h⁰_t = √d · E[x_t] + p_t     (p: sinusoidal, or a learned table of ``max_len`` rows)
    hˡ   = layer_l(hˡ⁻¹)         (l = 1..L, TME 10's residual layer)
    h    = norm(hᴸ)
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import positional_encoding
from .embedding import masked_mean
from .layers import SelfAttentionLayer, make_norm

POSITIONS = ("sinusoidal", "learned")


class TokenEncoder(nn.Module):
    """``forward(x, mask)``: ids ``[B, T]`` (0 = padding) and their mask → ``(h [B, T, d],
    attention [B, L, H, T, T] or None)``; weights only when ``need_weights``.

    Parameters: embeddings ``V·d`` (+ ``max_len·d`` for learned positions), ``n_layers`` layers
    (see :class:`~tme_lib.blocks.layers.SelfAttentionLayer`), final norm ``2d``."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        ffn_mult: int = 4,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        max_len: int = 512,
    ):
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(
                f"positions={positions!r}: use one of {', '.join(POSITIONS)}."
            )
        self.d_model, self.max_len = d_model, max_len
        # Embeddings drawn with standard deviation 1/√d and multiplied by √d in forward (as in
        # Vaswani et al. 2017): a word's vector has unit scale, as the sinusoidal positions
        # do, so neither drowns the other; the output layer, tied to these weights, sees 1/√d.
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.scale = d_model**0.5
        if positions == "learned":
            self.position = nn.Parameter(0.02 * torch.randn(max_len, d_model))
        else:
            self.register_buffer(
                "position", positional_encoding(max_len, d_model), persistent=False
            )
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            SelfAttentionLayer(d_model, n_heads, dropout, "layer", ffn_mult)
            for _ in range(n_layers)
        )
        self.norm = make_norm("layer", d_model)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.shape[1] > self.max_len:
            raise ValueError(
                f"sequences of {x.shape[1]} tokens: this encoder has positions for "
                f"{self.max_len}. Cut the input (the spec's data max_len) first."
            )
        h = self.dropout(self.scale * self.embedding(x) + self.position[: x.shape[1]])
        weights = []
        for layer in self.layers:
            h, w = layer(h, mask, need_weights)
            weights.append(w)
        attention = torch.stack(weights, dim=1) if need_weights else None
        return self.norm(h, mask), attention


def pool(h: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence: ``"cls"`` takes position 0 (the CLS token), ``"mean"`` the
    mean over real tokens (:func:`~tme_lib.blocks.embedding.masked_mean`)."""
    if pooling == "cls":
        return h[:, 0]
    if pooling == "mean":
        return masked_mean(h, mask)
    raise ValueError(f"pooling={pooling!r}: use 'mean' or 'cls'.")
