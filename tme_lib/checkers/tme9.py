"""Checkers for the exercises of TME 9 (``notebooks/01_tme9_global_attention``).

Each ``check_*`` calls the student's function on small random batches with padding, compares it
with the library's version (:mod:`tme_lib.chapters.tme9`, :mod:`tme_lib.training.metrics`)
and raises an
:class:`~tme_lib.checkers.ExerciseError` that says what differs and what to look at; on success
it prints one line.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tme_lib.blocks.embedding import masked_mean
from tme_lib.chapters.tme9 import AttentionLSTM, AttentionQueryValue, AttentionSimple
from tme_lib.checkers import ExerciseError, call_student, checker, expect_close, passed
from tme_lib.training.metrics import attention_entropy

_DIM = 6


def _batch(seed: int = 0, lengths=(5, 2, 7, 1)):
    """Embedded reviews ``e [B, T, d]`` with large values under the padding (a leak shows),
    and their mask ``[B, T]`` (padding at the end of each row)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    e = torch.randn(len(lengths), width, _DIM, generator=g)
    e = torch.where(mask[..., None], e, 10.0 + e)
    return e, mask


def _pair(out, what: str):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(f"{what} should return a pair (t_hat, weights).")
    return out


def _check_weights(weights, mask, want_weights, name: str) -> None:
    if isinstance(weights, torch.Tensor) and weights.shape == mask.shape:
        over_batch = weights.sum(0)
        real_columns = mask.any(0)
        if torch.allclose(
            over_batch[real_columns], torch.ones_like(over_batch[real_columns]), atol=1e-4
        ) and not torch.allclose(weights.sum(1), torch.ones(mask.shape[0]), atol=1e-4):
            raise ExerciseError(
                f"{name}: the weights sum to 1 over the batch, not over a review's tokens: "
                "the softmax runs over dim=0 (the reviews); it must run over dim=1."
            )
        totals = weights.sum(1)
        if (weights[~mask] == 0).all() and not torch.allclose(
            totals, torch.ones_like(totals), atol=1e-4
        ):
            raise ExerciseError(
                f"{name}: the weights of a review sum to {totals.min().item():.3f}, not 1. "
                "Zeroing the padding's weights after the softmax leaves the rest unnormalised: "
                "mask the scores before the softmax (padding gets -inf), or renormalise."
            )
    if (
        isinstance(weights, torch.Tensor)
        and weights.shape == mask.shape
        and (weights[~mask] != 0).any()
    ):
        raise ExerciseError(
            f"{name}: padding gets attention weight "
            f"(up to {weights[~mask].abs().max().item():.3g}). "
            "Give padded positions a score of -inf (or the most negative float) before the softmax."
        )
    expect_close(
        f"{name}: the weights",
        weights,
        want_weights,
        "Check the scores q·e_i (no scaling) and that the softmax runs over the tokens (dim=1).",
    )


@checker
def check_masked_mean(fn) -> None:
    """``fn(x [B, T, d], mask [B, T]) -> [B, d]``: mean over the real tokens only."""
    e, mask = _batch()
    expect_close(
        "masked mean",
        call_student(fn, e, mask),
        masked_mean(e, mask),
        "Sum the real tokens only (multiply by the mask) and divide by their number "
        "mask.sum(1), not by the padded length T.",
    )
    empty = mask.clone()
    empty[1] = False  # a review with no real token at all
    got = call_student(fn, e, empty)
    if isinstance(got, torch.Tensor) and got.shape == (e.shape[0], e.shape[2]):
        if not torch.isfinite(got[1]).all():
            raise ExerciseError(
                "masked mean: a review made of padding only gives NaN (0 / 0): divide by "
                "mask.sum(1).clamp_min(1), so that such a row gives a zero vector."
            )
    expect_close(
        "masked mean (a row of padding only)",
        got,
        masked_mean(e, empty),
        "A row without any real token gives a zero vector.",
    )
    passed("masked_mean (same as blocks.embedding.masked_mean)")


@checker
def check_simple_attention(fn) -> None:
    """``fn(e [B, T, d], mask, q [d]) -> (t_hat [B, d], weights [B, T])`` with
    ``weights = softmax_i(q·e_i)`` over real tokens and ``t_hat = Σ_i weights_i e_i``."""
    e, mask = _batch(1)
    model = AttentionSimple(torch.zeros(2, _DIM))
    with torch.no_grad():
        model.query.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(3))
    want_t, want_w = model.pool(e, mask)
    t_hat, weights = _pair(
        call_student(fn, e, mask, model.query.detach()), "simple_attention"
    )
    _check_weights(weights, mask, want_w, "simple_attention")
    expect_close(
        "simple_attention: t_hat",
        t_hat,
        want_t,
        "t_hat is Σ_i weights_i · e_i (a weighted sum over tokens).",
    )
    passed("simple_attention (same as tme9.AttentionSimple)")


@checker
def check_query_value_attention(fn) -> None:
    """``fn(e, mask, query: nn.Linear, value: nn.Linear) -> (t_hat, weights)`` with
    ``q(t) = query(mean of real e_i)``, ``weights = softmax_i(q(t)·e_i)``,
    ``t_hat = Σ_i weights_i tanh(value(e_i))``."""
    e, mask = _batch(2)
    torch.manual_seed(4)
    model = AttentionQueryValue(torch.zeros(2, _DIM))
    # the library starts from zero: make the query matter
    nn.init.normal_(model.query.weight)
    with torch.no_grad():
        want_t, want_w = model.pool(e, mask)
        t_hat, weights = _pair(
            call_student(fn, e, mask, model.query, model.value), "query_value_attention"
        )
    _check_weights(
        weights,
        mask,
        want_w,
        "query_value_attention (is q(t) computed from the mean of the REAL tokens?)",
    )
    expect_close(
        "query_value_attention: t_hat",
        t_hat,
        want_t,
        "t_hat sums the learned values tanh(value(e_i)), not the word vectors themselves.",
    )
    passed("query_value_attention (same as tme9.AttentionQueryValue)")


@checker
def check_lstm_states(fn) -> None:
    """``fn(lstm: nn.LSTM, e, mask) -> states [B, T, 2H]`` of a bidirectional LSTM run on the
    real tokens only (zero at padding)."""
    e, mask = _batch(3)
    torch.manual_seed(5)
    model = AttentionLSTM(torch.zeros(2, _DIM), hidden=4)
    with torch.no_grad():
        want = model.states(e, mask)
        got = call_student(fn, model.lstm, e, mask)
    if isinstance(got, tuple):
        if len(got) == 2 and isinstance(got[1], torch.Tensor) and got[1].dim() == 1:
            raise ExerciseError(
                "lstm_states returned a pair: pad_packed_sequence gives (states, lengths); "
                "keep the states only: states, _ = pad_packed_sequence(...)."
            )
        raise ExerciseError(
            "lstm_states should return the states tensor only, "
            "not the LSTM's (output, (h, c)) pair."
        )
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        forward_ok = torch.allclose(got[mask][:, :4], want[mask][:, :4], atol=1e-5)
        if forward_ok and not torch.allclose(got[mask], want[mask], atol=1e-5):
            raise ExerciseError(
                "The forward direction is right but the backward one is not: it read the padding "
                "before the last real word. Pack the batch with "
                "pack_padded_sequence(e, mask.sum(1).cpu(), batch_first=True, "
                "enforce_sorted=False) "
                "and unpack with pad_packed_sequence(..., total_length=T)."
            )
    expect_close(
        "lstm_states",
        got,
        want,
        "Run the LSTM on a packed sequence; padded positions must hold zeros.",
    )
    passed("lstm_states (same as tme9.AttentionLSTM.states)")


@checker
def check_entropy_penalty(fn) -> None:
    """``fn(logits [B], y [B], weights [B, T], mask, lam) -> scalar``:
    ``BCE(logits, y) + lam · mean_b H(weights_b)`` with ``H(p) = -Σ_i p_i log p_i``
    (0·log 0 = 0)."""
    e, mask = _batch(4)
    g = torch.Generator().manual_seed(6)
    scores = torch.randn(mask.shape, generator=g).masked_fill(~mask, float("-inf"))
    weights = scores.softmax(1)  # exact zeros on the padding, as the models produce
    logits, y = (
        torch.randn(mask.shape[0], generator=g),
        torch.tensor([0.0, 1.0, 1.0, 0.0]),
    )
    bce = F.binary_cross_entropy_with_logits(logits, y)
    mean_entropy = attention_entropy(weights, mask).mean()
    for lam in (0.0, 0.1, 2.0):
        got = call_student(fn, logits, y, weights, mask, lam)
        if isinstance(got, torch.Tensor) and torch.isnan(got).any():
            raise ExerciseError(
                "Your loss is NaN: padding has weight 0 and log 0 = -inf. 0·log 0 counts "
                "as 0: clamp p away from zero inside the log."
            )
        if (
            lam
            and isinstance(got, torch.Tensor)
            and torch.allclose(got, bce + lam * mean_entropy / math.log(2), atol=1e-5)
        ):
            raise ExerciseError(
                "Your entropy is in bits (log2): the course measures it in nats, with the "
                "natural log (torch.log), so that a uniform distribution over n tokens has "
                "entropy log n."
            )
        if (
            lam
            and isinstance(got, torch.Tensor)
            and torch.allclose(got, bce - lam * mean_entropy, atol=1e-5)
        ):
            raise ExerciseError(
                "Your loss decreases when the entropy grows: the entropy is -Σ p log p (positive), "
                "and the penalty ADDS lam times it to the loss."
            )
        expect_close(
            f"loss with lam={lam}",
            got,
            bce + lam * mean_entropy,
            "0·log 0 counts as 0 (padding has weight 0: clamp p before the log); the loss is the "
            "mean binary cross-entropy plus lam times the MEAN entropy over the batch.",
        )
    passed("entropy_penalised_loss (BCE + λ · mean attention entropy)")
