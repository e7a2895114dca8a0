"""The strongest simple baselines for text: n-gram features and a logistic regression.

The models a practitioner tries first on IMDB, on exactly the course's reviews (same
tokeniser, vocabulary, split and cut as the attention models):

``tfidf``
    TF-IDF of unigrams (``ngram_max=1``) or of unigrams and bigrams (``ngram_max=2``), with
    sublinear term frequency ``1 + log tf``, then an L2-regularised logistic regression.
``nb``
    naive-Bayes-weighted n-grams (Wang & Manning 2012, "NBSVM" with a logistic regression):
    binary n-gram indicators ``x`` scaled feature by feature by the log-count ratio
    ``r = log((p / |p|₁) / (q / |q|₁))``, with ``p = α + Σ_{positive reviews} x`` and
    ``q = α + Σ_{negative} x``, then the same logistic regression.

The inverse regularisation ``C`` is chosen on the validation split among ``Cs``; the test split
is scored once, with that ``C``. With ``refit=True`` the chosen model is fitted again on train
and validation together (the standard 25,000-review training set) before the test.
"""

from __future__ import annotations

import time

import numpy as np

WEIGHTINGS = ("tfidf", "nb")


class BagOfWords:
    """Settings of one bag-of-words baseline (every argument goes into the run's spec)."""

    def __init__(
        self,
        weighting: str = "tfidf",
        ngram_max: int = 1,
        min_df: int = 1,
        Cs: tuple = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
        nb_alpha: float = 1.0,
        max_iter: int = 2000,
        refit: bool = False,
    ):
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting={weighting!r}: use one of {', '.join(WEIGHTINGS)}."
            )
        self.weighting, self.ngram_max, self.min_df = weighting, ngram_max, min_df
        self.Cs, self.nb_alpha, self.max_iter, self.refit = (
            tuple(Cs),
            nb_alpha,
            max_iter,
            refit,
        )


def as_documents(split) -> list[str]:
    """Each review of a :class:`~tme_lib.data.text.TokenSplit` as its token ids joined by
    spaces (within its cut): the vectoriser then sees the course's tokens, OOV included."""
    return [" ".join(map(str, split[i][0].tolist())) for i in range(len(split))]


def log_count_ratio(x, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``r = log((p / |p|₁) / (q / |q|₁))`` with ``p = α + Σ_{y=1} x``, ``q = α + Σ_{y=0} x``
    over binary features ``x [n, f]``: positive for n-grams of positive reviews."""
    x = (x > 0).astype(np.float64)
    p = alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def _vectoriser(model: BagOfWords):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        token_pattern=r"\S+",
        ngram_range=(1, model.ngram_max),
        min_df=model.min_df,
        lowercase=False,
        binary=model.weighting == "nb",
        dtype=np.float64,
    )


def features(model: BagOfWords, train, others: list):
    """The feature matrices of ``train`` and of each split of ``others``, fitted on train only
    (vocabulary, IDF or log-count ratios); also returns the ratios ``r`` (``nb``) or ``None``."""
    from sklearn.feature_extraction.text import TfidfTransformer

    vectoriser = _vectoriser(model)
    x_train = vectoriser.fit_transform(as_documents(train))
    x_others = [vectoriser.transform(as_documents(split)) for split in others]
    if model.weighting == "tfidf":
        tfidf = TfidfTransformer(sublinear_tf=True).fit(x_train)
        return tfidf.transform(x_train), [tfidf.transform(x) for x in x_others], None
    r = log_count_ratio(x_train, train.labels, model.nb_alpha)
    return x_train.multiply(r).tocsr(), [x.multiply(r).tocsr() for x in x_others], r


class NBClassifier:
    """The ``nb`` baseline fitted on ``train`` at a given ``C`` (the one its record chose on
    validation), kept whole so that other models can use it: :meth:`logits` of any split
    (the ``logit`` before the sigmoid) and :meth:`word_weights`, what each word adds to the logit
    of a review that contains it, ``w_j·r_j`` (chapter "Beyond the bag of words")."""

    def __init__(self, model: BagOfWords, train, C: float):
        from sklearn.linear_model import LogisticRegression

        if model.weighting != "nb":
            raise ValueError(
                f"NBClassifier needs weighting='nb', not {model.weighting!r}."
            )
        self.vectoriser = _vectoriser(model)
        x = self.vectoriser.fit_transform(as_documents(train))
        self.r = log_count_ratio(x, train.labels, model.nb_alpha)
        self.clf = LogisticRegression(C=C, max_iter=model.max_iter).fit(
            x.multiply(self.r).tocsr(), train.labels
        )

    def logits(self, split) -> np.ndarray:
        x = self.vectoriser.transform(as_documents(split))
        return self.clf.decision_function(x.multiply(self.r).tocsr())

    def word_weights(self, ids) -> np.ndarray:
        """``w_j·r_j`` of the unigram feature of each token id of ``ids`` (0 for a token that
        is no feature); bigrams are left out."""
        vocabulary = self.vectoriser.vocabulary_
        weight = self.clf.coef_[0] * self.r
        return np.array(
            [
                weight[vocabulary[str(int(t))]] if str(int(t)) in vocabulary else 0.0
                for t in ids
            ]
        )


def fit(model: BagOfWords, corpus) -> dict:
    """Fit on ``corpus.train``, choose ``C`` on ``corpus.val``, test once on ``corpus.test``;
    returns ``history`` (one entry per ``C``) and ``final`` (the chosen one's scores)."""
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    x_train, (x_val, x_test), _ = features(model, corpus.train, [corpus.val, corpus.test])
    history, best = [], None
    for C in model.Cs:
        clf = LogisticRegression(C=C, max_iter=model.max_iter).fit(
            x_train, corpus.train.labels
        )
        entry = {
            "C": C,
            "train_acc": clf.score(x_train, corpus.train.labels),
            "val_acc": clf.score(x_val, corpus.val.labels),
        }
        history.append(entry)
        if best is None or entry["val_acc"] > best[0]["val_acc"]:
            best = (entry, clf)
    entry, clf = best
    if model.refit:  # the chosen C, refitted on train and validation together
        from tme_lib.data.text import TokenSplit

        both = TokenSplit.concat([corpus.train, corpus.val])
        x_both, (x_test,), _ = features(model, both, [corpus.test])
        clf = LogisticRegression(C=entry["C"], max_iter=model.max_iter).fit(
            x_both, both.labels
        )
    final = {
        "C": entry["C"],
        "train_acc": entry["train_acc"],
        "val_acc": entry["val_acc"],
        "test_acc": clf.score(x_test, corpus.test.labels),
        "n_features": int(x_test.shape[1]),
        "best_epoch": 0,
    }
    return {
        "history": history,
        "final": final,
        "seconds": time.perf_counter() - start,
        "n_params": int(x_test.shape[1]) + 1,
    }
