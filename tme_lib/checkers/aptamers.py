"""Checkers of the aptamer chapter's exercises (``notebooks/03_aptamers``).

Each ``check_<exercise>(fn)`` runs the student's function on small seeded inputs, compares it
with the library (:mod:`tme_lib.blocks.attention`,
:class:`tme_lib.blocks.layers.SelfAttentionLayer`) and
says what differs.
"""

from __future__ import annotations

import torch

from tme_lib.blocks.attention import (
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from tme_lib.blocks.layers import SelfAttentionLayer

from . import ExerciseError, call_student, check_dropout, checker, expect_close, passed


@checker
def check_attention(fn) -> None:
    """``fn(query, key, value) -> (values, weights)``, weights = softmax(q kᵀ / √d) over the keys,
    for inputs with any number of leading dimensions (``[B, T, d]`` or ``[B, H, T, d]``)."""
    g = torch.Generator().manual_seed(0)
    for shape_q, shape_k, dv in [
        ((2, 5, 8), (2, 7, 8), 3),
        ((2, 3, 4, 16), (2, 3, 6, 16), 16),
    ]:
        q, k = (
            2 * torch.randn(*shape_q, generator=g),
            2 * torch.randn(*shape_k, generator=g),
        )
        v = torch.randn(*shape_k[:-1], dv, generator=g)
        out = call_student(fn, q, k, v)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExerciseError("attention must return a pair (values, weights).")
        values, weights = scaled_dot_product_attention(q, k, v)
        expect_close(
            f"weights for query {tuple(shape_q)}",
            out[1],
            weights,
            f"weights = softmax(query @ keyᵀ / √d) with d = {shape_q[-1]} (the size of a "
            "query), the softmax over the keys (last dimension).",
        )
        expect_close(
            f"values for query {tuple(shape_q)}",
            out[0],
            values,
            "values = weights @ value.",
        )
    passed("attention")


_VIEW_HINT = (
    "After transpose(1, 2) a tensor is no longer contiguous in memory and .view fails on it "
    "(it worked on split's output only by chance): use .reshape, or .contiguous().view."
)


@checker
def check_split_merge(split, merge) -> None:
    """``split(x [B, T, H·dh], H) -> [B, H, T, dh]`` and ``merge``, its inverse."""
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(1))
    for heads in (3, 4):
        expect_close(
            f"split(x, {heads})",
            call_student(
                split, x, heads, hint="split takes [B, T, H·dh] (3 dimensions)."
            ),
            split_heads(x, heads),
            "Head h owns features h·dh … (h+1)·dh − 1 of every token: view x as "
            "[B, T, H, dh], then swap the T and H axes.",
        )
        expect_close(
            f"merge(split(x, {heads}))",
            call_student(merge, split_heads(x, heads)),
            merge_heads(split_heads(x, heads)),
            "merge must undo split exactly.",
        )
        # a [B, H, T, dh] tensor that is contiguous, as an attention output can be
        heads_first = torch.randn(
            2, heads, 5, 4, generator=torch.Generator().manual_seed(heads)
        )
        expect_close(
            f"merge of a contiguous [B, {heads}, T, dh] tensor",
            call_student(merge, heads_first, hint=_VIEW_HINT),
            merge_heads(heads_first),
            "merge(x) is x with dimensions 1 and 2 swapped, then reshaped to [B, T, H·dh].",
        )
    passed("split / merge")


@checker
def check_encoder_layer(fn) -> None:
    """``fn(x, layer)`` must compute ``layer(x, mask)[0]`` for a
    :class:`~tme_lib.blocks.layers.SelfAttentionLayer`
    ``layer`` (pre-norm, dropout off) and strands
    ``x [B, L, d]`` without padding, from the layer's parts."""
    torch.manual_seed(2)
    layer = SelfAttentionLayer(d_model=16, n_heads=4, dropout=0.0).eval()
    mask = torch.ones(3, 7, dtype=torch.bool)
    with torch.no_grad():
        # non-trivial norms and biases, so that forgetting one shows
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
        x = torch.randn(3, 7, 16)
        expected = layer(x, mask)[0]
        got = call_student(fn, x, layer)
    expect_close(
        "encoder_layer(x, layer)",
        got,
        expected,
        "Pre-norm order: z = x + out(merge(attention(split(q(x̃)), split(k(x̃)), "
        "split(v(x̃))))) with x̃ = norm_attention(x), then z + mlp(norm_mlp(z)).",
    )
    check_dropout(
        "encoder_layer",
        lambda: call_student(fn, x, layer),
        lambda: layer(x, mask)[0],
        layer,
    )
    passed("encoder layer")
