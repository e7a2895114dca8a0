"""Tests of the TME 10 self-attention models (tme_lib/tme10.py), on tiny random vocabularies,
and of the chapter's exercise checkers (tme_lib/checkers/tme10.py)."""

import math
from pathlib import Path

import jupytext
import pytest
import torch

from tme_lib.blocks.attention import distance_bias
from tme_lib.blocks.layers import MaskedBatchNorm, SelfAttentionLayer
from tme_lib.chapters import tme10
from tme_lib.chapters.tme10 import SelfAttentionClassifier
from tme_lib.checkers import ExerciseError
from tme_lib.checkers import tme10 as checkers
from tme_lib.exercises import solution_cells, stub_source

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
@pytest.mark.parametrize("positional,slope", [(False, 0.0), (True, 0.0), (False, 0.5)])
def test_padding_does_not_change_the_logit(norm, pooling, positional, slope):
    model = make_model(
        norm=norm, pooling=pooling, positional=positional, distance_slope=slope
    )
    train_some_steps(model)
    model.eval()
    x, mask = padded_batch()
    logits, _ = model(x, mask)
    more_padding = torch.cat([x, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    more_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    alone, _ = model(x[1:, :3], mask[1:, :3])
    torch.testing.assert_close(
        model(more_padding, more_mask)[0], logits, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(alone, logits[1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling,extra", [("mean", 0), ("cls", 1)])
@pytest.mark.parametrize("slope", [0.0, 0.7])
def test_attention_shapes_and_padding_weights(pooling, extra, slope):
    model = make_model(pooling=pooling, n_layers=3, distance_slope=slope).eval()
    x, mask = padded_batch()
    logits, attention = model(x, mask)
    assert logits.shape == (2,) and attention is None
    logits_w, attention = model(x, mask, need_weights=True)
    length = 5 + extra
    assert attention.shape == (2, 3, 2, length, length)
    torch.testing.assert_close(logits_w, logits, atol=1e-5, rtol=1e-5)
    assert torch.all(attention[1, ..., extra + 3 :] == 0)  # padding keys of review 1
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3, 2, length))


def test_distance_bias_formula():
    bias = distance_bias(4, 0.5)
    expected = torch.tensor(
        [
            [0.0, -0.5, -1.0, -1.5],
            [-0.5, 0.0, -0.5, -1.0],
            [-1.0, -0.5, 0.0, -0.5],
            [-1.5, -1.0, -0.5, 0.0],
        ]
    )
    torch.testing.assert_close(bias, expected)
    with_cls = distance_bias(4, 0.5, cls=True)
    assert torch.all(with_cls[0] == 0) and torch.all(with_cls[:, 0] == 0)
    # words: unchanged distances
    torch.testing.assert_close(with_cls[1:, 1:], expected[:3, :3])
    assert distance_bias(4, 0.0) is None


@pytest.mark.parametrize("pooling,extra", [("mean", 0), ("cls", 1)])
def test_distance_bias_reaches_every_layer(pooling, extra):
    """With the query map zeroed every score is 0, so each layer's weights are the distance
    prior alone: row i ∝ exp(-slope·|i - j|) over the real keys (the CLS token: uniform)."""
    slope = 0.8
    model = make_model(pooling=pooling, n_layers=2, distance_slope=slope).eval()
    for layer in model.layers:
        torch.nn.init.zeros_(layer.attention.query.weight)
        torch.nn.init.zeros_(layer.attention.query.bias)
    x, mask = padded_batch()
    _, attention = model(x, mask, need_weights=True)
    length = 3 + extra  # review 1 has 3 real words
    prior = distance_bias(length, slope, cls=extra == 1).exp()
    prior = prior / prior.sum(-1, keepdim=True)
    for layer in range(2):
        for head in range(2):
            torch.testing.assert_close(attention[1, layer, head, :length, :length], prior)


def test_mean_attention_distance_shrinks_with_the_slope():
    """Query maps zeroed: every layer attends by the distance prior alone, uniform at slope 0
    ((n² - 1)/(3n) over n words) and much closer with a steep slope."""
    import numpy as np

    from tme_lib.data.text import TokenSplit

    rng = np.random.default_rng(0)  # six reviews of nine words
    split = TokenSplit(
        rng.integers(2, VOCAB, 54).astype(np.int32),
        np.arange(0, 55, 9),
        np.array([0, 1] * 3, dtype=np.float32),
    )
    distances = {}
    for slope in (0.0, 2.0):
        model = make_model(n_layers=2, distance_slope=slope)
        for layer in model.layers:
            torch.nn.init.zeros_(layer.attention.query.weight)
            torch.nn.init.zeros_(layer.attention.query.bias)
        distances[slope] = tme10.mean_attention_distance(
            model, split, n_reviews=4, batch_size=2
        )
        assert distances[slope].shape == (2,)
    torch.testing.assert_close(distances[0.0], torch.full((2,), (81 - 1) / 27))
    assert torch.all(distances[2.0] < 0.5)


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
    # project, cls, layers, norm, out
    expected = (DIM * 8 + 8) + 8 + 2 * layer + 2 * 8 + (8 + 1)
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
    torch.testing.assert_close(
        real.var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0
    )
    x2 = x.clone()
    x2[~mask] = 100.0  # padding content must not move the statistics
    torch.testing.assert_close(norm(x2, mask)[mask], real)


def test_variants_differ_only_in_pooling_and_positions():
    vectors = torch.randn(VOCAB, DIM)
    built = {
        name: tme10.build_model(name, vectors, d_model=8, n_heads=2)
        for name in tme10.VARIANTS
    }
    assert [(m.pooling, m.positional, m.distance_slope) for m in built.values()] == [
        ("mean", False, 0),
        ("mean", True, 0),
        ("cls", False, 0),
        ("cls", True, 0),
        ("mean", False, 0.25),
    ]
    assert {s.model_name for s in tme10.plan()} == set(tme10.VARIANTS)
    assert len({s.key() for s in tme10.plan()}) == len(tme10.plan())


def test_slope_search_configs(monkeypatch):
    """The slope search replaces the variant's slope, is named after it and never collides
    with a run of the plan (its runs stay out of the results table)."""
    monkeypatch.setenv("TME_PROFILE", "full")
    search = tme10.slope_search()
    assert [s.model["distance_slope"] for s in search] == list(tme10.OTHER_SLOPES["full"])
    assert all(s.name.endswith(f"-m{s.model['distance_slope']:g}") for s in search)
    names = {s.name for s in tme10.table_plan()}
    assert not names & {cfg.name for cfg in search}
    model = tme10.build_model(
        "self_attention_distance", torch.randn(VOCAB, DIM), **search[0].model_kwargs
    )
    assert model.distance_slope == tme10.OTHER_SLOPES["full"][0] != 0.25


def test_largest_rise():
    assert tme10.largest_rise([0.7, 0.5, 0.6, 0.55, 0.9, 0.4]) == pytest.approx(0.35)
    assert tme10.largest_rise([0.7, 0.6, 0.5]) == 0.0
    assert tme10.largest_rise([0.7]) == 0.0


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="pooling"):
        make_model(pooling="max")
    with pytest.raises(ValueError, match="norm"):
        make_model(norm="group")
    with pytest.raises(KeyError, match="self_attention_cls"):
        tme10.build_model("transformer", torch.randn(VOCAB, DIM))


# --- Checkers: each rejects the stub and plausible wrong answers, and accepts the solution -----

NOTEBOOK = (
    Path(__file__).resolve().parent.parent / "notebooks" / "02_tme10_self_attention.py"
)


def _exec_cells(transform=lambda source: source) -> dict:
    namespace = {"torch": torch, "math": math}
    for source in solution_cells(jupytext.read(NOTEBOOK)):
        exec(transform(source), namespace)
    return namespace


SOLUTIONS = _exec_cells()
STUBS = _exec_cells(stub_source)
EXERCISES = {
    "scaled_dot_product_attention": checkers.check_scaled_dot_product_attention,
    "positional_encoding": checkers.check_positional_encoding,
    "self_attention_layer": checkers.check_self_attention_layer,
    "prepend_cls": checkers.check_prepend_cls,
    "distance_bias": checkers.check_distance_bias,
}


@pytest.mark.parametrize("name", EXERCISES)
def test_checker_accepts_the_notebook_solution(name):
    EXERCISES[name](SOLUTIONS[name])


@pytest.mark.parametrize("name", EXERCISES)
def test_checker_rejects_the_stub(name):
    with pytest.raises(ExerciseError, match="not implemented"):
        EXERCISES[name](STUBS[name])


def attention_without_sqrt_d(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], -1e9)
    weights = scores.softmax(-1)
    return weights @ value, weights


def attention_ignoring_mask(query, key, value, mask=None):
    weights = (query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])).softmax(-1)
    return weights @ value, weights


def attention_with_minus_inf(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    weights = scores.softmax(-1)
    return weights @ value, weights


def attention_softmax_over_queries(query, key, value, mask=None):
    weights = (query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])).softmax(-2)
    return weights @ value, weights


@pytest.mark.parametrize(
    "wrong, message",
    [
        (attention_without_sqrt_d, "√d"),
        (attention_ignoring_mask, "padding keys"),
        (attention_with_minus_inf, "NaN"),
        (attention_softmax_over_queries, "values differ"),
    ],
)
def test_attention_checker_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checkers.check_scaled_dot_product_attention(wrong)


def pe_sin_cos_swapped(n_positions, d):
    i = torch.arange(n_positions, dtype=torch.float32)[:, None]
    h = torch.arange(d)[None, :]
    angle = i / 10000 ** ((h - h % 2) / d)
    return torch.where(h % 2 == 0, torch.cos(angle), torch.sin(angle))


def pe_exponent_not_rounded(n_positions, d):
    i = torch.arange(n_positions, dtype=torch.float32)[:, None]
    h = torch.arange(d)[None, :]
    angle = i / 10000 ** (h / d)  # odd h should use (h - 1) / d
    return torch.where(h % 2 == 0, torch.sin(angle), torch.cos(angle))


def pe_positions_from_one(n_positions, d):
    return SOLUTIONS["positional_encoding"](n_positions + 1, d)[1:]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (pe_sin_cos_swapped, "swapped"),
        (pe_exponent_not_rounded, "share one frequency"),
        (pe_positions_from_one, "position 0"),
    ],
)
def test_positional_encoding_checker_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checkers.check_positional_encoding(wrong)


def layer_without_mask(layer, x, mask):
    attended, _ = layer.attention(layer.norm_attention(x, mask))
    z = x + layer.dropout(attended)
    return z + layer.dropout(layer.mlp(layer.norm_mlp(z, mask)))


def layer_without_residual(layer, x, mask):
    attended, _ = layer.attention(layer.norm_attention(x, mask), mask=mask)
    return attended + layer.mlp(layer.norm_mlp(attended, mask))


def layer_post_norm(layer, x, mask):
    attended, _ = layer.attention(x, mask=mask)
    z = layer.norm_attention(x + attended, mask)
    return layer.norm_mlp(z + layer.mlp(z), mask)


def layer_adds_input_twice(layer, x, mask):
    return x + SOLUTIONS["self_attention_layer"](layer, x, mask)


def layer_without_dropout(layer, x, mask):
    attended, _ = layer.attention(layer.norm_attention(x, mask), mask=mask)
    z = x + attended
    return z + layer.mlp(layer.norm_mlp(z, mask))


def layer_dropout_on_the_input(layer, x, mask):
    x = layer.dropout(x)
    attended, _ = layer.attention(layer.norm_attention(x, mask), mask=mask)
    z = x + attended
    return z + layer.mlp(layer.norm_mlp(z, mask))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (layer_without_mask, "padding changes"),
        (layer_without_residual, "residual"),
        (layer_post_norm, "values differ"),
        (layer_adds_input_twice, "added twice"),
        (layer_without_dropout, "ignores dropout"),
        (layer_dropout_on_the_input, "not to the input or to the sum"),
    ],
)
def test_layer_checker_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checkers.check_self_attention_layer(wrong)


def cls_appended(h, mask, cls):
    batch = h.shape[0]
    return (
        torch.cat([h, cls.expand(batch, 1, -1)], dim=1),
        torch.cat([mask, mask.new_ones(batch, 1)], dim=1),
    )


def cls_mask_not_extended(h, mask, cls):
    return torch.cat([cls.expand(h.shape[0], 1, -1), h], dim=1), mask


def cls_marked_as_padding(h, mask, cls):
    batch = h.shape[0]
    return (
        torch.cat([cls.expand(batch, 1, -1), h], dim=1),
        torch.cat([mask.new_zeros(batch, 1), mask], dim=1),
    )


@pytest.mark.parametrize(
    "wrong, message",
    [
        (cls_appended, "at the end"),
        (cls_mask_not_extended, "must grow"),
        (cls_marked_as_padding, "must be real"),
    ],
)
def test_cls_checker_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checkers.check_prepend_cls(wrong)


def bias_positive(length, slope):
    return -SOLUTIONS["distance_bias"](length, slope)


def bias_without_abs(length, slope):
    position = torch.arange(length, dtype=torch.float32)
    return -slope * (position[:, None] - position[None, :])


def bias_squared(length, slope):
    return -slope * SOLUTIONS["distance_bias"](length, 1.0) ** 2


@pytest.mark.parametrize(
    "wrong, message",
    [
        (bias_positive, "sign is reversed"),
        (bias_without_abs, "absolute value"),
        (bias_squared, "values differ|-slope"),
    ],
)
def test_distance_bias_checker_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        checkers.check_distance_bias(wrong)


def test_every_variant_has_the_same_seeds_and_the_comparisons_name_them(monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "full")
    seeds = {
        v: {s.seed for s in tme10.table_plan() if s.model_name == v}
        for v in tme10.VARIANTS
    }
    assert (
        all(s == set(tme10.SEEDS["full"]) for s in seeds.values())
        and len(tme10.SEEDS["full"]) >= 5
    )
    for a, b in tme10.COMPARISONS:
        for chapter, model in (a, b):
            assert (chapter, model in tme10.VARIANTS) in (
                ("tme10", True),
                ("tme9", False),
            )


def test_comparison_table_spans_the_two_chapters():
    import pandas as pd

    def runs(model, optimizer, base, step):
        return [
            dict(
                model=model,
                optimizer=optimizer,
                entropy_weight=0.0,
                seed=s,
                name=f"{model}-s{s}",
                test_acc=base + step * s,
            )
            for s in range(5)
        ]

    tables = {
        "tme10": pd.DataFrame(
            runs("self_attention_distance", "adamw", 0.885, 0.001)
            + runs("self_attention", "adamw", 0.880, 0.001)
        ),
        "tme9": pd.DataFrame(
            runs("attention_lstm", "adam", 0.885, -0.001)
            + runs("attention_lstm", "sgd", 0.70, 0.0)
        ),  # SGD: not an arm
    }
    out = tme10.comparison_table(
        tables,
        [
            (("tme10", "self_attention_distance"), ("tme10", "self_attention")),
            (("tme10", "self_attention_distance"), ("tme9", "attention_lstm")),
            (
                ("tme10", "self_attention_cls"),
                ("tme10", "self_attention"),
            ),  # no runs: left out
        ],
    )
    assert out["difference"].tolist() == pytest.approx([0.5, 0.4])
    assert out["verdict"].tolist()[0] == "higher"
    assert out["seeds"].tolist() == [5, 5]
