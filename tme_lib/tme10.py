"""TME 10: self-attention classifiers on frozen word vectors.

Taught in ``notebooks/02_tme10_self_attention`` (sections "A residual self-attention layer",
"Positional encodings" and "A CLS token"). Layer ``l`` computes

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

from . import config
from .attention import MultiHeadAttention, positional_encoding
from .batching import BucketLoader
from .metrics import attention_distance
from .records import RunRecord, load_or_train, read_record, record_path
from .tme9 import load_data, make_loaders
from .train import TrainConfig

NORMS = ("layer", "batch")
POOLINGS = ("mean", "cls")


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

    def __init__(self, d_model: int, n_heads: int = 1, dropout: float = 0.1,
                 norm: str = "layer", ffn_mult: int = 2):
        super().__init__()
        self.norm_attention = make_norm(norm, d_model)
        # No dropout on the attention weights themselves: PyTorch's fused CPU kernel has none,
        # and falls back to a path about 6 times slower (benchmarks/bench_tme10.py).
        self.attention = MultiHeadAttention(d_model, n_heads)
        self.norm_mlp = make_norm(norm, d_model)
        hidden = ffn_mult * d_model
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False,
                bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, T, d]``, ``mask [B, T]`` → ``(x' [B, T, d], weights [B, H, T, T] or None)``;
        ``bias`` is added to the attention scores (see :class:`MultiHeadAttention`)."""
        attended, weights = self.attention(self.norm_attention(x, mask), mask=mask,
                                           need_weights=need_weights, bias=bias)
        z = x + self.dropout(attended)
        return z + self.dropout(self.mlp(self.norm_mlp(z, mask))), weights


def distance_bias(length: int, slope: float, cls: bool = False,
                  device: torch.device | None = None) -> torch.Tensor | None:
    """``b[i, j] = -slope·|i - j|`` ``[length, length]``, added to the attention scores: weights
    decay with distance, ``∝ exp(q_i·k_j/√d) · exp(-slope·|i - j|)``. With a CLS token (position
    0) its row and column stay 0: it still sees, and is seen by, every word. ``None`` when
    ``slope`` is 0."""
    if not slope:
        return None
    position = torch.arange(length, device=device, dtype=torch.float32)
    bias = -slope * (position[:, None] - position[None, :]).abs()
    if cls:
        bias[0, :] = 0.0
        bias[:, 0] = 0.0
    return bias


class SelfAttentionClassifier(nn.Module):
    """Sentiment classifier: frozen word vectors → linear map to ``d_model`` (+ positional
    encodings) → ``n_layers`` self-attention layers → mean over real tokens, or the output of a
    learned CLS token prepended to every review → one logit.

    ``forward(x, mask)`` returns ``(logit [B], attention)``; ``attention`` is
    ``[B, n_layers, n_heads, T', T']`` (``T' = T + 1`` with a CLS token, whose position is 0)
    when ``need_weights`` (an attribute, or the forward argument) is true, else ``None``: the
    fused attention kernel used for training never builds the weights. Sections "A residual
    self-attention layer", "Positional encodings" and "A CLS token".
    """

    def __init__(self, vectors: torch.Tensor, d_model: int = 64, n_layers: int = 3,
                 n_heads: int = 4, norm: str = "layer", pooling: str = "mean",
                 positional: bool = True, dropout: float = 0.1, ffn_mult: int = 2,
                 distance_slope: float = 0.0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not a pooling; use one of {POOLINGS}.")
        self.register_buffer("vectors", vectors.float(), persistent=False)
        self.pooling, self.positional = pooling, positional
        self.distance_slope = distance_slope
        self.need_weights = False
        self.project = nn.Linear(vectors.shape[1], d_model)
        self.cls = nn.Parameter(0.02 * torch.randn(d_model)) if pooling == "cls" else None
        self.layers = nn.ModuleList(
            SelfAttentionLayer(d_model, n_heads, dropout, norm, ffn_mult) for _ in range(n_layers)
        )
        self.norm = make_norm(norm, d_model)
        self.classifier = nn.Linear(d_model, 1)

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[B, T]`` → inputs of the first layer and their mask (CLS prepended at
        position 0 when ``pooling="cls"``; the positional encodings are added after)."""
        h = self.project(self.vectors[x])
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], 1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        if self.positional:
            h = h + positional_encoding(h.shape[1], h.shape[2]).to(h.device)
        return h, mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        need_weights = self.need_weights if need_weights is None else need_weights
        h, mask = self.embed(x, mask)
        bias = distance_bias(h.shape[1], self.distance_slope, self.cls is not None, h.device)
        all_weights = []
        for layer in self.layers:
            h, weights = layer(h, mask, need_weights, bias)
            all_weights.append(weights)
        h = self.norm(h, mask)
        if self.cls is not None:
            pooled = h[:, 0]
        else:
            real = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)
        attention = torch.stack(all_weights, dim=1) if need_weights else None
        return self.classifier(pooled).squeeze(-1), attention


# The variants of the chapter (sections "A residual self-attention layer", "Positional
# encodings", "A CLS token" and "Attention that fades with distance"): the report's four,
# pooling x positional encodings, and ours, mean pooling with a distance bias.
VARIANTS = {
    "self_attention": dict(pooling="mean", positional=False),
    "self_attention_pe": dict(pooling="mean", positional=True),
    "self_attention_cls": dict(pooling="cls", positional=False),
    "self_attention_cls_pe": dict(pooling="cls", positional=True),
    # Ours, not the report's (section "Attention that fades with distance"): the slope was chosen
    # on validation among 0, 1/4 and 1 (seed 0).
    "self_attention_distance": dict(pooling="mean", positional=False, distance_slope=0.25),
}


def build_model(name: str, vectors: torch.Tensor, **kwargs) -> SelfAttentionClassifier:
    """The variant ``name`` (a key of :data:`VARIANTS`) on frozen ``vectors``; ``kwargs`` set
    the sizes (``d_model``, ``n_layers``, ``n_heads``, ``norm``, ``dropout``, ``ffn_mult``) and
    may replace the variant's own settings (``distance_slope``)."""
    if name not in VARIANTS:
        raise KeyError(f"unknown TME 10 model {name!r}; choose one of {', '.join(VARIANTS)}.")
    return SelfAttentionClassifier(vectors, **{**VARIANTS[name], **kwargs})


# --- Experiments: one config per run, the same in the notebook and in tools/run_tme10.py --------

# Full: the data, vectors, split and length (400 tokens) of TME 9 (``tme9.load_data``), so the
# two chapters compare directly. The sizes fit a CPU budget of minutes per run: one head of
# width 32 per layer (the report's layer had one head too), a wider position-wise MLP (cheap: it
# costs T·d², attention T²·d), and ten epochs, since six left the models under-trained (training
# accuracy ≈ validation accuracy, still rising). The trainer's evaluation computes attention
# weights, [B, L, H, T, T], on every tenth validation batch only (``entropy_every``), for the
# entropies; the other batches use the fused kernel. AdamW with a one-cycle schedule (warm-up,
# then annealing); the epoch kept is chosen on validation. Smoke: the planted-word corpus and a
# narrower model, so the notebook runs in seconds.
PROFILE_SETTINGS = {
    "full": dict(data={"corpus": "imdb", "max_len": 400, "vectors": "word2vec"}, batch_size=32,
                 epochs=10, entropy_every=10,
                 model_kwargs=dict(d_model=32, n_layers=3, n_heads=1, dropout=0.1, ffn_mult=4)),
    "smoke": dict(data={"corpus": "toy", "max_len": None, "vectors": "word2vec"}, batch_size=64,
                  epochs=3, model_kwargs=dict(d_model=16, n_layers=3, n_heads=2, dropout=0.1)),
}
OPTIMIZER = dict(optimizer="adamw", lr=2e-3, weight_decay=0.01, scheduler="onecycle", grad_clip=1.0)
# The trainer evaluates with the attention weights on (for their entropy): [B, L, H, T, T]
# floats, hence smaller evaluation batches than TME 9's.
EVAL_BATCH_SIZE = 32


def run_config(model: str, seed: int = 0, distance_slope: float | None = None,
               **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of one TME 10 run in the active profile, named
    ``<model>-adamw-s<seed>``; ``distance_slope`` replaces the variant's slope and adds
    ``-m<slope>`` to the name (the slope search of :func:`slope_search`); ``overrides`` replace
    any other field."""
    if model not in VARIANTS:
        raise KeyError(f"unknown TME 10 model {model!r}; choose one of {', '.join(VARIANTS)}.")
    fields = {**PROFILE_SETTINGS[config.profile()], **OPTIMIZER, **overrides}
    name = f"{model}-adamw-s{seed}"
    if distance_slope is not None:
        fields["model_kwargs"] = {**fields["model_kwargs"], "distance_slope": distance_slope}
        name += f"-m{distance_slope:g}"
    return TrainConfig(chapter="tme10", name=name, model=model, seed=seed, **fields)


def run(cfg: TrainConfig, data, vectors: torch.Tensor, progress: bool = True) -> RunRecord:
    """Load the record of ``cfg`` if it exists, else train it (:func:`tme_lib.records.load_or_train`).

    Training uses the fused attention kernel (no weights); the trainer's evaluation passes turn
    ``need_weights`` on, so the entropies of each epoch are those of the validation reviews, in
    eval mode."""
    return load_or_train(cfg, lambda: build_model(cfg.model, vectors, **cfg.model_kwargs),
                         lambda: make_loaders(data, cfg.batch_size, cfg.seed, EVAL_BATCH_SIZE),
                         progress=progress)


# Seeds: every variant is trained with the first seeds of ``SEEDS``; the variants of
# ``MORE_SEEDS`` get more, for a mean ± sd. In the full profile these are the best of the
# report's four variants on validation accuracy at seed 0, ``self_attention``, and the best of
# all five, ``self_attention_distance`` (chosen on validation, never on test).
SEEDS = {"full": (0,), "smoke": (0,)}
MORE_SEEDS = {"full": {"self_attention": (1, 2, 3, 4),
                       "self_attention_distance": (1, 2, 3, 4, 5, 6, 7)},
              "smoke": {}}


def plan() -> list[TrainConfig]:
    """The runs of the chapter's results table in the active profile: the five variants, seed by
    seed, then the extra seeds (the slope search is :func:`slope_search`).
    ``tools/run_tme10.py`` trains them; the notebook loads them."""
    runs = [run_config(name, seed) for seed in SEEDS[config.profile()] for name in VARIANTS]
    return runs + [run_config(name, seed) for name, seeds in MORE_SEEDS[config.profile()].items()
                   for seed in seeds]


# The slopes of ``self_attention_distance`` tried besides its own (1/4), at seed 0, to choose it
# on validation; slope 0 is ``self_attention`` itself. Section "Attention that fades with distance".
OTHER_SLOPES = {"full": (1.0,), "smoke": ()}


def slope_search() -> list[TrainConfig]:
    """The runs of ``self_attention_distance`` with the slopes of :data:`OTHER_SLOPES` (seed 0)."""
    return [run_config("self_attention_distance", 0, distance_slope=slope)
            for slope in OTHER_SLOPES[config.profile()]]


def existing_records(configs: list[TrainConfig]) -> list[RunRecord]:
    """The records of ``configs`` that exist (a record of an older config is never used)."""
    return [read_record(record_path(cfg)) for cfg in configs if record_path(cfg).exists()]


def plan_records() -> list[RunRecord]:
    """The records of :func:`plan` that exist."""
    return existing_records(plan())


def largest_rise(values: list[float]) -> float:
    """Largest increase between consecutive values (``max_e v[e] - v[e-1]``, 0 if it never
    rises): applied to the validation loss per epoch, it measures how unstable a run is."""
    return max([0.0] + [b - a for a, b in zip(values, values[1:])])


@torch.no_grad()
def mean_attention_distance(model: SelfAttentionClassifier, split, n_reviews: int = 256,
                            batch_size: int = 32) -> torch.Tensor:
    """Average distance ``|i - j|`` under the attention of each layer, ``[n_layers]``, over the
    first ``n_reviews`` reviews of ``split``, rounded up to whole batches (mean over real
    queries, heads and reviews; see :func:`tme_lib.metrics.attention_distance`). For models
    without a CLS token. Section "What do the heads look at?"."""
    model.eval()
    device = next(model.parameters()).device
    totals, count = 0.0, 0
    for batch in BucketLoader(split, batch_size, shuffle=False, bucket=False):
        batch = batch.to(device)
        _, weights = model(batch.x, batch.mask, need_weights=True)  # [B, L, H, T, T]
        totals = totals + attention_distance(weights, batch.mask).mean(-1).sum(0).cpu()
        count += len(batch.x)
        if count >= n_reviews:
            break
    return totals / count


@torch.no_grad()
def review_attention(model: SelfAttentionClassifier, ids: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The logit and attention weights ``[n_layers, n_heads, T', T']`` of one review (token ids
    ``[T]``, no padding), for the maps of section "What do the heads look at?"; with a CLS token
    ``T' = T + 1`` and position 0 is the CLS token."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(ids, dtype=torch.long, device=device)[None]
    logit, weights = model(x, torch.ones_like(x, dtype=torch.bool), need_weights=True)
    return logit.item(), weights[0].cpu()
