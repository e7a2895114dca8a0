"""Models that read a DNA strand and predict one number (its folding free energy).

Taught in ``notebooks/03_aptamers`` (sections "The source project's model" and "A transformer
that sees base pairs"). Both follow the course convention ``forward(x, mask) -> (prediction [B],
attention or None)`` with ``x`` a ``LongTensor[B, L]`` of ids 0..3 (A, C, G, T).
"""

from __future__ import annotations

import torch
from torch import nn

from tme_lib.blocks.attention import positional_encoding
from tme_lib.blocks.layers import SelfAttentionLayer
from tme_lib.chapters.aptamers.sequences import LENGTH


class SourceTransformer(nn.Module):
    """The source project's regressor, layer for layer.

    ``Embedding(vocab, 128)`` + sinusoidal positional encodings → 3 ×
    ``nn.TransformerEncoderLayer(128, 8 heads, dim_feedforward=2048)`` → flatten the ``L × 128``
    outputs → ``Linear(L·128, 1)``. The project set the vocabulary to the sequence length (30)
    by mistake, so 26 of its 30 embedding rows are never used: 1,786,753 parameters, against
    1,783,425 with ``vocab=4``. Its slides end with a ReLU, which the code rightly left out: a
    folding free energy is negative, and ``ReLU(ŷ) ≥ 0`` would clamp every prediction to 0.
    """

    def __init__(
        self,
        vocab: int = LENGTH,
        d_model: int = 128,
        n_heads: int = 8,
        n_layers: int = 3,
        dim_feedforward: int = 2048,
        length: int = LENGTH,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.register_buffer("pe", positional_encoding(length, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward, dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(length * d_model, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, None]:
        # every strand is full length: no padding
        h = self.encoder(self.embedding(x) + self.pe)
        return self.head(h.flatten(1)).squeeze(-1), None


class PairBias(nn.Module):
    """What each pair of positions ``(i, j)`` could contribute to a helix, as attention biases.

    A helix is a run of stacked base pairs ``(i, j), (i+1, j-1), …``; the nearest-neighbour model
    of folding gives each stack an energy that depends on its four bases. So each pair starts from
    an embedding of its stack ``(x_i, x_j, x_{i+1}, x_{j-1})`` (a 5th letter marks "beyond the
    strand's end") plus one of the offset ``j - i`` (a hairpin loop needs ≥ 3 unpaired bases),
    ``channels`` features in all; ``conv_layers`` residual 3 × 3 convolutions over the ``L × L``
    map let a pair see its neighbours along the helix. Two outputs:

    * ``bias [n_layers, B, n_heads, L, L]``, added to the attention scores of each layer and
      head: query ``i`` is told which keys ``j`` it could pair with;
    * ``summary [B, channels]``: ``log Σ_{i,j} exp(z_ij)`` per channel, a soft maximum over all
      pairs, shaped like the ensemble free energy ``-RT log Σ_s exp(-E_s / RT)``.
    """

    def __init__(
        self,
        n_layers: int,
        n_heads: int,
        channels: int = 16,
        conv_layers: int = 2,
        length: int = LENGTH,
    ):
        super().__init__()
        self.n_layers, self.n_heads, self.length = n_layers, n_heads, length
        self.stack = nn.Embedding(5**4, channels)
        self.offset = nn.Embedding(2 * length - 1, channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(conv_layers)
        )
        self.to_bias = nn.Linear(channels, n_layers * n_heads)
        offsets = (
            torch.arange(length)[None, :] - torch.arange(length)[:, None] + length - 1
        )
        self.register_buffer("offsets", offsets, persistent=False)

    @staticmethod
    def stack_ids(x: torch.Tensor) -> torch.Tensor:
        """``x [B, L]`` → ``[B, L, L]`` ids ``((x_i·5 + x_j)·5 + x_{i+1})·5 + x_{j-1}`` in
        ``0 … 624``, with letter 4 for positions outside the strand."""
        length = x.shape[1]
        padded = nn.functional.pad(x, (1, 1), value=4)
        here, after, before = padded[:, 1:-1], padded[:, 2:], padded[:, :-2]
        return (
            ((here[:, :, None] * 5 + here[:, None, :]) * 5 + after[:, :, None]) * 5
            + before[:, None, :]
        ).view(-1, length, length)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length = x.shape
        z = self.stack(self.stack_ids(x.long())) + self.offset(
            self.offsets[:length, :length]
        )
        z = z.permute(0, 3, 1, 2)  # [B, C, L, L]
        for conv in self.convs:
            z = z + nn.functional.gelu(conv(z))
        summary = z.flatten(2).logsumexp(dim=-1)  # [B, C]
        bias = self.to_bias(z.permute(0, 2, 3, 1))  # [B, L, L, n_layers·n_heads]
        bias = bias.view(batch, length, length, self.n_layers, self.n_heads)
        return bias.permute(3, 0, 4, 1, 2), summary


class AptamerTransformer(nn.Module):
    """Our regressor: a convolution stem, then pre-norm self-attention layers, then a small head.

    * ``Embedding(4, d)`` plus a learned embedding of each of the ``L`` positions (the strands
      all have length ``L``, so absolute positions are cheap and let attention learn loop
      lengths);
    * a stem of ``conv_layers`` residual ``Conv1d(d, d, conv_width)`` + GELU: each token then
      describes its neighbourhood, the few stacked bases that make a helix stable, so that one
      query–key dot product can score the pairing of a whole segment with a complementary one;
    * ``n_layers`` × :class:`tme_lib.blocks.layers.SelfAttentionLayer` (multi-head attention from
      :mod:`tme_lib.blocks.attention`, residual, LayerNorm, MLP);
    * mean over positions → ``Linear(d, d)`` → GELU → ``Linear(d, 1)``, rescaled as
      ``ŷ = target_mean + target_scale · out`` so the network works on standardised targets;
    * with ``pair_channels > 0``, a :class:`PairBias` adds a base-pair bias to every attention
      score, and its soft maximum over pairs joins the pooled tokens at the head.

    ``attention`` is ``[B, n_layers, n_heads, L, L]`` when ``need_weights`` (an attribute, or the
    forward argument) is true, else ``None``.
    """

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        conv_width: int = 5,
        conv_layers: int = 1,
        ffn_mult: int = 2,
        dropout: float = 0.0,
        length: int = LENGTH,
        target_mean: float = 0.0,
        target_scale: float = 1.0,
        pair_channels: int = 0,
    ):
        super().__init__()
        self.need_weights = False
        self.embedding = nn.Embedding(4, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(length, d_model))
        self.stem = nn.ModuleList(
            nn.Conv1d(d_model, d_model, conv_width, padding=conv_width // 2)
            for _ in range(conv_layers)
        )
        self.layers = nn.ModuleList(
            SelfAttentionLayer(d_model, n_heads, dropout, "layer", ffn_mult)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.pairs = (
            PairBias(n_layers, n_heads, pair_channels, length=length)
            if pair_channels
            else None
        )
        self.head = nn.Sequential(
            nn.Linear(d_model + pair_channels, d_model), nn.GELU(), nn.Linear(d_model, 1)
        )
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_scale", torch.tensor(float(target_scale)))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        need_weights = self.need_weights if need_weights is None else need_weights
        h = self.embedding(x) + self.position[: x.shape[1]]
        for conv in self.stem:
            h = h + nn.functional.gelu(conv(h.transpose(1, 2))).transpose(1, 2)
        biases, summary = (
            self.pairs(x) if self.pairs is not None else ([None] * len(self.layers), None)
        )
        weights = []
        for layer, bias in zip(self.layers, biases):
            h, w = layer(h, mask, need_weights, bias)
            weights.append(w)
        pooled = self.norm(h).mean(dim=1)  # every position is real: no mask needed
        if summary is not None:
            pooled = torch.cat([pooled, summary], dim=-1)
        out = self.head(pooled).squeeze(-1) * self.target_scale + self.target_mean
        return out, (torch.stack(weights, dim=1) if need_weights else None)
