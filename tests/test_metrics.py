import math

import pytest
import torch

from tme_lib.training.metrics import (
    accuracy,
    attention_distance,
    attention_entropy,
    entropy,
    pearson,
    r2_score,
    spearman,
    uniform_entropy,
)


def test_entropy_of_uniform_is_log_n():
    for n in (1, 2, 7, 400):
        assert entropy(torch.full((n,), 1.0 / n)).item() == pytest.approx(
            math.log(n), rel=1e-5
        )


def test_entropy_of_one_hot_is_zero():
    p = torch.zeros(10)
    p[3] = 1.0
    assert entropy(p).item() == pytest.approx(0.0, abs=1e-9)


def test_entropy_gradient_is_finite_where_weights_are_zero():
    logits = torch.tensor([[1.0, 2.0, -math.inf]], requires_grad=True)
    entropy(torch.softmax(logits, -1)).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_attention_entropy_global_ignores_padding():
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    w = mask.float() / mask.float().sum(1, keepdim=True)
    h = attention_entropy(w, mask)
    assert h.tolist() == pytest.approx([math.log(2), math.log(4)], rel=1e-5)
    assert torch.allclose(h, uniform_entropy(mask))


def test_attention_entropy_self_attention_averages_real_queries_only():
    mask = torch.tensor([[True, True, False]])
    w = torch.zeros(1, 2, 1, 3, 3)  # [B, layers, heads, Tq, Tk]
    w[..., :2, :2] = 0.5  # real queries: uniform over the 2 real keys
    w[..., 2, 0] = 1.0  # the padded query row is one-hot: must not count
    assert attention_entropy(w, mask).item() == pytest.approx(math.log(2), rel=1e-5)


def test_attention_entropy_extends_mask_for_a_cls_token():
    mask = torch.tensor([[True, False]])
    w = torch.tensor([[0.5, 0.5, 0.0]])  # CLS + one real token + padding
    assert attention_entropy(w, mask).item() == pytest.approx(math.log(2), rel=1e-5)
    with pytest.raises(ValueError):
        attention_entropy(torch.ones(1, 2) / 2, torch.ones(1, 3, dtype=torch.bool))


def test_accuracy_thresholds_logits_at_zero():
    assert (
        accuracy(torch.tensor([2.0, -1.0, 0.5, -0.1]), torch.tensor([1.0, 0.0, 0.0, 0.0]))
        == 0.75
    )


def test_regression_scores():
    y = torch.randn(200, generator=torch.Generator().manual_seed(0))
    assert r2_score(y, y) == pytest.approx(1.0)
    assert r2_score(torch.full_like(y, y.mean().item()), y) == pytest.approx(
        0.0, abs=1e-9
    )
    assert pearson(2 * y + 1, y) == pytest.approx(1.0)
    assert spearman(y**3, y) == pytest.approx(1.0)
    assert spearman(-y, y) == pytest.approx(-1.0)


def test_attention_distance_uniform_identity_and_padding():
    n, T = 5, 7
    mask = torch.tensor([[True] * n + [False] * (T - n)])
    uniform = torch.zeros(1, 2, T, T)  # [B, heads, T, T]
    uniform[..., :n] = 1 / n
    # rows of padding queries: whatever they hold must not count
    uniform[..., n:, :] = 0.5
    expected = (n * n - 1) / (3 * n)
    torch.testing.assert_close(
        attention_distance(uniform, mask), torch.full((1, 2), expected)
    )
    identity = torch.eye(T).expand(1, 2, T, T)
    torch.testing.assert_close(attention_distance(identity, mask), torch.zeros(1, 2))
    neighbour = torch.diag(torch.ones(T - 1), 1)[None]  # query i looks at i + 1 only
    torch.testing.assert_close(
        attention_distance(neighbour, torch.ones(1, T, dtype=torch.bool)),
        torch.tensor([(T - 1) / T]),
    )
    with pytest.raises(ValueError, match="words only"):
        attention_distance(torch.zeros(1, T + 1, T + 1), mask)


def test_difference_interval_matches_welch_and_says_when_zero_is_inside():
    from scipy import stats

    from tme_lib.training.metrics import difference_interval

    a, b = [88.1, 88.5, 87.9, 88.7, 88.3], [87.2, 87.9, 87.4, 87.0, 87.6]
    out = difference_interval(a, b)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert out["p"] == pytest.approx(welch.pvalue) and out["diff"] == pytest.approx(0.88)
    ci = welch.confidence_interval(0.95)
    assert (out["low"], out["high"]) == pytest.approx((ci.low, ci.high))
    assert out["detectable"]
    same = difference_interval(a, [x + 0.01 for x in reversed(a)])
    assert same["low"] < 0 < same["high"] and not same["detectable"]
    with pytest.raises(ValueError, match="at least 2"):
        difference_interval([1.0], a)


def test_paired_interval_matches_the_paired_t_test_and_removes_the_seed_effect():
    from scipy import stats

    from tme_lib.training.metrics import difference_interval, paired_interval

    seed_effect = [0.0, 1.5, -1.2, 0.8, -0.4]  # what a seed does to both arms alike
    a = [88.0 + e + 0.3 + 0.05 * i for i, e in enumerate(seed_effect)]
    b = [88.0 + e for e in seed_effect]
    out = paired_interval(a, b)
    assert out["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-6)
    assert out["df"] == 4 and out["detectable"] and out["low"] > 0
    # unpaired, the seed effect hides the same difference
    assert not difference_interval(a, b)["detectable"]
    with pytest.raises(ValueError):
        paired_interval(a, b[:4])


def test_holm_steps_down_and_stops_at_the_first_hypothesis_it_keeps():
    from tme_lib.training.metrics import holm

    # sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop, so 0.04 is kept too
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm([0.2, 0.01]) == [False, True]
    assert holm([0.04, 0.04]) == [False, False]  # each alone would pass at 0.05


def test_a_comparison_table_applies_holm_over_its_rows_and_says_which_test():
    from tme_lib.training.metrics import comparison_row, comparison_table

    seeds = range(5)
    base = {s: 80.0 + 0.1 * s for s in seeds}
    # clearly higher, and twice a difference only just detectable alone (p about 0.034)
    clear = {s: v + 2.0 + 0.01 * s for s, v in base.items()}
    step = {0: 0.1, 1: 0.3, 2: 0.1, 3: 0.3, 4: 0.05}
    close = {s: v + step[s] for s, v in base.items()}
    rows = [
        comparison_row("clear", clear, base, paired=True),
        comparison_row("close", close, base, paired=True),
        comparison_row("again", close, base, paired=True),
        comparison_row("alone", {0: 1.0}, base),  # one shared seed: left out
    ]
    table = comparison_table(rows)
    assert list(table["comparison"]) == ["clear", "close", "again"]
    assert list(table["test"]) == ["paired"] * 3
    assert list(table["verdict"]) == ["higher"] * 3
    # Holm: the second smallest p-value is compared with 0.05 / 2, and testing stops there
    assert list(table["after Holm"]) == ["higher", *["no detectable difference"] * 2]
    welch = comparison_row("close", close, base)
    assert welch["test"] == "Welch" and welch["verdict"] == "no detectable difference"


def test_arms_are_paired_exactly_when_they_see_the_same_batches(monkeypatch):
    from tme_lib.chapters import paired, tme9

    monkeypatch.setenv("TME_PROFILE", "full")
    adam, sgd = ("attention_simple", "adam", 0.0), ("attention_simple", "sgd", 0.0)
    # same data, seed and batches: only the optimiser differs
    assert tme9.paired(adam, sgd)
    lstm = ("attention_lstm", "adam", 0.0)  # 128 reviews a batch, against 64
    assert not tme9.paired(lstm, ("attention_query_value", "adam", 0.0))
    assert paired(("tme10", "self_attention"), ("tme10", "self_attention_pe"))
    assert not paired(("tme10", "self_attention"), ("tme9", "attention_lstm"))
