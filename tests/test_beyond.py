"""Beyond the bag of words: the NB classifier kept whole, the fusion's λ chosen on validation
only, logits returned in the split's order, fusion specs that follow their components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tme_lib.chapters import beyond, tme9
from tme_lib.data.text import pack
from tme_lib.training import records
from tme_lib.training.bag_of_words import BagOfWords, NBClassifier


def _split():
    rng = np.random.default_rng(0)
    good, bad = [5, 6, 7], [8, 9, 10]
    reviews, labels = [], []
    for k in range(40):
        y = k % 2
        words = (
            rng.choice(good if y else bad, size=3).tolist()
            + rng.integers(11, 20, size=4).tolist()
        )
        reviews.append(np.array(words))
        labels.append(float(y))
    return pack(reviews, labels)


def test_nb_classifier_logit_is_its_intercept_plus_the_weights_of_the_present_ngrams():
    train = _split()
    nb = NBClassifier(BagOfWords(weighting="nb", ngram_max=2), train, C=1.0)
    one_word = pack([np.array([5]), np.array([8]), np.array([99])], [1.0, 0.0, 1.0])
    logits = nb.logits(one_word)
    weights = nb.word_weights([5, 8, 99])
    intercept = nb.clf.intercept_[0]
    assert logits == pytest.approx(intercept + weights)
    assert weights[2] == 0  # a word never seen in training is no feature
    assert weights[0] > 0 > weights[1]  # "good" words push up, "bad" ones down
    # binary features: a word counted twice adds its weight once (plus the bigram "5 5")
    twice = nb.logits(pack([np.array([5, 5])], [1.0]))[0]
    assert twice == pytest.approx(intercept + weights[0] + _bigram_weight(nb, "5 5"))


def _bigram_weight(nb, bigram):
    j = nb.vectoriser.vocabulary_.get(bigram)
    return 0.0 if j is None else nb.clf.coef_[0][j] * nb.r[j]


def test_nb_classifier_refuses_tfidf():
    with pytest.raises(ValueError, match="weighting='nb'"):
        NBClassifier(BagOfWords(weighting="tfidf"), _split(), C=1.0)


def test_lambda_is_chosen_on_validation_and_zero_is_the_baseline():
    y = np.array([1, 1, 0, 0, 1, 0])
    nb = np.array([2.0, -0.5, -1.0, 0.3, 1.0, -2.0])  # wrong on reviews 1 and 3
    att = np.array([0.0, 2.0, 0.0, -2.0, 0.0, 0.0])  # right on exactly those
    lam, history = beyond.choose_lambda(nb, att, y)
    assert history[0] == {"lambda": 0.0, "val_acc": pytest.approx(4 / 6)}
    assert lam == pytest.approx(0.3)  # the smallest λ that fixes both (0.3·2 > 0.5)
    assert max(h["val_acc"] for h in history) == 1.0
    # an attention model with nothing to add leaves the baseline alone (ties: smallest λ)
    lam, _ = beyond.choose_lambda(nb, np.zeros_like(nb), y)
    assert lam == 0.0


def test_a_grid_without_zero_is_refused():
    nb, att = tme9.baseline_spec("nb_bigram_lr"), tme9.spec("attention_lstm")
    with pytest.raises(ValueError, match="must contain 0"):
        beyond.Fusion(nb.to_dict(), att.to_dict(), lambdas=(0.5, 1.0))


def test_a_fusion_spec_holds_its_components_and_follows_their_seed():
    s0, s1 = beyond.spec("attention_lstm", 0), beyond.spec("attention_lstm", 1)
    assert s0.model["attention"] == tme9.spec("attention_lstm", seed=0).to_dict()
    assert s0.model["bag_of_words"] == tme9.baseline_spec("nb_bigram_lr").to_dict()
    assert s0.key() != s1.key() and s1.name == "nb_plus_attention_lstm-s1"
    with pytest.raises(KeyError, match="choose one of"):
        beyond.spec("attention_simple")


def test_every_attention_model_of_the_plan_is_a_recorded_chapter_model():
    fusions = [s for s in beyond.plan() if s.model_name == "fusion"]
    names = {arm_of(s) for s in fusions}
    # the pretrained encoder joins once its arm's choice runs are recorded
    assert names == set(beyond.ATTENTION) - {"pretrained"}
    for s in fusions:
        assert s.model["attention"]["chapter"] == beyond.ATTENTION[arm_of(s)][0]


def arm_of(fusion_spec) -> str:
    """``attention_lstm`` for ``nb_plus_attention_lstm-full_length-s2``."""
    name = fusion_spec.name.removeprefix("nb_plus_").rsplit("-", 1)[0]
    return name.removesuffix("-full_length")


def test_full_length_fusions_read_whole_reviews_with_a_baseline_that_keeps_validation_unseen(
    monkeypatch,
):
    monkeypatch.setenv("TME_PROFILE", "full")
    nb = beyond.nb_spec(full_length=True)
    assert nb.data["max_len"] is None and nb.model["refit"] is False
    assert nb.model["weighting"] == "nb" and nb.model["ngram_max"] == 2
    assert nb in beyond.plan()  # recorded by this chapter, before its fusions
    fused = beyond.spec("attention_lstm", 1, full_length=True)
    assert fused.name == "nb_plus_attention_lstm-full_length-s1"
    assert fused.data["max_len"] is None
    assert fused.model["bag_of_words"] == nb.to_dict()
    # the attention model is the one trained on the 400-token cut, not a new run
    assert fused.model["attention"] == tme9.spec("attention_lstm", seed=1).to_dict()
    assert beyond.spec("attention_lstm", 1).data["max_len"] == 400


def test_model_logits_come_back_in_the_order_of_the_split():
    torch.manual_seed(0)
    split = pack(
        [np.arange(2, 2 + n) for n in (7, 2, 5, 1, 9, 3)], [1.0, 0.0, 1.0, 0.0, 1, 0]
    )
    vectors = torch.randn(20, 4)
    model = tme9.AttentionSimple(vectors)
    torch.nn.init.normal_(model.query)
    got = beyond.model_logits(
        model, split, batch_size=2
    )  # bucketed: order shuffled by length
    one_by_one = [
        model(
            torch.as_tensor(split[i][0])[None],
            torch.ones(1, len(split[i][0]), dtype=bool),
        )[0].item()
        for i in range(len(split))
    ]
    assert got == pytest.approx(one_by_one, abs=1e-5)


def test_a_smoke_fusion_never_does_worse_on_validation_than_the_baseline_alone():
    record = beyond.run(beyond.spec("attention_query_value"), progress=False)
    final = record.final
    assert final["val_acc"] >= final["nb_val_acc"]
    assert final["lambda"] in beyond.LAMBDAS
    history = {h["lambda"]: h["val_acc"] for h in record.history}
    assert history[0.0] == final["nb_val_acc"]
    assert history[final["lambda"]] == final["val_acc"]
    assert record.weights_sha256 is None  # a fit: nothing of its own to restore
    # the record is found again, not refitted
    assert records.find_record(beyond.spec("attention_query_value")) is not None
    table = beyond.results_table([record])
    assert table.loc[0, "attention"] == "attention_query_value"
    assert table.loc[0, "arm"] == "nb_plus_attention_query_value"


def test_comparisons_pair_each_fusion_with_its_own_baseline():
    import pandas as pd

    rows = []
    for seed, (fused, nb, att) in enumerate([(0.92, 0.90, 0.89), (0.93, 0.90, 0.88)]):
        for arm_name, nb_acc in (
            ("nb_plus_attention_lstm", nb),
            ("nb_plus_attention_lstm-full_length", nb + 0.01),
        ):
            rows.append(
                dict(
                    arm=arm_name,
                    attention="attention_lstm",
                    seed=seed,
                    test_acc=fused,
                    nb_test_acc=nb_acc,
                    attention_test_acc=att,
                )
            )
    table = beyond.comparison_table(pd.DataFrame(rows))
    by_label = dict(zip(table["comparison"], table["difference"]))
    assert by_label["NB + attention_lstm − NB"] == pytest.approx(2.5)
    assert by_label[
        "NB + attention_lstm-full_length − NB (full length)"
    ] == pytest.approx(1.5)
    assert by_label["NB + attention_lstm − attention_lstm"] == pytest.approx(4.0)
