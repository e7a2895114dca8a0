"""Tests of the attention primitives (tme_lib/attention.py) on small random tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from tme_lib.blocks.attention import (
    MultiHeadAttention,
    merge_heads,
    positional_encoding,
    scaled_dot_product_attention,
    split_heads,
)


def random_mask(batch, length, generator):
    """Key-padding mask with a random number (≥ 1) of real keys at the start of each row."""
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    return torch.arange(length)[None, :] < lengths[:, None]


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 2, 5, 8, generator=g)
    k = torch.randn(3, 2, 7, 8, generator=g)
    v = torch.randn(3, 2, 7, 4, generator=g)
    return q, k, v, random_mask(3, 7, g)


def test_matches_torch_fused_kernel_with_mask(qkv):
    q, k, v, mask = qkv
    values, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    torch.testing.assert_close(values, expected)


def test_matches_formula_without_mask(qkv):
    q, k, v, _ = qkv
    values, weights = scaled_dot_product_attention(q, k, v)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(values, expected @ v)


def test_weights_are_distributions_over_real_keys(qkv):
    q, k, v, mask = qkv
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    assert weights.shape == (3, 2, 5, 7)
    pad = ~mask[:, None, None, :].expand_as(weights)
    assert torch.all(weights[pad] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 5))


def test_row_without_real_key_gives_zeros_not_nan(qkv):
    q, k, v, mask = qkv
    mask = mask.clone()
    mask[1] = False
    values, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(values).any()
    assert torch.all(weights[1] == 0) and torch.all(values[1] == 0)


def test_split_merge_heads_round_trip_and_layout():
    x = torch.arange(2 * 3 * 6, dtype=torch.float32).view(2, 3, 6)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 3, 2)
    torch.testing.assert_close(heads[:, 1], x[:, :, 2:4])  # head 1 owns features 2 and 3
    torch.testing.assert_close(merge_heads(heads), x)


@pytest.mark.parametrize("n_heads", [1, 4])
def test_multi_head_explicit_and_fused_paths_agree(n_heads):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, n_heads).eval()
    x = torch.randn(3, 6, 16)
    mask = random_mask(3, 6, torch.Generator().manual_seed(1))
    explicit, weights = mha(x, mask=mask, need_weights=True)
    fused, none = mha(x, mask=mask)
    assert none is None and weights.shape == (3, n_heads, 6, 6)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


def test_bias_is_added_to_the_scores_and_both_paths_agree():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(3, 6, 16)
    mask = random_mask(3, 6, torch.Generator().manual_seed(1))
    bias = torch.randn(3, 4, 6, 6)
    explicit, weights = mha(x, mask=mask, need_weights=True, bias=bias)
    fused, _ = mha(x, mask=mask, bias=bias)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)
    # padding still 0
    assert (weights[~mask[:, None, None, :].expand_as(weights)] == 0).all()
    q = split_heads(mha.query(x), 4) / math.sqrt(4)
    k = split_heads(mha.key(x), 4)
    expected = (q @ k.transpose(-2, -1) + bias).masked_fill(
        ~mask[:, None, None, :], -math.inf
    )
    torch.testing.assert_close(weights, expected.softmax(-1))
    unbiased, _ = mha(x, mask=mask, need_weights=True)
    assert not torch.allclose(unbiased, explicit)  # the bias is not ignored


def test_multi_head_equals_per_head_attention_by_hand():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 4, 8)
    out, _ = mha(x, need_weights=True)
    q, k, v = mha.query(x), mha.key(x), mha.value(x)
    heads = [
        scaled_dot_product_attention(q[..., s], k[..., s], v[..., s])[0]
        for s in (slice(0, 4), slice(4, 8))
    ]
    torch.testing.assert_close(out, mha.out(torch.cat(heads, dim=-1)))


def test_multi_head_parameter_count():
    d = 12
    mha = MultiHeadAttention(d, 3)
    assert sum(p.numel() for p in mha.parameters()) == 4 * (d * d + d)


def test_positional_encoding_values_by_hand():
    d = 6
    pe = positional_encoding(50, d)
    assert pe.shape == (50, d)
    for i, h in [(0, 0), (0, 1), (3, 0), (7, 2), (7, 3), (42, 5), (13, 4)]:
        if h % 2 == 0:
            expected = math.sin(i / 10000 ** (h / d))
        else:
            expected = math.cos(i / 10000 ** ((h - 1) / d))
        assert pe[i, h].item() == pytest.approx(expected, abs=1e-5), (i, h)


def test_positional_encoding_odd_width_and_relative_dot_products():
    assert positional_encoding(4, 5).shape == (4, 5)
    pe = positional_encoding(40, 16)
    gram = pe @ pe.T
    # pe[i]·pe[j] depends on i - j only: compare two pairs at the same distance.
    torch.testing.assert_close(gram[3, 10], gram[20, 27])
