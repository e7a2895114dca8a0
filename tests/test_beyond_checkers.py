"""The checkers of "Beyond the bag of words" accept the solutions and name plausible mistakes."""

import numpy as np
import pytest

from tme_lib.checkers import ExerciseError
from tme_lib.checkers.beyond import check_choose_lambda, check_log_count_ratio


def ratio(x, y, alpha=1.0):
    x = (x > 0).astype(float)
    p = alpha + np.asarray(x[y == 1].sum(0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def ratio_of_counts(x, y, alpha=1.0):
    x = x.astype(float)
    p = alpha + np.asarray(x[y == 1].sum(0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def ratio_unnormalised(x, y, alpha=1.0):
    x = (x > 0).astype(float)
    p = alpha + np.asarray(x[y == 1].sum(0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(0)).ravel()
    return np.log(p) - np.log(q)


def ratio_unsmoothed(x, y, alpha=1.0):
    with np.errstate(divide="ignore"):
        return ratio(x, y, 0.0)


def ratio_fixed_alpha(x, y, alpha=1.0):
    return ratio(x, y, 1.0)


def ratio_stub(x, y, alpha=1.0):
    raise NotImplementedError("count the reviews of each class that contain each feature")


def choose(nb, att, y, lambdas):
    history = [
        {"lambda": lam, "val_acc": float(((nb + lam * att > 0) == y).mean())}
        for lam in lambdas
    ]
    best = max(history, key=lambda h: (h["val_acc"], -h["lambda"]))
    return best["lambda"], history


def choose_largest_on_ties(nb, att, y, lambdas):
    _, history = choose(nb, att, y, lambdas)
    best = max(history, key=lambda h: (h["val_acc"], h["lambda"]))
    return best["lambda"], history


def choose_by_mean_logit(nb, att, y, lambdas):
    history = [
        {"lambda": lam, "val_acc": float(((nb + lam * att) * (2 * y - 1)).mean())}
        for lam in lambdas
    ]
    best = max(history, key=lambda h: (h["val_acc"], -h["lambda"]))
    return best["lambda"], history


def test_solutions_pass(capsys):
    check_log_count_ratio(ratio)
    check_choose_lambda(choose)
    assert capsys.readouterr().out.count("all checks passed") == 2


@pytest.mark.parametrize(
    "wrong, message",
    [
        (ratio_stub, "not implemented"),
        (ratio_of_counts, "not binarised"),
        (ratio_unnormalised, "divided by their sums"),
        (ratio_unsmoothed, "infinite or NaN"),
        (ratio_fixed_alpha, "smoothing"),
        (lambda x, y, alpha=1.0: -ratio(x, y, alpha), "sign is reversed"),
    ],
)
def test_log_count_ratio_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_log_count_ratio(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (choose_largest_on_ties, "ties go to the smallest"),
        (choose_by_mean_logit, "validation accuracies differ"),
        (lambda nb, att, y, lambdas: choose(nb, att, y, lambdas)[1], "pair"),
    ],
)
def test_choose_lambda_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_choose_lambda(wrong)
