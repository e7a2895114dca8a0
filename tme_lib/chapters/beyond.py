"""Beyond the bag of words: attention models that add to the naive-Bayes bigram evidence.

Taught in ``notebooks/04_beyond_bag_of_words``. Alone, the course's attention models stay under
the strongest simple baseline, naive-Bayes-weighted bigrams and a logistic regression
(:class:`~tme_lib.training.bag_of_words.NBClassifier`). This chapter's model keeps that
baseline whole and adds an attention model's opinion to it, in logit space:

``z(t) = z_NB(t) + λ·z_att(t)``

- ``z_NB``: the logit of the NB-bigram logistic regression, refitted on the training split at
  the ``C`` its record chose on validation;
- ``z_att``: the logit of a **recorded** attention model of another chapter (TME 9's attention
  over LSTM states, TME 10's self-attention), loaded with its weights, not trained again;
- ``λ ≥ 0``: chosen on validation accuracy among :data:`LAMBDAS` (ties: the smaller ``λ``);
  ``λ = 0`` is the baseline itself, so a useless attention model leaves it unchanged. The test
  split is scored once, with that ``λ``.

``σ(z_NB + λ z_att)`` is a product of experts: the odds of the two models multiplied, the
attention model's raised to the power ``λ``. It helps when the two models err on different
reviews, which a bag of n-grams and a model that reads word order should.

The components are found through the run tool's registry of chapters
(:func:`tme_lib.chapters.chapter`), by the chapter named in their specs: this module imports no
other chapter. Every fusion is a run of the run tool (:func:`plan`), recorded like the
bag-of-words baselines (no weights of its own: :func:`tme_lib.training.records.load_or_fit`).
"""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import torch

from .. import config
from ..data.batching import BucketLoader
from ..data.corpus import data_settings, load_corpus
from ..training.bag_of_words import BagOfWords, NBClassifier
from ..training.records import RunRecord, existing_records, load_or_fit
from ..training.spec import SEEDS, Spec, Training, model_settings
from ..training.text_runs import run_bag_of_words
from . import arm_spec, paired

CHAPTER = "beyond"
# λ from 0 (the baseline alone) to 3 in steps of 0.1: wide enough that no recorded choice sits
# on the upper edge (the notebook shows the validation curve).
LAMBDAS = tuple(round(0.1 * k, 1) for k in range(31))
# The bag-of-words run whose C the fusion reuses (TME 9's table, at the 400-token cut).
NB_BASELINE = ("tme9", "nb_bigram_lr")
# The attention models fused with it, as (chapter, model): TME 9's best (attention over LSTM
# states), TME 9's cheapest learned-value model, TME 10's variant with the best mean validation
# accuracy and the pretrained encoder of chapter "Pretraining" (five seeds each, as in their
# chapters; the last joins the plan once its arm's choice of pooling and learning rate is
# recorded).
ATTENTION = {
    "attention_lstm": ("tme9", SEEDS),
    "attention_query_value": ("tme9", SEEDS),
    "self_attention_distance": ("tme10", SEEDS),
    "pretrained": ("pretraining", SEEDS),
}
# The fusions also made on full-length reviews: the attention model, trained on the first 400
# tokens, reads whole reviews, and the bag of words is fitted on whole training reviews
# (:func:`nb_spec`). Published IMDB figures are on full-length reviews.
FULL_LENGTH = ("attention_lstm",)
# The comparisons of the chapter, each (fusion arm, what it is compared with): NB, the NB
# baseline alone at the same cut; "attention", the fusion's attention model alone; or another
# fusion arm. Declared with the 400-token fusions, before their runs: one family, corrected with
# Holm's method. The full-length arm was added after those results were seen: its comparisons
# are exploratory, shown apart and left out of the family.
NB, FULL = "NB", "-full_length"
COMPARISONS = [
    *[(f"nb_plus_{m}", NB) for m in ATTENTION],
    *[(f"nb_plus_{m}", "attention") for m in ATTENTION],
    *[
        ("nb_plus_attention_lstm", f"nb_plus_{m}")
        for m in ATTENTION
        if m != "attention_lstm"
    ],
]
EXPLORATORY = [
    (f"nb_plus_{m}{FULL}", other) for m in FULL_LENGTH for other in (NB, "attention")
]


class Fusion:
    """Settings of one fusion run: the specs (as dicts) of its two components and the grid of
    ``λ`` (every argument goes into the run's spec, so that a retrained component makes a new
    fusion run)."""

    def __init__(self, bag_of_words: dict, attention: dict, lambdas: tuple = LAMBDAS):
        if min(lambdas) != 0:
            raise ValueError("the λ grid must contain 0: the baseline alone.")
        self.bag_of_words = Spec.from_dict(bag_of_words)
        self.attention = Spec.from_dict(attention)
        self.lambdas = tuple(lambdas)


# The chapter's models, each built from its spec's ``model`` section alone: the fusion, and the
# NB-bigram baseline that the full-length fusions use.
MODELS = {"fusion": Fusion, "nb_bigram_lr": BagOfWords}


def nb_spec(full_length: bool = False) -> Spec:
    """The NB-bigram baseline of the fusions: TME 9's at the 400-token cut, or this chapter's on
    full-length reviews, fitted on the training split with ``C`` chosen on validation (TME 9's
    full-length row is refitted on train and validation together, which would leave no unseen
    reviews to choose ``λ`` on)."""
    if not full_length:
        return arm_spec(*NB_BASELINE)
    return Spec(
        chapter=CHAPTER,
        name="nb_bigram_lr-full_length",
        seed=0,
        data=data_settings(max_len=None),
        inputs={},
        model=model_settings("nb_bigram_lr", BagOfWords, weighting="nb", ngram_max=2),
        training=Training(),
    )


def spec(model: str, seed: int = 0, full_length: bool = False) -> Spec:
    """The fusion of the NB-bigram baseline with the attention model ``model`` of
    :data:`ATTENTION` at ``seed``, named ``nb_plus_<model>-s<seed>``; with ``full_length``, on
    full-length reviews (``nb_plus_<model>-full_length-s<seed>``)."""
    if model not in ATTENTION:
        raise KeyError(
            f"unknown attention model {model!r}; choose one of {', '.join(ATTENTION)}."
        )
    nb = nb_spec(full_length)
    attention = arm_spec(ATTENTION[model][0], model, seed)
    return Spec(
        chapter=CHAPTER,
        name=f"nb_plus_{model}" + ("-full_length" if full_length else "") + f"-s{seed}",
        seed=seed,
        data=nb.data,
        inputs={},
        model=model_settings(
            "fusion",
            Fusion,
            bag_of_words=nb.to_dict(),
            attention=attention.to_dict(),
        ),
        training=Training(),
    )


def plan() -> list[Spec]:
    """Every run of the chapter: each attention model of :data:`ATTENTION` fused at each of its
    seeds, then the full-length baseline and the full-length fusions (:data:`FULL_LENGTH`). The
    attention models must be recorded first (TME 9, TME 10)."""
    cut = [
        spec(model, seed)
        for model, (_, seeds) in ATTENTION.items()
        if _ready(model)
        for seed in seeds[config.profile()]
    ]
    full = [
        spec(model, seed, full_length=True)
        for model in FULL_LENGTH
        for seed in ATTENTION[model][1][config.profile()]
    ]
    return cut + [nb_spec(full_length=True)] + full


def _ready(model: str) -> bool:
    """Whether the spec of ``model`` can be built: a chapter whose specs depend on recorded
    choices (``ready(model)``, chapter "Pretraining") may not know it yet."""
    from . import chapter

    module = chapter(ATTENTION[model][0])
    return getattr(module, "ready", lambda _: True)(model)


def ready_plan() -> list[Spec]:
    """The runs of :func:`plan` that can be made now without training an attention model: in
    the full profile, a fusion waits until its attention model is recorded (a fusion costs
    seconds, the model it reuses up to an hour); the smoke profile trains everything."""
    from ..training.records import find_record

    if not config.is_full():
        return plan()
    return [
        s
        for s in plan()
        if s.model_name != "fusion"
        or find_record(Spec.from_dict(s.model["attention"])) is not None
    ]


def plan_records() -> list[RunRecord]:
    return existing_records(plan())


# --- The two components ---------------------------------------------------------------------------

_NB: dict[str, NBClassifier] = {}


def nb_classifier(nb: Spec) -> NBClassifier:
    """The NB-bigram baseline of spec ``nb``, refitted on its training split at the ``C`` of its
    record (once per process)."""
    from . import chapter

    if nb.key() not in _NB:
        record = chapter(nb.chapter).run(nb)
        corpus = load_corpus(nb.data)
        _NB[nb.key()] = NBClassifier(
            BagOfWords(**nb.model_kwargs), corpus.train, record.final["C"]
        )
    return _NB[nb.key()]


@torch.no_grad()
def model_logits(model: torch.nn.Module, split, batch_size: int = 256) -> np.ndarray:
    """The logit of every review of ``split``, in the split's order (eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    loader = BucketLoader(split, batch_size, shuffle=False)
    out = np.zeros(len(split))
    for index in loader.batch_indices(0):
        batch = loader.make_batch(index).to(device)
        logit = model(batch.x, batch.mask)[0]
        out[index] = logit.float().cpu().numpy()
    return out


def choose_lambda(
    nb_val: np.ndarray, att_val: np.ndarray, y_val: np.ndarray, lambdas=LAMBDAS
) -> tuple[float, list[dict]]:
    """The ``λ`` of ``lambdas`` with the best validation accuracy of ``z_NB + λ·z_att``
    (ties: the smallest), and the validation accuracy of every ``λ``."""
    history = [
        {"lambda": lam, "val_acc": float(((nb_val + lam * att_val > 0) == y_val).mean())}
        for lam in lambdas
    ]
    best = max(history, key=lambda h: (h["val_acc"], -h["lambda"]))
    return best["lambda"], history


def component_logits(
    settings: Fusion, splits=("val", "test"), progress: bool = False
) -> dict:
    """For each split of ``splits``, ``{"nb", "attention", "y", "reviews"}``: the logits of both
    components of ``settings`` on the fusion's reviews (its ``bag_of_words`` data, at its cut),
    the labels and the reviews; also ``"record"``, the attention model's record with its weights
    loaded (once for all splits)."""
    from . import chapter

    nb = nb_classifier(settings.bag_of_words)
    corpus = load_corpus(settings.bag_of_words.data)
    att_chapter = chapter(settings.attention.chapter)
    record = att_chapter.run(settings.attention, progress=progress)
    theirs = att_chapter.load_data(settings.attention)[0]
    # A model with the bag of words' vocabulary (TME 9, TME 10) reads the fusion's own reviews,
    # at the fusion's cut: whole reviews in the full-length arm. A model with tokens of its own
    # (the pretrained encoder) reads the same reviews through its own data, at its own cut,
    # which must then be the fusion's.
    own_tokens = theirs.vocab.itos != corpus.vocab.itos
    same_reviews(settings.bag_of_words, corpus, settings.attention, theirs, own_tokens)
    out = {"record": record}
    for split in splits:
        reviews = getattr(corpus, split)
        read = getattr(theirs, split) if own_tokens else reviews
        out[split] = {
            "nb": nb.logits(reviews),
            "attention": model_logits(record.model, read),
            "y": reviews.labels,
            "reviews": reviews,
        }
    return out


# The data settings that say which reviews a component reads, and in which order; the others
# (tokeniser, vocabulary, extra tokens) are the component's own business.
REVIEW_SETTINGS = ("dataset", "split_seed", "val_fraction", "max_len")


def same_reviews(a: Spec, corpus_a, b: Spec, corpus_b, same_cut: bool = True) -> None:
    """Check that the two components read the same reviews in the same order: the settings of
    :data:`REVIEW_SETTINGS` agree (the length cut only with ``same_cut``: a model that reads
    the other's reviews may have been trained at another cut), and so do the labels of every
    split. Each component then reads them with its own tokens (the pretrained encoder has a
    vocabulary of its own)."""
    keys = [k for k in REVIEW_SETTINGS if same_cut or k != "max_len"]
    differ = [k for k in keys if a.data.get(k) != b.data.get(k)]
    splits = ("train", "val", "test")
    if not differ and all(
        np.array_equal(getattr(corpus_a, n).labels, getattr(corpus_b, n).labels)
        for n in splits
    ):
        return
    raise ValueError(
        f"{b.label} was trained on other reviews than {a.label} "
        f"({', '.join(differ) or 'the labels of a split'} differ): the two components of a "
        f"fusion must read the same reviews."
    )


def _accuracy(z: np.ndarray, y: np.ndarray) -> float:
    return float(((z > 0) == y).mean())


def fit(settings: Fusion, progress: bool = True) -> dict:
    """Load both components, compute their logits on validation and test, choose ``λ`` on
    validation, test once; for :func:`tme_lib.training.records.load_or_fit`."""
    start = time.perf_counter()
    logits = component_logits(settings, progress=progress)
    val, test = logits["val"], logits["test"]
    lam, history = choose_lambda(val["nb"], val["attention"], val["y"], settings.lambdas)
    final = {"lambda": lam}
    for name, z in (("val", val), ("test", test)):
        final[f"{name}_acc"] = _accuracy(z["nb"] + lam * z["attention"], z["y"])
        final[f"nb_{name}_acc"] = _accuracy(z["nb"], z["y"])
        final[f"attention_{name}_acc"] = _accuracy(z["attention"], z["y"])
    # how often the two components disagree on a test review
    final["test_disagreement"] = float(
        ((test["nb"] > 0) != (test["attention"] > 0)).mean()
    )
    final["best_epoch"] = 0
    nb = nb_classifier(settings.bag_of_words)
    return {
        "history": history,
        "final": final,
        "seconds": time.perf_counter() - start,
        "n_params": int(nb.clf.coef_.size) + 1 + logits["record"].n_params + 1,
    }


def run(s: Spec, progress: bool = True, retrain: bool = False, device=None) -> RunRecord:
    """Load the record of ``s``, else fit it: a fusion (its components must be recorded), or the
    full-length NB baseline (:func:`nb_spec`)."""
    if s.model_name == "nb_bigram_lr":
        return run_bag_of_words(s, retrain=retrain)
    return load_or_fit(s, lambda: fit(settings_of(s), progress), retrain=retrain)


def settings_of(s: Spec | dict) -> Fusion:
    """The :class:`Fusion` of a fusion's spec (or of a record's ``spec`` dict)."""
    s = Spec.from_dict(s) if isinstance(s, dict) else s
    return Fusion(**s.model_kwargs)


# --- The chapter's table ----------------------------------------------------------------------

TABLE_COLUMNS = [
    "name",
    "arm",
    "reviews",
    "attention",
    "seed",
    "lambda",
    "val_acc",
    "test_acc",
    "nb_test_acc",
    "attention_test_acc",
    "test_disagreement",
    "seconds",
    "code_version",
]


def results_table(records: list[RunRecord]) -> pd.DataFrame:
    """One row per fusion run."""
    rows = [
        {
            **r.final,
            "name": r.name,
            "arm": re.sub(r"-s\d+$", "", r.name),
            "reviews": "full length"
            if r.spec["data"]["max_len"] is None
            else f"{r.spec['data']['max_len']} tokens",
            "attention": r.spec["model"]["attention"]["model"]["name"],
            "seed": r.seed,
            "seconds": r.seconds,
            "code_version": r.code_version[:10],
        }
        for r in records
        if r.model_name == "fusion"
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_tables(records: list[RunRecord]) -> dict[str, pd.DataFrame]:
    """``beyond.csv``: one row per fusion of :func:`plan` (the full-length baseline is in the
    rows of its fusions, as ``nb_test_acc``)."""
    return {"beyond.csv": results_table(records)}


def arm(table: pd.DataFrame, name: str, column: str = "test_acc") -> dict:
    """``{seed: value (%)}`` of ``column`` for the fusions of the arm ``name``
    (``nb_plus_<model>[-full_length]``)."""
    rows = table[table["arm"] == name]
    return dict(zip(rows["seed"].astype(int), 100 * rows[column]))


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """The chapter's declared comparisons (:data:`COMPARISONS`), each a difference of mean test
    accuracy with its 95 % interval over the seeds: a fusion against its baseline alone (one
    deterministic fit, the same at every seed: the interval is that of the fusion's seeds),
    against its attention model alone (the same model at each seed: paired by seed), and the
    LSTM's fusion against the other fusions at the same cut (paired where the two attention
    models saw the same batches); the verdicts before and after Holm's correction."""
    from ..training import metrics

    def rows(comparisons):
        return [row(a, b) for a, b in comparisons if a in set(table["arm"])]

    def row(a, b):
        label = a.replace("nb_plus_", "NB + ")
        if b == NB:
            nb = "NB" + (" (full length)" if a.endswith(FULL) else "")
            fitted = arm(table, a, "nb_test_acc")
            return metrics.comparison_row(f"{label} − {nb}", arm(table, a), fitted)
        if b == "attention":
            alone = arm(table, a, "attention_test_acc")
            name = a.removeprefix("nb_plus_").removesuffix(FULL)  # its name in ATTENTION
            return metrics.comparison_row(
                f"{label} − {name}", arm(table, a), alone, paired=True
            )
        if b not in set(table["arm"]):
            return None
        # the attention models by their names in ATTENTION (the arm's name without "nb_plus_")
        one, two = (x.removeprefix("nb_plus_").removesuffix(FULL) for x in (a, b))
        return metrics.comparison_row(
            f"{label} − {b.replace('nb_plus_', 'NB + ')}",
            arm(table, a),
            arm(table, b),
            paired=paired((ATTENTION[one][0], one), (ATTENTION[two][0], two)),
        )

    return metrics.comparison_table(rows(COMPARISONS), rows(EXPLORATORY))


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation over seeds per attention model and cut (accuracies in %)."""
    t = table.copy()
    for c in ("val_acc", "test_acc", "nb_test_acc", "attention_test_acc"):
        t[c] *= 100
    out = t.groupby(["attention", "reviews"], sort=False).agg(
        seeds=("seed", "count"),
        lam=("lambda", "mean"),
        attention_alone=("attention_test_acc", "mean"),
        nb_alone=("nb_test_acc", "mean"),
        fusion=("test_acc", "mean"),
        fusion_sd=("test_acc", "std"),
    )
    return out.reset_index().round(2)
