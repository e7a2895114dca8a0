"""TME 10: self-attention classifiers on frozen word vectors.

Taught in ``notebooks/02_tme10_self_attention`` (sections "A residual self-attention layer",
"Positional encodings", "A CLS token" and "Attention that fades with distance"). The layer
itself, its normalisations and the attention primitives are shared building blocks
(:mod:`tme_lib.blocks.layers`, :mod:`tme_lib.blocks.attention`); this module assembles them into
a classifier and declares the chapter's runs.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from .. import config
from ..blocks.attention import distance_bias, positional_encoding
from ..blocks.layers import SelfAttentionLayer, make_norm
from ..data.batching import BucketLoader
from ..data.corpus import data_settings
from ..data.vectors import vector_settings
from ..training.metrics import attention_distance
from ..training.records import RESULT_COLUMNS, RunRecord, existing_records, results_table
from ..training.spec import (
    SEEDS as CHEAP_SEEDS,
)
from ..training.spec import (
    Spec,
    Training,
    deep_merge,
    model_settings,
    schedule,
)
from ..training.text_runs import run_text, text_data

CHAPTER = "tme10"
POOLINGS = ("mean", "cls")


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

    def __init__(
        self,
        vectors: torch.Tensor,
        d_model: int = 64,
        n_layers: int = 3,
        n_heads: int = 4,
        norm: str = "layer",
        pooling: str = "mean",
        positional: bool = True,
        dropout: float = 0.1,
        ffn_mult: int = 2,
        distance_slope: float = 0.0,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(
                f"pooling={pooling!r} is not a pooling; use one of {POOLINGS}."
            )
        self.register_buffer("vectors", vectors.float(), persistent=False)
        self.pooling, self.positional = pooling, positional
        self.distance_slope = distance_slope
        self.need_weights = False
        self.project = nn.Linear(vectors.shape[1], d_model)
        self.cls = nn.Parameter(0.02 * torch.randn(d_model)) if pooling == "cls" else None
        self.layers = nn.ModuleList(
            SelfAttentionLayer(d_model, n_heads, dropout, norm, ffn_mult)
            for _ in range(n_layers)
        )
        self.norm = make_norm(norm, d_model)
        self.classifier = nn.Linear(d_model, 1)

    def embed(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[B, T]`` → inputs of the first layer and their mask (CLS prepended at
        position 0 when ``pooling="cls"``; the positional encodings are added after)."""
        h = self.project(self.vectors[x])
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], 1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        if self.positional:
            h = h + positional_encoding(h.shape[1], h.shape[2]).to(h.device)
        return h, mask

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        need_weights = self.need_weights if need_weights is None else need_weights
        h, mask = self.embed(x, mask)
        bias = distance_bias(
            h.shape[1], self.distance_slope, self.cls is not None, h.device
        )
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
    "self_attention_distance": dict(
        pooling="mean", positional=False, distance_slope=0.25
    ),
}


MODELS = {name: SelfAttentionClassifier for name in VARIANTS}


def build_model(name: str, vectors: torch.Tensor, **kwargs) -> SelfAttentionClassifier:
    """The variant ``name`` (a key of :data:`VARIANTS`) on frozen ``vectors``; ``kwargs`` set
    the sizes (``d_model``, ``n_layers``, ``n_heads``, ``norm``, ``dropout``, ``ffn_mult``) and
    may replace the variant's own settings (``distance_slope``)."""
    if name not in VARIANTS:
        raise KeyError(
            f"unknown TME 10 model {name!r}; choose one of {', '.join(VARIANTS)}."
        )
    return SelfAttentionClassifier(vectors, **{**VARIANTS[name], **kwargs})


# --- Experiments: one spec per run, the same in the notebook and in the run tool ---------------

# Full: the data, vectors, split and length (400 tokens) of TME 9, so the two chapters compare
# directly. The sizes fit a CPU budget of minutes per run: one head of width 32 per layer (the
# report's layer had one head too), a wider position-wise MLP (cheap: it costs T·d², attention
# T²·d), and ten epochs, since six left the models under-trained (training accuracy ≈
# validation accuracy, still rising). The trainer's evaluation computes attention weights,
# [B, L, H, T, T], on every tenth validation batch only (``entropy_every``), for the entropies;
# the other batches use the fused kernel; hence also evaluation batches of 32. AdamW with a
# one-cycle schedule (warm-up, then annealing); the epoch kept is chosen on validation. Smoke:
# the planted-word corpus and a narrower model, so the notebook runs in seconds.
# The fixed reviews on which the entropies are measured after every epoch (as in TME 9, but
# fewer: the weights of self-attention are [L, H, T, T] per review).
PROBE = {"full": 250, "smoke": 100}
# Epochs: the one-cycle schedule spans a fixed number of epochs (it warms up, then anneals to
# almost zero), so TME 10 keeps its 10 epochs and picks the best one on validation within them;
# twice as many would double the cost of a run (about 10 minutes on one core) for the 25 runs.
SETTINGS = {
    "full": dict(
        data=dict(max_len=400, probe=PROBE["full"]),
        model=dict(d_model=32, n_layers=3, n_heads=1, dropout=0.1, ffn_mult=4),
        training=dict(batch_size=32, eval_batch_size=32, epochs=10, entropy_every=10),
    ),
    "smoke": dict(
        data=dict(max_len=None, probe=PROBE["smoke"]),
        model=dict(d_model=16, n_layers=3, n_heads=2, dropout=0.1),
        training=dict(batch_size=64, eval_batch_size=32, epochs=3),
    ),
}
OPTIMIZER = dict(
    training=dict(
        optimizer="adamw",
        lr=2e-3,
        weight_decay=0.01,
        schedule=schedule("onecycle"),
        grad_clip=1.0,
    )
)


def spec(
    model: str,
    seed: int = 0,
    distance_slope: float | None = None,
    changes: dict | None = None,
) -> Spec:
    """The :class:`~tme_lib.training.spec.Spec` of one TME 10 run in the active profile, named
    ``<model>-adamw-s<seed>``; ``distance_slope`` replaces the variant's slope and adds
    ``-m<slope>`` to the name (the slope search of :func:`slope_search`); ``changes`` are
    dotted paths for :meth:`Spec.replace`."""
    if model not in VARIANTS:
        raise KeyError(
            f"unknown TME 10 model {model!r}; choose one of {', '.join(VARIANTS)}."
        )
    s = deep_merge(SETTINGS[config.profile()], OPTIMIZER, dict(model=VARIANTS[model]))
    name = f"{model}-adamw-s{seed}"
    if distance_slope is not None:
        s["model"]["distance_slope"] = distance_slope
        name += f"-m{distance_slope:g}"
    out = Spec(
        chapter=CHAPTER,
        name=name,
        seed=seed,
        data=data_settings(**s["data"]),
        inputs=vector_settings("word2vec"),
        model=model_settings(model, SelfAttentionClassifier, **s["model"]),
        training=Training(**s["training"]),
    )
    return out.replace(changes) if changes else out


def load_data(s: Spec) -> tuple:
    """The reviews and frozen vectors of ``s`` (those of TME 9), loaded once per process."""
    return text_data(s)


def run(s: Spec, progress: bool = True, retrain: bool = False, device=None) -> RunRecord:
    """Load the record of ``s`` if it exists, else train it.

    Training uses the fused attention kernel (no weights); the trainer's evaluation passes turn
    ``need_weights`` on, so the entropies of each epoch are those of the validation reviews, in
    eval mode."""
    return run_text(s, MODELS, progress=progress, retrain=retrain, device=device)


# Seeds: the course's seed design (tme_lib.training.spec): a variant costs 11 to 19 min a run
# on one core, the fastest under the 15-min line, so every variant has the five seeds of the
# cheap arms. Against TME 9's LSTM a comparison uses the seeds both share. No variant gets
# more seeds than another: ``MORE_SEEDS`` stays empty.
SEEDS = CHEAP_SEEDS
MORE_SEEDS: dict = {"full": {}, "smoke": {}}
# The comparisons the chapter reports: each variant against the report's first one, and the
# two mean-pooling models against TME 9's attention over LSTM states (same data, same seeds).
# Each is a difference of mean test accuracy with its 95 % interval over the seeds (paired
# where the arms share their batches), with Holm's correction over the list.
COMPARISONS = [
    *[
        (("tme10", v), ("tme10", "self_attention"))
        for v in VARIANTS
        if v != "self_attention"
    ],
    (("tme10", "self_attention_distance"), ("tme9", "attention_lstm")),
    (("tme10", "self_attention"), ("tme9", "attention_lstm")),
]


def table_plan() -> list[Spec]:
    """The runs of the chapter's results table in the active profile: the five variants, seed
    by seed, then the extra seeds."""
    runs = [spec(name, seed) for seed in SEEDS[config.profile()] for name in VARIANTS]
    return runs + [
        spec(name, seed)
        for name, seeds in MORE_SEEDS[config.profile()].items()
        for seed in seeds
    ]


# The slopes of ``self_attention_distance`` tried besides its own (1/4), at seed 0, to choose it
# on validation; slope 0 is ``self_attention`` itself. Section "Attention that fades with distance".
OTHER_SLOPES = {"full": (1.0,), "smoke": ()}


def slope_search() -> list[Spec]:
    """The runs of ``self_attention_distance`` with the slopes of :data:`OTHER_SLOPES` (seed 0)."""
    return [
        spec("self_attention_distance", 0, distance_slope=slope)
        for slope in OTHER_SLOPES[config.profile()]
    ]


def plan() -> list[Spec]:
    """Every run of the chapter: the results table's, then the slope search. The run tool
    trains them; the notebook loads them."""
    return table_plan() + slope_search()


def plan_records() -> list[RunRecord]:
    """The records of :func:`table_plan` that exist."""
    return existing_records(table_plan())


def write_tables(records: list[RunRecord]) -> dict[str, pd.DataFrame]:
    """The chapter's results table, ``tme10.csv``: one row per run of :func:`table_plan`."""
    names = {s.name for s in table_plan()}
    return {
        "tme10.csv": results_table(
            [r for r in records if r.name in names], RESULT_COLUMNS
        )
    }


def largest_rise(values: list[float]) -> float:
    """Largest increase between consecutive values (``max_e v[e] - v[e-1]``, 0 if it never
    rises): applied to the validation loss per epoch, it measures how unstable a run is."""
    return max([0.0] + [b - a for a, b in zip(values, values[1:])])


@torch.no_grad()
def mean_attention_distance(
    model: SelfAttentionClassifier, split, n_reviews: int = 256, batch_size: int = 32
) -> torch.Tensor:
    """Average distance ``|i - j|`` under the attention of each layer, ``[n_layers]``, over the
    first ``n_reviews`` reviews of ``split``, rounded up to whole batches (mean over real
    queries, heads and reviews; see :func:`tme_lib.training.metrics.attention_distance`). For models
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
def review_attention(
    model: SelfAttentionClassifier, ids: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """The logit and attention weights ``[n_layers, n_heads, T', T']`` of one review (token ids
    ``[T]``, no padding), for the maps of section "What do the heads look at?"; with a CLS token
    ``T' = T + 1`` and position 0 is the CLS token."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(ids, dtype=torch.long, device=device)[None]
    logit, weights = model(x, torch.ones_like(x, dtype=torch.bool), need_weights=True)
    return logit.item(), weights[0].cpu()


def comparison_table(tables: dict[str, pd.DataFrame], comparisons=None) -> pd.DataFrame:
    """One row per comparison of :data:`COMPARISONS`: ``tables`` maps a chapter (``"tme10"``,
    ``"tme9"``) to its results table; an arm ``(chapter, model)`` is that model's unpenalised
    Adam or AdamW runs. The difference of mean test accuracy (points) with its 95 % interval
    (paired by seed where the arms see the same batches, Welch's otherwise), and the verdict
    before and after Holm's correction over the chapter's comparisons, over the seeds the two
    arms share; comparisons whose arms share fewer than two seeds are left out."""
    from ..training import metrics
    from . import paired

    def accuracies(arm):
        chapter, model = arm
        t = tables.get(chapter)
        if t is None:
            return {}
        rows = t[
            (t["model"] == model)
            & t["optimizer"].isin(["adam", "adamw"])
            & (t["entropy_weight"].fillna(0) == 0)
            & ~t["name"].str.startswith("toy-")
        ]
        return dict(zip(rows["seed"].astype(int), 100 * rows["test_acc"]))

    return metrics.comparison_table(
        metrics.comparison_row(
            f"{a[1]} ({a[0]}) − {b[1]} ({b[0]})",
            accuracies(a),
            accuracies(b),
            paired=paired(a, b),
        )
        for a, b in comparisons or COMPARISONS
    )
