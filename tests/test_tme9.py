"""Tests of the TME 9 models (tme_lib.chapters.tme9) on tiny synthetic reviews."""

from __future__ import annotations

import functools
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tme_lib.blocks.embedding import masked_mean
from tme_lib.chapters import tme9
from tme_lib.chapters.tme9 import (
    MODELS,
    AttentionLSTM,
    AttentionSimple,
    build_model,
    planted_attention,
)
from tme_lib.checkers import ExerciseError
from tme_lib.checkers import tme9 as checkers
from tme_lib.data.text import pack
from tme_lib.exercises import solution_cells, stub_source

VOCAB, DIM = 30, 50
ATTENTION_MODELS = [name for name in MODELS if name != "baseline"]


@pytest.fixture()
def vectors():
    torch.manual_seed(0)
    v = torch.randn(VOCAB, DIM)
    v[0] = 0.0  # padding row, as the vector loader writes it
    return v


def _model(name, vectors, **kwargs):
    torch.manual_seed(1)
    model = build_model(name, vectors, **kwargs)
    # Random (not zero-initialised) queries, so the attention is far from uniform and a
    # padding leak would show.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def _batch(lengths):
    """Reviews of the given lengths, right-padded with id 0, and their mask."""
    torch.manual_seed(2)
    width = max(lengths)
    x = torch.randint(2, VOCAB, (len(lengths), width))
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return x.masked_fill(~mask, 0), mask


@pytest.mark.parametrize("name", ATTENTION_MODELS)
def test_padding_gets_zero_weight_and_weights_sum_to_one(name, vectors):
    x, mask = _batch([5, 2, 7])
    _, weights = _model(name, vectors)(x, mask)
    assert weights.shape == x.shape
    assert torch.all(weights[~mask] == 0.0), "padding must get exactly zero attention"
    assert torch.all(weights[mask] > 0.0)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))


@pytest.mark.parametrize("name", list(MODELS))
def test_padding_does_not_change_the_logit(name, vectors):
    model = _model(name, vectors)
    x, mask = _batch([5, 2, 7])
    logit, _ = model(x, mask)
    # Five more padded positions holding garbage ids: a model that reads padding would change.
    mask_long = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], dim=1)
    x_long = torch.cat([x, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    x_long = torch.where(mask_long, x_long, torch.randint(2, VOCAB, x_long.shape))
    logit_long, _ = model(x_long, mask_long)
    torch.testing.assert_close(logit_long, logit)
    alone, _ = model(x[1:2, :2], mask[1:2, :2])  # the short review without any padding
    torch.testing.assert_close(alone, logit[1:2])


@pytest.mark.parametrize("name", list(MODELS))
def test_one_token_and_all_oov_reviews(name, vectors):
    x = torch.tensor([[1, 1, 1], [7, 0, 0]])  # all out-of-vocabulary; a single word
    mask = torch.tensor([[True, True, True], [True, False, False]])
    logit, weights = _model(name, vectors)(x, mask)
    assert torch.isfinite(logit).all()
    if weights is not None:
        torch.testing.assert_close(weights[1], torch.tensor([1.0, 0.0, 0.0]))
        # identical keys; LSTM states differ along the review
        if name != "attention_lstm":
            torch.testing.assert_close(weights[0], torch.full((3,), 1 / 3))


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_mean(x, torch.tensor([[True, True, False]])).item() == 2.0
    assert masked_mean(x, torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0  # no NaN


def test_parameter_counts_by_hand(vectors):
    d, hidden = DIM, 8
    expected = {
        "baseline": d + 1,
        "attention_simple": d + (d + 1),
        "attention_query": (d * d + d) + (d + 1),
        "attention_query_value": 2 * (d * d + d) + (d + 1),
    }
    for name, count in expected.items():
        assert sum(p.numel() for p in build_model(name, vectors).parameters()) == count, (
            name
        )
    # 4 gates, input and hidden maps, two biases, 2 directions
    lstm = 2 * 4 * hidden * (d + hidden + 2)
    lstm_total = lstm + (2 * hidden) ** 2 + 2 * hidden + 2 * hidden + 1
    model = build_model("attention_lstm", vectors, hidden=hidden)
    assert sum(p.numel() for p in model.parameters()) == lstm_total


@pytest.mark.parametrize("name", list(MODELS))
def test_vectors_are_frozen_and_not_saved(name, vectors):
    model = _model(name, vectors)
    model.train()
    x, mask = _batch([4, 3])
    model(x, mask)[0].sum().backward()
    assert not model.embed.vectors.requires_grad and model.embed.vectors.grad is None
    assert all("vectors" not in key for key in model.state_dict())
    assert all(p.grad is not None for p in model.parameters()), (
        "every learned parameter trains"
    )


def test_lstm_states_are_zero_on_padding_and_match_unpadded_run(vectors):
    model = _model("attention_lstm", vectors, hidden=6)
    x, mask = _batch([6, 3])
    states = model.states(model.embed(x), mask)
    assert torch.all(states[1, 3:] == 0.0)
    # The backward direction must start on the last real word: same states as the review alone.
    alone = model.states(model.embed(x[1:2, :3]), mask[1:2, :3])
    torch.testing.assert_close(states[1:2, :3], alone)


def test_build_model_rejects_unknown_names(vectors):
    with pytest.raises(KeyError, match="attention_simple"):
        build_model("attention_simpel", vectors)
    assert isinstance(build_model("attention_lstm", vectors, hidden=4), AttentionLSTM)


def test_run_configs_are_distinct_and_take_per_optimizer_settings(monkeypatch):
    for profile in ("smoke", "full"):
        monkeypatch.setenv("TME_PROFILE", profile)
        plan = tme9.plan()
        assert len({c.name for c in plan}) == len(plan), (
            "two runs would share a record name"
        )
        assert len({c.key() for c in plan}) == len(plan)
    monkeypatch.setenv("TME_PROFILE", "full")
    adam, sgd = tme9.spec("attention_lstm", "adam"), tme9.spec("attention_lstm", "sgd")
    assert (adam.training.optimizer, sgd.training.optimizer) == ("adam", "sgd")
    assert adam.training.lr != sgd.training.lr and adam.model["hidden"] == 32
    assert (
        tme9.spec("baseline").training.lr == 5 * tme9.spec("attention_simple").training.lr
    )
    toy = tme9.spec("attention_simple", settings="smoke")
    assert toy.name.startswith("toy-") and toy.data["dataset"] == "toy"
    assert toy.inputs["corpus"] == "toy" and toy.data["profile"] == "full"


def test_planted_attention_of_uniform_weights_is_the_uniform_share():
    split = pack([np.array([2, 3, 4, 5]), np.array([3, 2])], [1.0, 0.0])
    split.planted, split.planted_offsets = np.array([0, 3, 1]), np.array([0, 2, 3])
    model = AttentionSimple(torch.randn(VOCAB, DIM))  # zero query: uniform weights
    share = planted_attention(model, split)
    assert share["planted_mass"] == pytest.approx((2 / 4 + 1 / 2) / 2)
    assert share["uniform_share"] == pytest.approx(share["planted_mass"])
    with torch.no_grad():
        model.query.copy_(10 * model.embed.vectors[2])  # a query that looks for word 2
    assert planted_attention(model, split)["planted_mass"] > share["planted_mass"]


def test_planted_attention_control_tells_words_from_positions():
    """On the toy corpus: a query for the sentiment words beats its control (other reviews'
    planted positions); the same mass on those positions without the words is the control."""
    from tme_lib.data.toy import NEGATIVE, POSITIVE, load_toy

    data = load_toy()
    vectors = torch.zeros(len(data.vocab), 2)
    for word in POSITIVE + NEGATIVE:
        vectors[data.vocab.stoi[word], 0] = 1.0
    model = AttentionSimple(vectors)
    with torch.no_grad():
        model.query.copy_(torch.tensor([20.0, 0.0]))
    share = planted_attention(model, data.test)
    assert share["planted_mass"] > 0.99 and share["control_mass"] < 0.05


# --- Exercise checkers: they reject the stub and plausible wrong answers, accept the solution ---

NOTEBOOK = (
    Path(__file__).resolve().parent.parent / "notebooks" / "01_tme9_global_attention.py"
)
CHECKS = {
    "masked_mean": checkers.check_masked_mean,
    "simple_attention": checkers.check_simple_attention,
    "query_value_attention": checkers.check_query_value_attention,
    "lstm_states": checkers.check_lstm_states,
    "entropy_penalised_loss": checkers.check_entropy_penalty,
}


@functools.lru_cache(maxsize=2)
def _exercises(stub: bool) -> dict:
    """The notebook's solution cells run in one namespace (as in the notebook), or their stubs."""
    namespace = {"torch": torch, "F": F, "tme9": tme9}
    for source in solution_cells(jupytext.read(NOTEBOOK)):
        exec(stub_source(source) if stub else source, namespace)
    return namespace


def test_notebook_has_one_solution_per_checker():
    assert set(CHECKS) <= set(_exercises(stub=False))


@pytest.mark.parametrize("name", list(CHECKS))
def test_checker_accepts_the_solution(name, capsys):
    CHECKS[name](_exercises(stub=False)[name])
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(CHECKS))
def test_checker_rejects_the_stub(name):
    with pytest.raises(ExerciseError, match="not implemented"):
        CHECKS[name](_exercises(stub=True)[name])


def _softmax_over_padding(e, mask, q):
    weights = (e @ q).softmax(dim=1)
    return (weights.unsqueeze(-1) * e).sum(1), weights


def _query_from_padded_mean(e, mask, query, value):
    weights = (
        (e @ query(e.mean(1)).unsqueeze(-1))
        .squeeze(-1)
        .masked_fill(~mask, float("-inf"))
        .softmax(1)
    )
    return (weights.unsqueeze(-1) * torch.tanh(value(e))).sum(1), weights


def _values_not_learned(e, mask, query, value):
    solution = _exercises(stub=False)["query_value_attention"]
    return solution(e, mask, query, lambda x: torch.atanh(x.clamp(-0.999, 0.999)))


def _entropy(weights):
    return -(weights * weights.clamp_min(1e-12).log()).sum(1).mean()


def _mask_after_softmax(e, mask, q):
    weights = (e @ q).softmax(dim=1) * mask  # zeroed, never renormalised
    return (weights.unsqueeze(-1) * e).sum(1), weights


def _packed_pair(lstm, e, mask):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lengths = mask.sum(1).cpu()
    packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=e.shape[1])


def _crashing_attention(e, mask, q):
    return e @ e, None  # a shape error inside the student code


WRONG = [
    ("masked_mean", lambda x, mask: x.mean(1), "Sum the real tokens only"),
    (
        "masked_mean",
        lambda x, mask: (x * mask[..., None]).sum(1) / x.shape[1],
        "mask.sum",
    ),
    ("simple_attention", _softmax_over_padding, "padding gets attention"),
    ("query_value_attention", _query_from_padded_mean, "REAL tokens"),
    ("query_value_attention", _values_not_learned, "t_hat"),
    ("lstm_states", lambda lstm, e, mask: lstm(e)[0], "backward one is not"),
    ("lstm_states", lambda lstm, e, mask: lstm(e), "not the LSTM's"),
    ("lstm_states", _packed_pair, r"pad_packed_sequence gives \(states, lengths\)"),
    ("simple_attention", _mask_after_softmax, "sum to .*not 1.*before the softmax"),
    (
        "simple_attention",
        _crashing_attention,
        r"_crashing_attention raised RuntimeError .*float32 tensor \[4, 7, 6\]",
    ),
    (
        "entropy_penalised_loss",
        lambda logits, y, w, mask, lam: (
            F.binary_cross_entropy_with_logits(logits, y)
            - lam * (w * torch.log2(w.clamp_min(1e-12))).sum(1).mean()
        ),
        "in bits .*natural log",
    ),
    (
        "entropy_penalised_loss",
        lambda logits, y, w, mask, lam: (
            F.binary_cross_entropy_with_logits(logits, y) - lam * _entropy(w)
        ),
        "ADDS",
    ),
    (
        "entropy_penalised_loss",
        lambda logits, y, w, mask, lam: (
            F.binary_cross_entropy_with_logits(logits, y)
            - lam * (w * w.log()).sum(1).mean()
        ),
        "NaN",
    ),
    (
        "entropy_penalised_loss",
        lambda logits, y, w, mask, lam: (
            F.binary_cross_entropy_with_logits(logits, y)
            + lam * -(w * w.clamp_min(1e-12).log()).sum()
        ),
        "MEAN",
    ),
]


@pytest.mark.parametrize(
    "name,wrong,message", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)]
)
def test_checker_rejects_a_plausible_wrong_answer(name, wrong, message):
    with pytest.raises(ExerciseError, match=message):
        CHECKS[name](wrong)


def test_comparison_table_gives_intervals_and_says_when_zero_is_inside():
    import pandas as pd

    rows = []
    for seed in range(5):
        rows.append(
            dict(
                model="attention_simple",
                optimizer="adam",
                entropy_weight=0.0,
                seed=seed,
                name=f"a-s{seed}",
                test_acc=0.84 + 0.001 * seed,
            )
        )
        rows.append(
            dict(
                model="baseline",
                optimizer="adam",
                entropy_weight=0.0,
                seed=seed,
                name=f"b-s{seed}",
                test_acc=0.78 + 0.001 * seed,
            )
        )
        rows.append(
            dict(
                model="baseline",
                optimizer="sgd",
                entropy_weight=0.0,
                seed=seed,
                name=f"c-s{seed}",
                test_acc=0.78 + 0.001 * (4 - seed),
            )
        )
    rows.append(
        dict(
            model="attention_simple",
            optimizer="adam",
            entropy_weight=0.0,
            seed=0,
            name="toy-attention_simple-adam-s0",
            test_acc=1.0,
        )
    )  # left out
    table = pd.DataFrame(rows)
    out = tme9.comparison_table(
        table,
        [
            (("attention_simple", "adam", 0.0), ("baseline", "adam", 0.0)),
            (("baseline", "adam", 0.0), ("baseline", "sgd", 0.0)),
            (
                ("attention_lstm", "adam", 0.0),
                ("baseline", "adam", 0.0),
            ),  # no runs: left out
        ],
    )
    assert list(out["seeds"]) == [5, 5]
    assert out["difference"].tolist() == pytest.approx([6.0, 0.0])
    assert out["verdict"].tolist() == ["higher", "no detectable difference"]


def test_every_declared_comparison_names_arms_of_the_plan(monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "full")
    arms = {
        (s.model_name, s.training.optimizer, s.training.entropy_weight)
        for s in tme9.plan()
        if not s.name.startswith("toy-")
    }
    for a, b in tme9.COMPARISONS:
        assert a in arms and b in arms, (a, b)
        seeds = [
            {
                s.seed
                for s in tme9.plan()
                if (s.model_name, s.training.optimizer, s.training.entropy_weight) == arm
                and not s.name.startswith("toy-")
            }
            for arm in (a, b)
        ]
        # every compared arm has the five seeds the design promised, the LSTM included
        assert all(arm_seeds == set(tme9.SEEDS["full"]) for arm_seeds in seeds), (a, b)
        assert tme9.LSTM_SEEDS["full"] == tme9.SEEDS["full"]


def test_a_comparison_uses_only_the_seeds_both_arms_have():
    import pandas as pd

    def arm(model, accuracies):
        return [
            dict(
                model=model,
                optimizer="adam",
                entropy_weight=0.0,
                seed=seed,
                name=f"{model}-s{seed}",
                test_acc=acc,
            )
            for seed, acc in accuracies.items()
        ]

    # seeds 3 and 4 of the second arm are far off: a comparison that used them would be wrong
    table = pd.DataFrame(
        arm("attention_lstm", {0: 0.90, 1: 0.91, 2: 0.92})
        + arm("attention_query_value", {0: 0.89, 1: 0.90, 2: 0.91, 3: 0.50, 4: 0.50})
    )
    out = tme9.comparison_table(
        table,
        [(("attention_lstm", "adam", 0.0), ("attention_query_value", "adam", 0.0))],
    )
    assert out["seeds"].tolist() == [3]
    assert out["difference"].tolist() == pytest.approx([1.0])
