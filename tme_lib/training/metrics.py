"""Metrics shared by the chapters: accuracy, attention entropy, regression scores."""

from __future__ import annotations

import math

import pandas as pd
import torch

# Smallest probability used inside a logarithm: keeps p·log p and its gradient finite where a
# weight is exactly zero (padding), without changing any entropy by a measurable amount.
_EPS = 1e-12


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of binary predictions ``logit > 0`` that match the 0/1 labels ``y``."""
    return ((logits > 0).to(y.dtype) == y).float().mean().item()


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy H(p) = -Σ_i p_i log p_i (nats) along ``dim``, with 0·log 0 = 0.

    Taught in TME 9, section "How peaked is the attention?". A uniform distribution over n
    entries has entropy log n; a one-hot distribution has entropy 0.
    """
    return -(p * torch.log(p.clamp_min(_EPS))).sum(dim)


def attention_entropy(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-example entropy of attention weights, over real tokens only.

    ``weights`` has a distribution over tokens in its last dimension: ``[B, T]`` for global
    attention, ``[B, ..., T, T]`` for self-attention (layers, heads, queries). ``mask`` is
    ``[B, T]``, True on real tokens. For self-attention the entropy of each real query's
    distribution is averaged over queries, heads and layers. A model that prepends special
    tokens (a CLS token) returns weights over ``k + T`` positions: the mask is extended with
    True in front for them. Returns a tensor ``[B]``.
    """
    extra = weights.shape[-1] - mask.shape[-1]
    if extra < 0:
        raise ValueError(
            f"attention over {weights.shape[-1]} positions but mask has {mask.shape[-1]}"
        )
    if extra:
        mask = torch.cat([mask.new_ones(mask.shape[0], extra), mask], dim=1)
    h = entropy(weights)  # [B] or [B, ..., Tq]
    if h.dim() == 1:
        return h
    q = mask.to(h.dtype).reshape(mask.shape[0], *([1] * (h.dim() - 2)), mask.shape[1])
    per_query_mean = (h * q).sum(-1) / q.sum(-1).clamp_min(1.0)
    return per_query_mean.reshape(h.shape[0], -1).mean(-1)


def attention_distance(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How far self-attention looks: ``Σ_j α_ij |i - j|`` for each real query ``i``, averaged over
    the real queries of each example.

    ``weights`` ``[B, ..., T, T]`` (layers, heads), ``mask`` ``[B, T]`` True on real tokens, with
    no special token (the positions must be the words'). Returns ``[B, ...]``. A uniform
    attention over ``n`` words gives ``(n² - 1) / (3n)``; attending to oneself gives 0.
    """
    if weights.shape[-1] != mask.shape[-1]:
        raise ValueError(
            f"attention over {weights.shape[-1]} positions but mask has "
            f"{mask.shape[-1]}: attention_distance needs weights over words only"
        )
    position = torch.arange(mask.shape[-1], device=weights.device, dtype=weights.dtype)
    # [B, ..., T]
    per_query = (weights * (position[:, None] - position[None, :]).abs()).sum(-1)
    q = mask.to(weights.dtype).reshape(
        mask.shape[0], *([1] * (per_query.dim() - 2)), mask.shape[1]
    )
    return (per_query * q).sum(-1) / q.sum(-1).clamp_min(1.0)


def uniform_entropy(mask: torch.Tensor) -> torch.Tensor:
    """Entropy log n of the uniform distribution over each example's n real tokens."""
    return torch.log(mask.sum(-1).clamp_min(1).to(torch.float32))


def r2_score(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Coefficient of determination R² = 1 - Σ(y - ŷ)² / Σ(y - ȳ)²."""
    y = y.double()
    ss_res = ((y - pred.double()) ** 2).sum()
    ss_tot = ((y - y.mean()) ** 2).sum()
    return (1.0 - ss_res / ss_tot).item() if ss_tot > 0 else math.nan


def pearson(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation between predictions and targets."""
    a, b = pred.double() - pred.double().mean(), y.double() - y.double().mean()
    return (a @ b / (a.norm() * b.norm()).clamp_min(_EPS)).item()


def spearman(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rank correlation (Pearson correlation of the ranks; ties broken by order)."""
    rank = lambda v: torch.argsort(torch.argsort(v)).double()  # noqa: E731
    return pearson(rank(pred), rank(y))


def _t_interval(diff: float, se: float, df: float, level: float) -> dict:
    """The ``level`` t-interval of a difference ``diff`` with standard error ``se`` and ``df``
    degrees of freedom, and its two-sided p-value (a zero ``se``: the interval is the point)."""
    from scipy import stats

    if se == 0:
        low = high = diff
        p = 0.0 if diff else 1.0
    else:
        half = stats.t.ppf(0.5 + level / 2, df) * se
        low, high = diff - half, diff + half
        p = float(2 * stats.t.sf(abs(diff) / se, df))
    detectable = diff != 0 if se == 0 else not (low <= 0 <= high)
    return {
        "diff": diff,
        "low": low,
        "high": high,
        "p": p,
        "df": df,
        "detectable": detectable,
    }


def difference_interval(a, b, level: float = 0.95) -> dict:
    """Welch's comparison of two samples (e.g. test accuracies over seeds): the difference of
    their means ``mean(a) − mean(b)``, its ``level`` confidence interval with the
    Welch–Satterthwaite degrees of freedom, and the two-sided p-value. ``detectable`` is False
    when the interval contains 0 (the chapters then say "no detectable difference")."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"each arm needs at least 2 values (got {len(a)} and {len(b)}).")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1) / len(a)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1) / len(b)
    se = math.sqrt(var_a + var_b)
    df = (
        (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
        if se
        else float("inf")
    )
    return _t_interval(mean_a - mean_b, se, df, level)


def paired_interval(a, b, level: float = 0.95) -> dict:
    """The comparison of two arms run at the same seeds with the same data order (``a[i]`` and
    ``b[i]`` share seed ``i``): the mean of the differences ``a[i] − b[i]``, its ``level``
    t-interval (``n − 1`` degrees of freedom) and the two-sided p-value, in the form of
    :func:`difference_interval`. Pairing removes what the seed does to both arms alike."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    if len(d) < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds (got {len(d)}).")
    n = len(d)
    diff = sum(d) / n
    se = math.sqrt(sum((x - diff) ** 2 for x in d) / (n - 1) / n)
    return _t_interval(diff, se, n - 1, level)


def verdict(diff: float, detectable: bool) -> str:
    """What a chapter says of a difference: "higher", "lower" or "no detectable difference"."""
    if not detectable:
        return "no detectable difference"
    return "higher" if diff > 0 else "lower"


def holm(p_values, level: float = 0.05) -> list[bool]:
    """Holm's step-down correction of a family of tests: whether each hypothesis is rejected
    at family-wise error ``level``. The k-th smallest p-value (k from 0) is compared with
    ``level / (m − k)``, and testing stops at the first that fails."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for k, i in enumerate(order):
        if p_values[i] > level / (len(p_values) - k):
            break
        rejected[i] = True
    return rejected


# A chapter's comparison table: the two arms, the seeds they share, the test ("paired" by seed
# when the arms see the same batches at each seed, "Welch" otherwise), the difference of means
# (points) with its 95 % interval and the raw verdict, then the verdict after Holm's correction
# over the chapter's declared family (every row of its table).
COMPARISON_COLUMNS = [
    "comparison",
    "seeds",
    "test",
    "difference",
    "95 % interval",
    "verdict",
    "after Holm",
]


def comparison_row(label: str, a: dict, b: dict, paired: bool = False) -> dict | None:
    """A row of a chapter's comparison table from two arms given as ``{seed: value}``: the
    seeds the two arms share (a comparison never uses a seed that one arm lacks), the
    difference of means ``a − b`` (points) over them with its 95 % interval (paired by seed
    with ``paired``, Welch's otherwise), its p-value and the raw verdict ("no detectable
    difference" when the interval spans 0); ``None`` when they share fewer than two seeds. An
    arm fitted once (the same value at every seed) is given at every seed of the other."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    a, b = [a[s] for s in seeds], [b[s] for s in seeds]
    d = (paired_interval if paired else difference_interval)(a, b)
    return {
        "comparison": label,
        "seeds": len(seeds),
        "test": "paired" if paired else "Welch",
        "difference": round(d["diff"], 2),
        "95 % interval": f"[{d['low']:+.2f}, {d['high']:+.2f}]",
        "verdict": verdict(d["diff"], d["detectable"]),
        "p": d["p"],
        "sign": d["diff"],
    }


def comparison_table(rows, exploratory=()) -> pd.DataFrame:
    """A chapter's comparison table from its rows (``None`` rows, comparisons without two
    shared seeds, left out), with the verdict after Holm's correction over them: the family is
    the chapter's declared comparisons, at a family-wise error of 5 %. The ``exploratory``
    rows (comparisons chosen after seeing results) follow, outside the family, marked so."""
    rows = [r for r in rows if r]
    rejected = holm([r["p"] for r in rows])
    table = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, "p", "sign"])
    table["after Holm"] = [verdict(r["sign"], k) for r, k in zip(rows, rejected)]
    extra = pd.DataFrame([r for r in exploratory if r], columns=COMPARISON_COLUMNS)
    extra["after Holm"] = "exploratory"
    return pd.concat([table[COMPARISON_COLUMNS], extra], ignore_index=True)
