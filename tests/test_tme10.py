"""Tests of the TME 10 self-attention models (tme_lib/tme10.py), on tiny random vocabularies."""

import pytest
import torch

from tme_lib.tme10 import MaskedBatchNorm, SelfAttentionClassifier, SelfAttentionLayer

VOCAB, DIM = 30, 10


def make_model(**kwargs):
    torch.manual_seed(0)
    vectors = torch.randn(VOCAB, DIM)
    defaults = dict(d_model=8, n_layers=2, n_heads=2, dropout=0.1)
    return SelfAttentionClassifier(vectors, **{**defaults, **kwargs})


def padded_batch():
    """Two reviews of lengths 5 and 3 (ids ≥ 2), padded with 0 to length 5."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(2, VOCAB, (2, 5), generator=g)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    return x.masked_fill(~mask, 0), mask


def train_some_steps(model, steps=3):
    """A few optimiser steps, so BatchNorm running statistics are not their initial values."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, mask = padded_batch()
    for _ in range(steps):
        opt.zero_grad()
        model(x, mask)[0].sum().backward()
        opt.step()


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("positional", [False, True])
def test_padding_does_not_change_the_logit(norm, pooling, positional):
    model = make_model(norm=norm, pooling=pooling, positional=positional)
    train_some_steps(model)
    model.eval()
    x, mask = padded_batch()
    logits, _ = model(x, mask)
    more_padding = torch.cat([x, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    more_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    alone, _ = model(x[1:, :3], mask[1:, :3])
    torch.testing.assert_close(model(more_padding, more_mask)[0], logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, logits[1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling,extra", [("mean", 0), ("cls", 1)])
def test_attention_shapes_and_padding_weights(pooling, extra):
    model = make_model(pooling=pooling, n_layers=3).eval()
    x, mask = padded_batch()
    logits, attention = model(x, mask)
    assert logits.shape == (2,) and attention is None
    logits_w, attention = model(x, mask, need_weights=True)
    length = 5 + extra
    assert attention.shape == (2, 3, 2, length, length)
    torch.testing.assert_close(logits_w, logits, atol=1e-5, rtol=1e-5)
    assert torch.all(attention[1, ..., extra + 3:] == 0)  # padding keys of review 1
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3, 2, length))


def test_cls_token_is_prepended_with_a_real_mask():
    model = make_model(pooling="cls", positional=False)
    x, mask = padded_batch()
    h, new_mask = model.embed(x, mask)
    assert h.shape == (2, 6, 8)
    assert new_mask[:, 0].all() and torch.equal(new_mask[:, 1:], mask)
    torch.testing.assert_close(h[0, 0], model.cls)
    torch.testing.assert_close(h[:, 1:], model.project(model.vectors[x]))


def test_layer_parameter_count_by_hand():
    d, mult = 8, 2
    layer = SelfAttentionLayer(d, n_heads=2, norm="layer", ffn_mult=mult)
    attention = 4 * (d * d + d)
    mlp = d * mult * d + mult * d + mult * d * d + d
    norms = 2 * 2 * d
    assert sum(p.numel() for p in layer.parameters()) == attention + mlp + norms


def test_classifier_parameter_count_and_frozen_vectors():
    model = make_model(pooling="cls", n_layers=2)
    layer = sum(p.numel() for p in model.layers[0].parameters())
    expected = (DIM * 8 + 8) + 8 + 2 * layer + 2 * 8 + (8 + 1)  # project, cls, layers, norm, out
    assert sum(p.numel() for p in model.parameters()) == expected
    assert "vectors" not in model.state_dict()


def test_gradient_reaches_query_key_value_maps():
    model = make_model()
    x, mask = padded_batch()
    model(x, mask)[0].sum().backward()
    for layer in model.layers:
        for linear in (layer.attention.query, layer.attention.key, layer.attention.value):
            assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0


def test_masked_batch_norm_ignores_padding_values():
    norm = MaskedBatchNorm(3)
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    y = norm(x, mask)
    real = y[mask]
    torch.testing.assert_close(real.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(real.var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    x2 = x.clone()
    x2[~mask] = 100.0  # padding content must not move the statistics
    torch.testing.assert_close(norm(x2, mask)[mask], real)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="pooling"):
        make_model(pooling="max")
    with pytest.raises(ValueError, match="norm"):
        make_model(norm="group")
