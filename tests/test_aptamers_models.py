"""Aptamer chapter: model sizes and outputs, baselines, data splits."""

import numpy as np
import pytest
import torch

from tme_lib.chapters.aptamers.baselines import fit_baseline, kmer_counts
from tme_lib.chapters.aptamers.data import split
from tme_lib.chapters.aptamers.models import (
    AptamerTransformer,
    PairBias,
    SourceTransformer,
)
from tme_lib.chapters.aptamers.sequences import random_library


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_source_model_has_the_published_parameter_count():
    assert n_params(SourceTransformer()) == 1_786_753  # vocabulary mistakenly = 30
    assert n_params(SourceTransformer(vocab=4)) == 1_783_425


def test_source_model_predicts_one_unclamped_number_per_strand():
    torch.manual_seed(0)
    model = SourceTransformer(vocab=4).eval()
    x = torch.randint(0, 4, (64, 30))
    pred, attention = model(x, torch.ones_like(x, dtype=torch.bool))
    assert pred.shape == (64,) and attention is None
    # no final ReLU: negative energies are reachable
    assert (pred < 0).any() and (pred > 0).any()


def test_our_model_returns_attention_rows_that_are_distributions():
    torch.manual_seed(0)
    model = AptamerTransformer(d_model=16, n_layers=2, n_heads=2).eval()
    x = torch.randint(0, 4, (5, 30))
    mask = torch.ones_like(x, dtype=torch.bool)
    fast, none = model(x, mask)
    pred, weights = model(x, mask, need_weights=True)
    assert none is None and pred.shape == (5,) and weights.shape == (5, 2, 2, 30, 30)
    assert torch.allclose(weights.sum(-1), torch.ones(5, 2, 2, 30), atol=1e-5)
    assert torch.allclose(fast, pred, atol=1e-5)  # fused and explicit attention agree


def test_stack_ids_encode_each_pair_and_its_inner_neighbour():
    x = torch.tensor([[0, 1, 2, 3]])  # A C G T
    ids = PairBias.stack_ids(x)[0]
    digits = lambda v: [v // 125, v // 25 % 5, v // 5 % 5, v % 5]  # noqa: E731
    assert digits(ids[0, 3].item()) == [
        0,
        3,
        1,
        2,
    ]  # (x_0, x_3, x_1, x_2): A·T stacked on C·G
    assert digits(ids[3, 0].item()) == [
        3,
        0,
        4,
        4,
    ]  # both neighbours lie outside the strand
    assert ids.max() < 5**4 and ids.unique().numel() == 16  # 16 pairs, no two alike


def test_pair_bias_reaches_every_layer_and_head():
    torch.manual_seed(0)
    model = AptamerTransformer(d_model=16, n_layers=2, n_heads=2, pair_channels=4).eval()
    x = torch.randint(0, 4, (5, 30))
    mask = torch.ones_like(x, dtype=torch.bool)
    bias, summary = model.pairs(x)
    assert bias.shape == (2, 5, 2, 30, 30) and summary.shape == (5, 4)
    pred, weights = model(x, mask, need_weights=True)
    torch.testing.assert_close(model(x, mask)[0], pred, atol=1e-5, rtol=1e-5)
    pairs = model.pairs
    with torch.no_grad():  # channel 0 = "offset j - i is 7"; every bias = 100 × channel 0
        for module in (pairs.stack, pairs.offset, pairs.to_bias, *pairs.convs):
            for p in module.parameters():
                p.zero_()
        pairs.offset.weight[29 + 7, 0] = 1.0
        pairs.to_bias.weight[:, 0] = 100.0
    _, weights = model(x, mask, need_weights=True)
    # every layer and head: query 0 looks at key 7
    assert (weights[:, :, :, 0, 7] > 0.99).all()


def test_our_model_depends_on_where_each_letter_is():
    torch.manual_seed(0)
    model = AptamerTransformer(d_model=16, n_layers=1, n_heads=2, conv_layers=0).eval()
    x = torch.randint(0, 4, (4, 30))
    mask = torch.ones_like(x, dtype=torch.bool)
    assert not torch.allclose(model(x, mask)[0], model(x.flip(1), mask)[0])


def test_target_scaling_centres_an_untrained_model_on_the_mean():
    torch.manual_seed(0)
    model = AptamerTransformer(d_model=16, n_layers=1, target_mean=-2.6, target_scale=1.3)
    torch.nn.init.zeros_(model.head[-1].weight)
    torch.nn.init.zeros_(model.head[-1].bias)
    x = torch.randint(0, 4, (3, 30))
    assert torch.allclose(
        model(x, torch.ones_like(x, dtype=torch.bool))[0], torch.full((3,), -2.6)
    )


def test_kmer_counts_count_every_substring():
    ids = np.array([[0, 0, 1, 3]])  # AACT
    counts = kmer_counts(ids, k_max=2)
    assert counts.shape == (1, 4 + 16)
    assert counts[0, :4].tolist() == [2, 1, 0, 1]
    aa, ac, ct = 4 + 0, 4 + 1, 4 + 1 * 4 + 3
    assert counts[0, [aa, ac, ct]].tolist() == [1, 1, 1] and counts[0, 4:].sum() == 3


def test_baselines_rank_as_expected_on_a_linear_target():
    ids = random_library(3_000, seed=1, length=20)
    y = (ids == 2).sum(1).astype(np.float32) + 0.1 * np.random.default_rng(
        0
    ).standard_normal(3_000)
    train, test = (ids[:2_500], y[:2_500]), (ids[2_500:], y[2_500:])
    mean = fit_baseline("mean", train, test)
    ridge = fit_baseline("ridge", train, test, k_max=2)
    assert (
        abs(mean["test_r2"]) < 0.02
        and ridge["test_r2"] > 0.95
        and ridge["pearson"] > 0.97
    )
    assert np.isnan(mean["pearson"]) and np.isnan(mean["spearman"])
    assert mean["test_mse"] == pytest.approx(
        np.mean((test[1] - train[1].mean()) ** 2), rel=1e-5
    )
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baseline("lasso", train, test)


def test_split_puts_test_first_and_keeps_training_sets_nested():
    ids = np.arange(100, dtype=np.uint8)[:, None].repeat(3, 1)
    y = np.arange(100, dtype=np.float32)
    small, large = split(ids, y, 10, 20, n_train=30), split(ids, y, 10, 20)
    assert small.test[1].tolist() == list(range(20)) and small.val[1].tolist() == list(
        range(20, 30)
    )
    assert (
        np.array_equal(large.train[1][:30], small.train[1]) and len(large.train[1]) == 70
    )
    with pytest.raises(ValueError, match="label a larger library"):
        split(ids, y, 10, 20, n_train=71)
    loaders = small.loaders(batch_size=8)
    batch = next(iter(loaders.train))
    assert batch.x.dtype == torch.long and batch.mask.all() and len(loaders.train) == 4
