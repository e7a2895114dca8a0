"""The bag-of-words baselines: features fitted on train only, the NB ratio formula, C chosen
on validation, metrics-only records."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tme_lib.chapters import tme9
from tme_lib.data.text import TokenSplit, pack
from tme_lib.training import bag_of_words, records
from tme_lib.training.bag_of_words import BagOfWords, log_count_ratio


def test_log_count_ratio_matches_its_formula():
    x = sp.csr_matrix(np.array([[2, 0, 1], [1, 0, 0], [0, 3, 1]]))
    y = np.array([1, 1, 0])
    p = 1 + np.array([2, 0, 1])  # binarised counts of the positive reviews, plus α = 1
    q = 1 + np.array([0, 1, 1])
    want = np.log(p / p.sum()) - np.log(q / q.sum())
    assert log_count_ratio(x, y) == pytest.approx(want)
    assert log_count_ratio(x, y)[0] > 0 > log_count_ratio(x, y)[1]


def test_features_see_the_cut_and_learn_their_vocabulary_on_train_only():
    train = pack([np.array([5, 6, 7, 8]), np.array([5, 9])], [1.0, 0.0]).truncated(2)
    test = pack([np.array([7, 10])], [1.0])
    model = BagOfWords(ngram_max=2)
    x_train, (x_test,), _ = bag_of_words.features(model, train, [test])
    assert x_train.shape[1] == 5  # 5, 6, 9 and the bigrams "5 6", "5 9": 7 and 8 are cut
    assert x_test.nnz == 0  # 7 and 10 are not in train's vocabulary


def test_concat_keeps_every_review_in_order():
    a = pack([np.array([1, 2]), np.array([3])], [1.0, 0.0])
    b = pack([np.array([4, 5, 6])], [1.0])
    both = TokenSplit.concat([a, b])
    assert [both[i][0].tolist() for i in range(3)] == [[1, 2], [3], [4, 5, 6]]
    assert both.labels.tolist() == [1.0, 0.0, 1.0]


def test_baselines_choose_C_on_validation_and_record_no_weights(capsys):
    spec = tme9.baseline_spec("nb_bigram_lr")
    record = tme9.run(spec)
    assert record.final["C"] == max(record.history, key=lambda e: e["val_acc"])["C"]
    assert [e["C"] for e in record.history] == list(spec.model["Cs"])
    assert record.weights_sha256 is None and record.final["test_acc"] > 0.9
    path = records.find_record(spec)
    assert not path.with_suffix(".pt").exists()
    capsys.readouterr()
    again = tme9.run(spec)
    assert (
        "Loaded tme9/nb_bigram_lr" in capsys.readouterr().out
        and again.final == record.final
    )
    with pytest.raises(records.RecordError, match="metrics-only"):
        records.load_or_train(spec, lambda: None, None)


def test_full_length_baselines_refit_on_train_and_validation():
    spec = tme9.baseline_spec("tfidf_unigram_lr", full_length=True)
    assert spec.name == "tfidf_unigram_lr-full_length" and spec.data["max_len"] is None
    assert (
        spec.model["refit"] and spec.key() != tme9.baseline_spec("tfidf_unigram_lr").key()
    )
