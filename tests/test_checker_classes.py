"""Classes of wrong answers that got past the checkers, one test per affected exercise: an
argument changed in place, a type or shape that a conversion would hide, an argument ignored
or a grid's order relied on, a boundary (a fused logit of exactly 0), a row of padding only,
a history of the wrong form; and correct answers that were refused (λ in float32, a
vectorised choice). Every message must name the mistake made."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_beyond_checkers import choose, ratio

from tme_lib.chapters.beyond import LAMBDAS
from tme_lib.checkers import ExerciseError
from tme_lib.checkers.beyond import check_choose_lambda, check_log_count_ratio
from tme_lib.checkers.tme9 import check_masked_mean, check_simple_attention
from tme_lib.checkers.tme10 import (
    check_positional_encoding,
    check_scaled_dot_product_attention,
)


def rejected(check, answer, *words):
    with pytest.raises(ExerciseError) as error:
        check(answer)
    message = str(error.value)
    for word in words:
        assert word in message, message


# --- masked_mean -------------------------------------------------------------------------


def masked_mean_in_place(x, mask):
    x *= mask.unsqueeze(-1)
    return x.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)


def masked_mean_nan_on_padding_rows(x, mask):
    m = mask.unsqueeze(-1).float()
    return (x * m).sum(1) / m.sum(1)


def test_masked_mean_changing_its_input_or_giving_nan_is_named():
    rejected(check_masked_mean, masked_mean_in_place, "in place")
    rejected(check_masked_mean, masked_mean_nan_on_padding_rows, "padding only", "NaN")


# --- simple_attention --------------------------------------------------------------------


def _simple(e, mask, q, dim=1):
    scores = (e @ q).masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim).nan_to_num(0.0)
    return (weights[..., None] * e).sum(1), weights


def simple_attention_in_place(e, mask, q):
    e.masked_fill_(~mask[..., None], 0.0)
    return _simple(e, mask, q)


def simple_attention_over_the_batch(e, mask, q):
    return _simple(e, mask, q, dim=0)


def test_simple_attention_in_place_or_over_the_batch_is_named():
    rejected(check_simple_attention, simple_attention_in_place, "in place")
    rejected(check_simple_attention, simple_attention_over_the_batch, "dim=0")


# --- log_count_ratio ---------------------------------------------------------------------


def ratio_in_place(x, y, alpha=1.0):
    x.data[:] = x.data > 0  # binarises the caller's matrix
    return ratio(x, y, alpha)


def ratio_as_matrix(x, y, alpha=1.0):
    x = (x > 0).astype(float)
    p, q = alpha + x[y == 1].sum(0), alpha + x[y == 0].sum(0)  # np.matrix [1, f]
    return np.log(p / p.sum()) - np.log(q / q.sum())


def ratio_as_tensor(x, y, alpha=1.0):
    return torch.from_numpy(ratio(x, y, alpha))


def test_log_count_ratio_in_place_or_of_the_wrong_type_is_named():
    rejected(check_log_count_ratio, ratio_in_place, "in place")
    rejected(check_log_count_ratio, ratio_as_matrix, "np.matrix")
    rejected(check_log_count_ratio, ratio_as_tensor, "torch tensor")


# --- choose_lambda -----------------------------------------------------------------------


def choose_ignoring_the_grid(nb, att, y, lambdas):
    return choose(nb, att, y, LAMBDAS)


def choose_first_best_in_grid_order(nb, att, y, lambdas):
    _, history = choose(nb, att, y, lambdas)
    best = max(range(len(history)), key=lambda i: history[i]["val_acc"])
    return history[best]["lambda"], history


def choose_at_least_zero(nb, att, y, lambdas):
    history = [
        {"lambda": lam, "val_acc": float(((nb + lam * att >= 0) == y).mean())}
        for lam in lambdas
    ]
    best = max(history, key=lambda h: (h["val_acc"], -h["lambda"]))
    return best["lambda"], history


def choose_with_a_dict_history(nb, att, y, lambdas):
    lam, history = choose(nb, att, y, lambdas)
    return lam, {h["lambda"]: h["val_acc"] for h in history}


def choose_with_wrong_lambdas_in_history(nb, att, y, lambdas):
    lam, history = choose(nb, att, y, lambdas)
    return lam, [{"lambda": 0.0, "val_acc": h["val_acc"]} for h in history]


def choose_vectorised_float32(nb, att, y, lambdas):
    grid = np.asarray(lambdas, dtype=np.float32)
    z = nb[None, :] + grid[:, None] * att[None, :]
    acc = ((z > 0) == y[None, :]).mean(1)
    best = min(np.flatnonzero(acc == acc.max()), key=lambda i: grid[i])
    history = [{"lambda": float(g), "val_acc": float(a)} for g, a in zip(grid, acc)]
    return grid[best], history


def test_choose_lambda_names_each_mistake():
    rejected(check_choose_lambda, choose_ignoring_the_grid, "grid")
    rejected(check_choose_lambda, choose_first_best_in_grid_order, "smallest λ")
    rejected(check_choose_lambda, choose_at_least_zero, "exactly 0", "strictly")
    rejected(check_choose_lambda, choose_with_a_dict_history, "list of dicts")
    rejected(check_choose_lambda, choose_with_wrong_lambdas_in_history, "in its order")


def test_choose_lambda_accepts_a_vectorised_answer_in_float32(capsys):
    check_choose_lambda(choose_vectorised_float32)
    assert "✓" in capsys.readouterr().out


# --- TME 10 ------------------------------------------------------------------------------


def attention_scaling_in_place(query, key, value, mask=None):
    query /= math.sqrt(query.shape[-1])
    scores = query @ key.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
    weights = scores.softmax(-1)
    if mask is not None:
        weights = weights * mask[:, None, :]
    return weights @ value, weights


def positional_encoding_float64(n_positions, d):
    i = torch.arange(n_positions, dtype=torch.float64)[:, None]
    h = torch.arange(d)[None, :]
    angle = i / 10000 ** ((h - h % 2) / d)
    return torch.where(h % 2 == 0, torch.sin(angle), torch.cos(angle))


def test_tme10_in_place_scaling_and_float64_encodings_are_named_not_raw_errors():
    rejected(check_scaled_dot_product_attention, attention_scaling_in_place, "in place")
    rejected(check_positional_encoding, positional_encoding_float64, "float64", "float32")


def test_a_checker_never_lets_a_raw_error_out():
    rejected(
        check_positional_encoding, lambda n, d: "not a tensor", "positional_encoding"
    )
    rejected(check_choose_lambda, lambda *a: (None, None), "choose_lambda")
