"""The aptamer chapter's checkers reject stubs and plausible mistakes, and accept solutions."""

import math

import pytest
import torch

from tme_lib.blocks.attention import merge_heads as merge
from tme_lib.blocks.attention import split_heads as split
from tme_lib.checkers import ExerciseError
from tme_lib.checkers.aptamers import (
    check_attention,
    check_encoder_layer,
    check_split_merge,
)


def attention(query, key, value):
    weights = torch.softmax(
        query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1]), dim=-1
    )
    return weights @ value, weights


def attention_stub(query, key, value):
    raise NotImplementedError("softmax of the scaled scores")


def attention_unscaled(query, key, value):
    weights = torch.softmax(query @ key.transpose(-2, -1), dim=-1)
    return weights @ value, weights


def attention_scaled_by_d(query, key, value):
    weights = torch.softmax(query @ key.transpose(-2, -1) / query.shape[-1], dim=-1)
    return weights @ value, weights


def attention_softmax_over_queries(query, key, value):
    weights = torch.softmax(
        query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1]), dim=-2
    )
    return weights @ value, weights


def attention_3d_only(query, key, value):
    weights = torch.softmax(
        torch.bmm(query, key.transpose(1, 2)) / math.sqrt(query.shape[-1]), -1
    )
    return torch.bmm(weights, value), weights


def test_attention_checker_accepts_the_solution(capsys):
    check_attention(attention)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong",
    [
        attention_stub,
        attention_unscaled,
        attention_scaled_by_d,
        attention_softmax_over_queries,
    ],
)
def test_attention_checker_rejects_stub_and_mistakes(wrong):
    with pytest.raises(ExerciseError):
        check_attention(wrong)


def test_attention_checker_rejects_a_version_without_heads():
    with pytest.raises((ExerciseError, RuntimeError)):
        check_attention(attention_3d_only)


def split_stub(x, n_heads):
    raise NotImplementedError("view, then transpose")


def split_without_transpose(x, n_heads):
    b, t, d = x.shape
    return x.reshape(b, n_heads, t, d // n_heads)  # right shape, wrong features per head


def merge_without_transpose(x):
    b, h, t, dh = x.shape
    return x.reshape(b, t, h * dh)


def test_split_merge_checker():
    check_split_merge(split, merge)
    for wrong_split, wrong_merge in [
        (split_stub, merge),
        (split_without_transpose, merge),
        (split, merge_without_transpose),
    ]:
        with pytest.raises(ExerciseError):
            check_split_merge(wrong_split, wrong_merge)


def _attend(x, layer):
    mha = layer.attention
    q, k, v = (split(f(x), mha.n_heads) for f in (mha.query, mha.key, mha.value))
    return mha.out(merge(attention(q, k, v)[0]))


def encoder_layer(x, layer):
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    z = x + layer.dropout(_attend(layer.norm_attention(x, mask), layer))
    return z + layer.dropout(layer.mlp(layer.norm_mlp(z, mask)))


def encoder_layer_without_dropout(x, layer):
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    z = x + _attend(layer.norm_attention(x, mask), layer)
    return z + layer.mlp(layer.norm_mlp(z, mask))


def encoder_layer_dropout_on_the_sum(x, layer):
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    z = layer.dropout(x + _attend(layer.norm_attention(x, mask), layer))
    return layer.dropout(z + layer.mlp(layer.norm_mlp(z, mask)))


def encoder_layer_stub(x, layer):
    raise NotImplementedError("attention on the normalised input, then the MLP")


def encoder_layer_post_norm(x, layer):
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    z = layer.norm_attention(x + _attend(x, layer), mask)
    return layer.norm_mlp(z + layer.mlp(z), mask)


def encoder_layer_no_residual(x, layer):
    mask = torch.ones(x.shape[:2], dtype=torch.bool)
    z = _attend(layer.norm_attention(x, mask), layer)
    return z + layer.mlp(layer.norm_mlp(z, mask))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (encoder_layer_stub, "not implemented"),
        (encoder_layer_post_norm, "Pre-norm order"),
        (encoder_layer_no_residual, "Pre-norm order"),
        (encoder_layer_without_dropout, "ignores dropout"),
        (encoder_layer_dropout_on_the_sum, "not to the input or to the sum"),
    ],
)
def test_encoder_layer_checker(wrong, message, capsys):
    check_encoder_layer(encoder_layer)
    assert "✓" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=message):
        check_encoder_layer(wrong)


def merge_with_view(x):
    b, h, t, dh = x.shape
    return x.transpose(1, 2).view(b, t, h * dh)  # works on split's output only


def merge_transposing_the_wrong_axes(x):
    b, h, t, dh = x.shape
    return x.transpose(2, 3).reshape(b, t, h * dh)


def test_split_merge_checker_names_view_after_transpose_and_wraps_errors():
    with pytest.raises(ExerciseError, match=r"no longer contiguous.*\.reshape"):
        check_split_merge(split, merge_with_view)
    with pytest.raises(ExerciseError, match="merge must undo split"):
        check_split_merge(split, merge_transposing_the_wrong_axes)

    def split_4d(x, n_heads):  # the wrong axes for a 4-D tensor: a raw PyTorch error
        return x.view(x.shape[0], x.shape[1], n_heads, -1).transpose(1, 4)

    with pytest.raises(
        ExerciseError, match=r"split_4d raised IndexError.*float32 tensor"
    ):
        check_split_merge(split_4d, merge)
