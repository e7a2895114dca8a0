"""Checkers of the exercises of "Beyond the bag of words" (``notebooks/04_beyond_bag_of_words``).

``check_log_count_ratio(fn)`` compares the student's naive-Bayes ratio with
:func:`tme_lib.training.bag_of_words.log_count_ratio`; ``check_choose_lambda(fn)`` the
student's choice of the fusion weight with :func:`tme_lib.chapters.beyond.choose_lambda`. Each
names the usual mistake when it sees one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tme_lib.chapters.beyond import choose_lambda
from tme_lib.training.bag_of_words import log_count_ratio

from . import ExerciseError, call_student, passed


def _counts():
    """Counts of 4 features in 5 reviews (three positive): feature 0 is repeated in a review
    (binary features count it once), feature 3 appears in no positive review (α keeps its
    ratio finite) and the classes differ in size (the L1 normalisation matters)."""
    x = np.array(
        [[3, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 2], [0, 0, 1, 1]], float
    )
    y = np.array([1, 1, 1, 0, 0])
    return sp.csr_matrix(x), y


def check_log_count_ratio(fn) -> None:
    """``fn(x, y, alpha=1.0) -> r [f]`` for counts ``x [n, f]`` (sparse) and labels ``y [n]``."""
    name = "log_count_ratio"
    x, y = _counts()
    got = np.asarray(call_student(fn, x, y, alpha=1.0), dtype=float).ravel()
    want = log_count_ratio(x, y, 1.0)
    if got.shape != want.shape:
        raise ExerciseError(
            f"{name}: expected one ratio per feature, shape {want.shape}, got {got.shape}."
        )
    if not np.isfinite(got).all():
        raise ExerciseError(
            f"{name}: some ratios are infinite or NaN: add α to both counts before the log "
            "(a feature absent from one class would otherwise give log 0)."
        )
    mistakes = {
        "the counts are not binarised: a word repeated in a review counts once "
        "(use x > 0)": _ratio(x.toarray(), y, 1.0, binary=False),
        "p and q are not divided by their sums |p|₁ and |q|₁": _ratio(
            x.toarray(), y, 1.0, normalise=False
        ),
        "the sign is reversed: r is positive for features of positive reviews": -want,
    }
    for mistake, value in mistakes.items():
        if np.allclose(got, value, atol=1e-6) and not np.allclose(got, want, atol=1e-6):
            raise ExerciseError(f"{name}: {mistake}.")
    if not np.allclose(got, want, atol=1e-6):
        raise ExerciseError(
            f"{name}: ratios differ from r = log((p/|p|₁) / (q/|q|₁)) with p = α + the number "
            f"of positive reviews that contain each feature (got {np.round(got, 3)}, "
            f"expected {np.round(want, 3)})."
        )
    alpha = np.asarray(call_student(fn, x, y, alpha=0.5), dtype=float).ravel()
    if not np.allclose(alpha, log_count_ratio(x, y, 0.5), atol=1e-6):
        raise ExerciseError(f"{name}: the smoothing α is not the one given (alpha=0.5).")
    passed(name)


def _ratio(x, y, alpha, binary=True, normalise=True):
    x = (x > 0).astype(float) if binary else x
    p, q = alpha + x[y == 1].sum(0), alpha + x[y == 0].sum(0)
    if normalise:
        p, q = p / p.sum(), q / q.sum()
    return np.log(p) - np.log(q)


def check_choose_lambda(fn) -> None:
    """``fn(nb_val, att_val, y_val, lambdas) -> (λ, history)``, ``history`` a list of
    ``{"lambda", "val_acc"}`` in the order of ``lambdas``."""
    name = "choose_lambda"
    y = np.array([1, 1, 0, 0, 1, 0])
    nb = np.array([2.0, -0.5, -1.0, 0.3, 1.0, -2.0])
    att = np.array([0.0, 2.0, 0.0, -2.0, 0.0, 0.0])
    grid = tuple(round(0.1 * k, 1) for k in range(31))
    out = call_student(fn, nb, att, y, grid)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(f"{name} must return a pair (lam, history).")
    lam, history = out
    want, want_history = choose_lambda(nb, att, y, grid)
    if len(history) != len(grid):
        raise ExerciseError(f"{name}: history needs one entry per λ of the grid.")
    got_acc = [float(h["val_acc"]) for h in history]
    if not np.allclose(got_acc, [h["val_acc"] for h in want_history]):
        raise ExerciseError(
            f"{name}: the validation accuracies differ: the fused logit is "
            "nb_val + λ·att_val, and a review is predicted positive when it is > 0."
        )
    if float(lam) != want:
        best = max(got_acc)
        hint = (
            "ties go to the smallest λ (the baseline, unless the attention model helps)"
            if float(lam) in grid and got_acc[grid.index(float(lam))] == best
            else "λ must maximise the validation accuracy"
        )
        raise ExerciseError(f"{name}: got λ = {lam}, expected {want}: {hint}.")
    # nothing to add: the baseline stays
    lam, _ = call_student(fn, nb, np.zeros_like(nb), y, grid)
    if float(lam) != 0.0:
        raise ExerciseError(
            f"{name}: with an attention model that says nothing (all logits 0), λ should be "
            f"0, got {lam}."
        )
    passed(name)
