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

from . import (
    ExerciseError,
    call_student,
    checker,
    expect_array,
    expect_array_form,
    passed,
)


def _counts():
    """Counts of 4 features in 5 reviews (three positive): feature 0 is repeated in a review
    (binary features count it once), feature 3 appears in no positive review (α keeps its
    ratio finite) and the classes differ in size (the L1 normalisation matters)."""
    x = np.array(
        [[3, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 2], [0, 0, 1, 1]], float
    )
    y = np.array([1, 1, 1, 0, 0])
    return sp.csr_matrix(x), y


@checker
def check_log_count_ratio(fn) -> None:
    """``fn(x, y, alpha=1.0) -> r [f]`` for counts ``x [n, f]`` (sparse) and labels ``y [n]``."""
    name = "log_count_ratio"
    x, y = _counts()
    answer = call_student(fn, x, y, alpha=1.0)
    want = log_count_ratio(x, y, 1.0)
    expect_array_form(name, answer, want.shape)
    got = answer.astype(float)
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
    alpha = call_student(fn, x, y, alpha=0.5)
    expect_array(
        f"{name} with alpha=0.5",
        alpha,
        log_count_ratio(x, y, 0.5),
        "The smoothing α is not the one given (alpha=0.5).",
    )
    passed(name)


def _ratio(x, y, alpha, binary=True, normalise=True):
    x = (x > 0).astype(float) if binary else x
    p, q = alpha + x[y == 1].sum(0), alpha + x[y == 0].sum(0)
    if normalise:
        p, q = p / p.sum(), q / q.sum()
    return np.log(p) - np.log(q)


def _history(name: str, out, grid) -> tuple[float, list[float]]:
    """``(λ, accuracies)`` of an answer ``(λ, history)``, its form checked: ``history`` a list
    of dicts ``{"lambda", "val_acc"}``, one per λ of ``grid``, in its order."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(f"{name} must return a pair (lam, history).")
    lam, history = out
    if not isinstance(history, list | tuple) or not all(
        isinstance(h, dict) and {"lambda", "val_acc"} <= set(h) for h in history
    ):
        raise ExerciseError(
            f"{name}: history must be a list of dicts with the keys 'lambda' and 'val_acc', "
            f"one per λ of the grid; got {type(history).__name__}."
        )
    if len(history) != len(grid):
        raise ExerciseError(
            f"{name}: history needs one entry per λ of the grid ({len(grid)}), got "
            f"{len(history)}."
        )
    lambdas = [float(h["lambda"]) for h in history]
    if not np.allclose(lambdas, grid, atol=1e-6):
        raise ExerciseError(
            f"{name}: history's λs are not those of the grid it was given, in its order "
            f"(got {lambdas[:4]}..., the grid is {list(grid[:4])}...)."
        )
    try:
        return float(lam), [float(h["val_acc"]) for h in history]
    except (TypeError, ValueError):
        raise ExerciseError(f"{name}: λ and every val_acc must be numbers.") from None


def _accuracies(nb, att, y, grid, rule) -> list[float]:
    return [float((rule(nb + lam * att) == y).mean()) for lam in grid]


# Plausible mistakes of the fused rule, each with its message.
_RULES = {
    "a review whose fused logit is exactly 0 is predicted positive: the rule is z > 0, "
    "strictly": lambda z: z >= 0,
    "the sign of the prediction is reversed (positive when z < 0)": lambda z: z < 0,
}


@checker
def check_choose_lambda(fn) -> None:
    """``fn(nb_val, att_val, y_val, lambdas) -> (λ, history)``, ``history`` a list of
    ``{"lambda", "val_acc"}`` in the order of ``lambdas``."""
    name = "choose_lambda"
    y = np.array([1, 1, 0, 0, 1, 0, 1])
    nb = np.array([2.0, -0.5, -1.0, 0.3, 1.0, -2.0, -1.0])
    att = np.array([0.0, 2.0, 0.0, -2.0, 0.0, 0.0, 1.0])  # at λ = 1 the last logit is 0
    grids = {
        "the course's grid": tuple(round(0.1 * k, 1) for k in range(31)),
        "a shuffled grid": (2.0, 0.5, 3.0, 0.0, 1.0, 0.25, 1.5),
        "a grid without 0": (0.3, 0.6, 0.9, 1.2),
    }
    for what, grid in grids.items():
        lam, got = _history(name, call_student(fn, nb, att, y, grid), grid)
        want, want_history = choose_lambda(nb, att, y, grid)
        want_acc = [h["val_acc"] for h in want_history]
        if not np.allclose(got, want_acc, atol=1e-6):
            for mistake, rule in _RULES.items():
                if np.allclose(got, _accuracies(nb, att, y, grid, rule), atol=1e-6):
                    raise ExerciseError(f"{name}: {mistake}.")
            raise ExerciseError(
                f"{name} ({what}): the validation accuracies differ from those of the fused "
                f"logit nb_val + λ·att_val, positive when > 0 (expected "
                f"{np.round(want_acc, 3).tolist()}, got {np.round(got, 3).tolist()})."
            )
        if abs(lam - want) > 1e-6:
            best = max(got)
            ties = [g for g, a in zip(grid, got) if a == best]
            hint = (
                "ties go to the smallest λ of the grid (whatever its order)"
                if len(ties) > 1 and any(abs(lam - t) < 1e-6 for t in ties)
                else "λ must maximise the validation accuracy over the grid it is given"
            )
            raise ExerciseError(
                f"{name} ({what}): got λ = {lam}, expected {want}: {hint}."
            )
    # nothing to add: the baseline stays
    grid = grids["the course's grid"]
    lam, _ = _history(name, call_student(fn, nb, np.zeros_like(nb), y, grid), grid)
    if abs(lam) > 1e-6:
        raise ExerciseError(
            f"{name}: with an attention model that says nothing (all logits 0), λ should be "
            f"0, got {lam}."
        )
    passed(name)
