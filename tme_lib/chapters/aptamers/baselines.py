"""Baselines that any learned model of the chapter must beat, on the same split.

Taught in ``notebooks/03_aptamers`` (section "Baselines"). Each turns a strand into counts of
its k-mers (every substring of length k ≤ ``k_max``: 4 + 16 + 64 + 256 = 340 features for
``k_max = 4``), which say what a strand is made of but not where, so none of them can see which
segment pairs with which:

* ``mean``: predict the training mean (R² = 0 by construction);
* ``ridge``: ŷ = w·φ(x) + b minimising Σ(y − ŷ)² + α‖w‖²;
* ``boosted_trees``: scikit-learn's histogram gradient-boosted trees on the same counts.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from tme_lib.training.metrics import pearson, r2_score, spearman

BASELINES = ("mean", "ridge", "boosted_trees")


def kmer_counts(ids: np.ndarray, k_max: int = 4) -> np.ndarray:
    """``uint8[N, L]`` ids → ``float32[N, Σ_k 4^k]`` counts of every k-mer, ``k = 1..k_max``.

    The k-mer starting at position p has index ``Σ_i ids[p+i]·4^(k-1-i)`` within its block."""
    ids = np.asarray(ids, dtype=np.int64)
    n, length = ids.shape
    blocks = []
    for k in range(1, k_max + 1):
        code = np.zeros((n, length - k + 1), dtype=np.int64)
        for i in range(k):
            code = code * 4 + ids[:, i : length - k + 1 + i]
        counts = np.zeros((n, 4**k), dtype=np.float32)
        np.add.at(counts, (np.repeat(np.arange(n), code.shape[1]), code.ravel()), 1.0)
        blocks.append(counts)
    return np.concatenate(blocks, axis=1)


def scores(pred: np.ndarray, y: np.ndarray) -> dict:
    """Test MSE, R², Pearson and Spearman correlations of predictions ``pred`` for targets ``y``
    (correlations are NaN for a constant prediction)."""
    p, t = (
        torch.as_tensor(np.asarray(pred, np.float64)),
        torch.as_tensor(np.asarray(y, np.float64)),
    )
    # a constant prediction has no correlation with anything
    constant = bool((p == p[0]).all())
    return {
        "test_mse": float(((p - t) ** 2).mean()),
        "test_r2": r2_score(p, t),
        "pearson": float("nan") if constant else pearson(p, t),
        "spearman": float("nan") if constant else spearman(p, t),
    }


def fit_baseline(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    k_max: int = 4,
    seed: int = 0,
    max_iter: int = 500,
) -> dict:
    """Fit baseline ``name`` on ``train = (ids, y)``, score it on ``test``; ``max_iter`` bounds the
    number of boosting rounds (early stopping on a held-out tenth usually stops sooner).

    Returns ``{"model", "params", "n_train", "seconds", **scores}`` where ``params`` counts the
    fitted numbers (weights and bias; leaves and thresholds for the trees)."""
    (x_train, y_train), (x_test, y_test) = train, test
    start = time.perf_counter()
    if name == "mean":
        pred, params = np.full(len(y_test), float(np.mean(y_train))), 1
    elif name == "ridge":
        model = Ridge(alpha=1.0).fit(kmer_counts(x_train, k_max), y_train)
        pred, params = model.predict(kmer_counts(x_test, k_max)), model.coef_.size + 1
    elif name == "boosted_trees":
        model = HistGradientBoostingRegressor(
            max_iter=max_iter,
            learning_rate=0.1,
            max_leaf_nodes=63,
            early_stopping=True,
            random_state=seed,
        )
        model.fit(kmer_counts(x_train, k_max), y_train)
        pred = model.predict(kmer_counts(x_test, k_max))
        # nodes
        params = sum(p.nodes.shape[0] for tree in model._predictors for p in tree)
    else:
        raise ValueError(f"unknown baseline {name!r}; choose one of {BASELINES}.")
    return {
        "model": name,
        "params": int(params),
        "n_train": len(y_train),
        "seconds": round(time.perf_counter() - start, 2),
        **scores(pred, y_test),
    }
