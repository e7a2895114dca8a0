"""Checkers of the TME 10 exercises (``notebooks/02_tme10_self_attention``).

Each ``check_<exercise>(fn)`` runs the student's function on small seeded inputs, compares it
with the library (:mod:`tme_lib.blocks.attention`, :mod:`tme_lib.blocks.layers`) and says
what differs.
"""

from __future__ import annotations

import torch

from tme_lib.blocks.attention import (
    distance_bias,
    positional_encoding,
    scaled_dot_product_attention,
)
from tme_lib.blocks.layers import SelfAttentionLayer

from . import ExerciseError, call_student, check_dropout, checker, expect_close, passed


def _inputs(seed: int = 0, batch: int = 3, n_query: int = 4, n_key: int = 6, d: int = 16):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, n_query, d, generator=g)
    k = torch.randn(batch, n_key, d, generator=g)
    v = torch.randn(batch, n_key, 5, generator=g)
    lengths = torch.tensor([n_key, 3, 1])[:batch]
    mask = torch.arange(n_key)[None, :] < lengths[:, None]
    return q, k, v, mask


def _pair(name: str, out):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(
            f"{name} must return a pair (values, weights), got {type(out).__name__}."
        )
    return out


@checker
def check_scaled_dot_product_attention(fn) -> None:
    """``fn(query, key, value, mask=None) -> (values, weights)`` with 3-d inputs ``[B, T, d]``
    and a key-padding mask ``[B, Tk]`` (True on real keys)."""
    name = "scaled_dot_product_attention"
    q, k, v, mask = _inputs()
    values, weights = _pair(name, call_student(fn, q, k, v))
    expected_values, expected_weights = scaled_dot_product_attention(q, k, v)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    if (
        isinstance(weights, torch.Tensor)
        and weights.shape == unscaled.shape
        and torch.allclose(weights, unscaled, atol=1e-5)
    ):
        raise ExerciseError(
            f"{name}: the scores are not divided by √d (d = {q.shape[-1]}): "
            "without it, large d makes the softmax nearly one-hot."
        )
    expect_close(
        f"{name} weights (no mask)",
        weights,
        expected_weights,
        "weights = softmax(query @ keyᵀ / √d), the softmax over the keys (last dim).",
    )
    expect_close(
        f"{name} values (no mask)", values, expected_values, "values = weights @ value."
    )

    values, weights = _pair(name, call_student(fn, q, k, v, mask))
    expected_values, expected_weights = scaled_dot_product_attention(q, k, v, mask)
    if (
        isinstance(weights, torch.Tensor)
        and weights.shape == expected_weights.shape
        and (weights[~mask[:, None, :].expand_as(weights)] != 0).any()
    ):
        raise ExerciseError(
            f"{name}: padding keys (mask False) get a nonzero weight. Fill their "
            "scores with a very negative number before the softmax."
        )
    expect_close(
        f"{name} weights (mask)",
        weights,
        expected_weights,
        "Each query's weights must sum to 1 over the real keys.",
    )
    expect_close(
        f"{name} values (mask)", values, expected_values, "values = weights @ value."
    )

    empty = torch.zeros_like(mask)
    empty[0] = True  # reviews 1 and 2 have no real key at all
    values, weights = _pair(name, call_student(fn, q, k, v, empty))
    if not (torch.isfinite(values).all() and torch.isfinite(weights).all()):
        raise ExerciseError(
            f"{name}: a query without any real key gives NaN. Filling with -inf "
            "makes softmax compute 0/0; use torch.finfo(dtype).min instead and "
            "multiply the weights by the mask."
        )
    expect_close(
        f"{name} (no real key)",
        weights,
        scaled_dot_product_attention(q, k, v, empty)[1],
        "A query without real keys should get all-zero weights.",
    )
    passed(name)


@checker
def check_positional_encoding(fn) -> None:
    """``fn(n_positions, d) -> FloatTensor[n_positions, d]``."""
    name = "positional_encoding"
    for n, d in [(12, 8), (30, 6)]:
        got = call_student(fn, n, d)
        expected = positional_encoding(n, d)
        if isinstance(got, torch.Tensor) and got.dtype != torch.float32:
            raise ExerciseError(
                f"{name}: got a {str(got.dtype).replace('torch.', '')} tensor; the "
                "embeddings it is added to are float32: build it in torch.float32 (e.g. "
                "torch.arange(n, dtype=torch.float32))."
            )
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            swapped = torch.empty_like(expected)
            swapped[:, 0::2] = expected[
                :, 1::2
            ]  # d is even here: as many sin as cos columns
            swapped[:, 1::2] = expected[:, 0::2]
            if torch.allclose(got.float(), swapped, atol=1e-4):
                raise ExerciseError(
                    f"{name}: sin and cos are swapped: even columns h take "
                    "sin(i / 10000^(h/d)), odd ones cos."
                )
            if not torch.allclose(got[0], expected[0], atol=1e-5):
                raise ExerciseError(
                    f"{name}: position 0 should be [0, 1, 0, 1, ...] "
                    "(sin 0 = 0 on even columns, cos 0 = 1 on odd ones)."
                )
        expect_close(
            f"{name}({n}, {d})",
            got,
            expected,
            "pe[i, h] = sin(i / 10000^(h/d)) for even h, cos(i / 10000^((h-1)/d)) for "
            "odd h: columns h and h+1 share one frequency.",
        )
    passed(name)


def _layer_inputs(seed: int = 0):
    torch.manual_seed(seed)
    layer = SelfAttentionLayer(8, n_heads=2, dropout=0.0).eval()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    return layer, x, mask


@checker
def check_self_attention_layer(fn) -> None:
    """``fn(layer, x, mask) -> x'``: the forward pass of a :class:`SelfAttentionLayer` written
    with its parts (``layer.norm_attention``, ``layer.attention``, ``layer.norm_mlp``,
    ``layer.mlp``, ``layer.dropout``). Only the real tokens' outputs are compared."""
    name = "self_attention_layer"
    for seed in (0, 1):
        layer, x, mask = _layer_inputs(seed)
        with torch.no_grad():
            got = call_student(fn, layer, x, mask)
            expected = layer(x, mask)[0]
            unmasked = layer(x, torch.ones_like(mask))[0]
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = (
                tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            )
            raise ExerciseError(
                f"{name}: expected a tensor shaped like x, {tuple(x.shape)}, got "
                f"{shape}. Return only x' (not the attention weights)."
            )
        if torch.allclose(got[mask], unmasked[mask], atol=1e-5):
            raise ExerciseError(
                f"{name}: the padding changes the real tokens' outputs; pass "
                "mask to the attention (and to the norms)."
            )
        if torch.allclose(got[mask] - x[mask], expected[mask], atol=1e-5):
            raise ExerciseError(
                f"{name}: the input is added twice? The layer returns "
                "z + MLP(norm(z)) with z = x + f(x̃); do not add x again."
            )
        expect_close(
            f"{name} (real tokens)",
            got[mask],
            expected[mask],
            "x' = g(x + f(x̃)): normalise x first (x̃ = layer.norm_attention(x, mask)), "
            "attend with the mask, add the result to x itself (the residual), then "
            "g(z) = z + dropout(mlp(norm_mlp(z, mask))).",
        )
        # dropout acts in training only: compare the real tokens with the library's
        check_dropout(
            name,
            lambda layer=layer, x=x, mask=mask: call_student(fn, layer, x, mask)[mask],
            lambda layer=layer, x=x, mask=mask: layer(x, mask)[0][mask],
            layer,
        )
    passed(name)


@checker
def check_prepend_cls(fn) -> None:
    """``fn(h, mask, cls) -> (h', mask')``: ``cls [d]`` put in front of every sequence of
    ``h [B, T, d]``, and a True in front of every row of ``mask [B, T]``."""
    name = "prepend_cls"
    g = torch.Generator().manual_seed(0)
    h, cls = torch.randn(2, 4, 3, generator=g), torch.randn(3, generator=g)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    out = call_student(fn, h, mask, cls)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(
            f"{name} must return a pair (h, mask), got {type(out).__name__}."
        )
    got_h, got_mask = out
    expected_h = torch.cat([cls.expand(2, 1, 3), h], dim=1)
    expected_mask = torch.cat([torch.ones(2, 1, dtype=torch.bool), mask], dim=1)
    if (
        isinstance(got_h, torch.Tensor)
        and got_h.shape == expected_h.shape
        and torch.allclose(got_h[:, -1], cls.expand(2, 3))
    ):
        raise ExerciseError(
            f"{name}: the CLS vector is at the end; it goes first (position 0), "
            "where it sits at the same place in every review whatever its length."
        )
    expect_close(
        f"{name} h",
        got_h,
        expected_h,
        "Expand cls to [B, 1, d] and concatenate it before h along the tokens (dim 1).",
    )
    if not isinstance(got_mask, torch.Tensor) or got_mask.dtype != torch.bool:
        raise ExerciseError(f"{name}: the mask must stay a BoolTensor.")
    if got_mask.shape != expected_mask.shape:
        raise ExerciseError(
            f"{name}: the mask must grow with h: expected shape "
            f"{tuple(expected_mask.shape)}, got {tuple(got_mask.shape)}."
        )
    if not torch.equal(got_mask, expected_mask):
        raise ExerciseError(
            f"{name}: the CLS position must be real (True) in every row, followed "
            "by the old mask unchanged."
        )
    passed(name)


@checker
def check_distance_bias(fn) -> None:
    """``fn(length, slope) -> FloatTensor[length, length]`` with ``b[i, j] = -slope·|i - j|``."""
    name = "distance_bias"
    for length, slope in [(5, 0.25), (9, 1.5)]:
        got = call_student(fn, length, slope)
        expected = distance_bias(length, slope)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            got = got.float()
            if torch.allclose(got, -expected):
                raise ExerciseError(
                    f"{name}: the sign is reversed: far words must lose score, "
                    "b[i, j] = -m·|i - j| (a negative number off the diagonal)."
                )
            position = torch.arange(length, dtype=torch.float32)
            if torch.allclose(
                got, -slope * (position[:, None] - position[None, :])
            ) or torch.allclose(got, -slope * (position[None, :] - position[:, None])):
                raise ExerciseError(
                    f"{name}: the distance needs an absolute value, |i - j|: a "
                    "word before the query is as far as a word after it."
                )
        expect_close(
            f"{name}({length}, {slope})",
            got,
            expected,
            "b[i, j] = -slope·|i - j|: 0 on the diagonal, -slope next to it, and so on.",
        )
    passed(name)


__all__ = [
    "check_scaled_dot_product_attention",
    "check_positional_encoding",
    "check_self_attention_layer",
    "check_prepend_cls",
    "check_distance_bias",
]
