"""Chapter "Pretraining": a transformer that reads the unlabelled reviews before it is taught.

Taught in ``notebooks/05_pretraining``. One encoder (:class:`~tme_lib.blocks.encoder.TokenEncoder`,
TME 10's residual layers over learned word embeddings) is pretrained once by masked-language
modelling on the training and unlabelled reviews (:mod:`tme_lib.blocks.masked_lm`,
:mod:`tme_lib.training.pretrainer`), then fine-tuned on the labelled training reviews with the
course's trainer, from the weights kept after several epochs of pretraining (the learning
curve) and, for comparison, from random weights with the same fine-tuning budget.

Every fine-tuning spec names the key of the pretraining record it starts from, and the epoch
of the snapshot it reads (``inputs.pretraining``); the runs from scratch name none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import config
from ..blocks.encoder import TokenEncoder, pool
from ..blocks.masked_lm import IGNORE, MASK_RATE, masked_lm_loss
from ..blocks.replaced_token import (
    DISCRIMINATOR_WEIGHT,
    replace_tokens,
    replaced_token_loss,
)
from ..data.batching import make_loaders
from ..data.pretraining import (
    FIRST_WORD,
    PretrainingText,
    load_pretraining_text,
    pretraining_settings,
)
from ..training import records
from ..training.pretrainer import pretrain
from ..training.records import RecordError, RunRecord, load_or_train
from ..training.spec import SEEDS, Spec, Training, deep_merge, model_settings, schedule

CHAPTER = "pretraining"


class MaskedLanguageModel(nn.Module):
    """The encoder and a head that guesses the word at every position: a position-wise layer
    (linear, GELU, LayerNorm) then scores against the word embeddings themselves (tied
    weights, as in BERT) plus a bias per word. Section "Masked-language modelling".

    ``forward(x, mask)`` returns ``(logits [B, T, V], attention or None)``; the training loss
    (:meth:`loss`) scores the chosen positions only, so the ``V``-wide layer runs on 15 % of
    the tokens."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        ffn_mult: int = 4,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        max_len: int = 512,
    ):
        super().__init__()
        self.encoder = TokenEncoder(
            vocab_size, d_model, n_layers, n_heads, ffn_mult, dropout, positions, max_len
        )
        d = self.encoder.d_model
        self.transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.need_weights = False

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        return self.transform(h) @ self.encoder.embedding.weight.T + self.bias

    def forward(self, x, mask, need_weights: bool | None = None):
        need = self.need_weights if need_weights is None else need_weights
        h, attention = self.encoder(x, mask, need)
        return self.scores(h), attention

    def guesses(self, inputs, mask, labels):
        """``(logits [N, V], targets [N])`` at the ``N`` chosen positions of ``labels``."""
        h, _ = self.encoder(inputs, mask)
        chosen = labels != IGNORE
        return self.scores(h[chosen]), labels[chosen]

    def loss(self, inputs, mask, labels) -> torch.Tensor:
        """The masked-LM loss of one masked batch (:func:`.masked_lm_loss`)."""
        return masked_lm_loss(*self.guesses(inputs, mask, labels))


class ReplacedTokenDetector(nn.Module):
    """ELECTRA's pretraining (:mod:`tme_lib.blocks.replaced_token`): a generator, a masked
    language model of ``generator_layers`` layers that shares the encoder's word embeddings
    (tied, as in the paper), and the encoder kept for fine-tuning, the discriminator, with a
    head (linear, GELU, linear) that scores each position's word as replaced. Section "Three
    routes at a small budget".

    :meth:`loss` takes the masked batch that the pretraining loop makes, as the masked
    language model does; :meth:`guesses` are the generator's (the held-out scores of the
    record are the generator's masked-LM loss and accuracy)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        ffn_mult: int = 4,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        max_len: int = 512,
        generator_layers: int = 1,
    ):
        super().__init__()
        self.encoder = TokenEncoder(
            vocab_size, d_model, n_layers, n_heads, ffn_mult, dropout, positions, max_len
        )
        self.generator = MaskedLanguageModel(
            vocab_size,
            d_model,
            generator_layers,
            n_heads,
            ffn_mult,
            dropout,
            positions,
            max_len,
        )
        self.generator.encoder.embedding = self.encoder.embedding  # one table for both
        self.detector = nn.Sequential(
            nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1)
        )
        self.need_weights = False

    def forward(self, x, mask, need_weights: bool | None = None):
        """``(logits [B, T], attention or None)``: the discriminator's score that each word
        was replaced."""
        need = self.need_weights if need_weights is None else need_weights
        h, attention = self.encoder(x, mask, need)
        return self.detector(h).squeeze(-1), attention

    def guesses(self, inputs, mask, labels):
        return self.generator.guesses(inputs, mask, labels)

    def loss(self, inputs, mask, labels) -> torch.Tensor:
        """The generator's masked-LM loss plus λ times the discriminator's loss on the batch
        with the generator's words written in."""
        guesses, targets = self.generator.guesses(inputs, mask, labels)
        replaced, is_replaced = replace_tokens(inputs, labels, guesses, FIRST_WORD)
        logits, _ = self(replaced, mask, False)
        return masked_lm_loss(guesses, targets) + DISCRIMINATOR_WEIGHT * (
            replaced_token_loss(logits, is_replaced, mask)
        )


class PretrainedClassifier(nn.Module):
    """The encoder, pooled (the CLS position or the mean over real tokens), then one logit.
    ``forward(x, mask)`` returns ``(logit [B], attention [B, L, H, T, T] or None)``. Section
    "Fine-tuning"."""

    def __init__(
        self,
        vocab_size: int,
        pooling: str = "cls",
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        ffn_mult: int = 4,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        max_len: int = 512,
    ):
        super().__init__()
        self.encoder = TokenEncoder(
            vocab_size, d_model, n_layers, n_heads, ffn_mult, dropout, positions, max_len
        )
        self.pooling = pooling
        pool(
            torch.zeros(1, 1, 1), torch.ones(1, 1, dtype=torch.bool), pooling
        )  # validates
        self.classifier = nn.Linear(self.encoder.d_model, 1)
        self.need_weights = False

    def forward(self, x, mask, need_weights: bool | None = None):
        need = self.need_weights if need_weights is None else need_weights
        h, attention = self.encoder(x, mask, need)
        return self.classifier(pool(h, mask, self.pooling)).squeeze(-1), attention


PRETRAINING_TASKS = ("masked_lm", "replaced_token")
MODELS = {
    "masked_lm": MaskedLanguageModel,
    "replaced_token": ReplacedTokenDetector,
    "classifier": PretrainedClassifier,
}


# --- The runs -----------------------------------------------------------------------------------

# The chapter's committed weights, at most (see numbers_only_specs).
WEIGHTS_BUDGET_MB = 30

# Sizes, chosen for the budget of the chapter (6 hours of pretraining on a 2-core CPU, committed
# weights under WEIGHTS_BUDGET_MB; benchmarks/bench_pretraining.py): 4 layers of width 64 with
# 4 heads, as wide as TME 10's classifier is narrow, a vocabulary of 8,000 words (6 % of the
# tokens are then unknown), reviews cut at 400 words as in every IMDB chapter. Sinusoidal
# positions: no parameters, and taught in TME 10.
SIZES = {
    "full": dict(d_model=64, n_layers=4, n_heads=4, ffn_mult=4, dropout=0.1, max_len=401),
    "smoke": dict(d_model=32, n_layers=2, n_heads=2, ffn_mult=2, dropout=0.1, max_len=61),
}
TEXT = {
    "full": dict(max_len=400, max_size=8000, min_count=5, heldout=1000),
    "smoke": dict(max_len=None, max_size=8000, min_count=1, heldout=200),
}
# Pretraining: AdamW with a one-cycle schedule (6 % warm-up, then cosine annealing) over the
# whole budget; snapshots at epochs 1, 3, 6, 12 (and the last), for the learning curve. Smoke: 20
# epochs of the toy corpus (about 20 s), after which the fill-in test passes well.
PRETRAINING = {
    "full": dict(
        task="masked_lm",
        optimizer="adamw",
        lr=1e-3,
        betas=(0.9, 0.98),
        weight_decay=0.01,
        schedule=schedule("onecycle", pct_start=0.06),
        grad_clip=1.0,
        batch_size=64,
        epochs=24,
        snapshots=(1, 3, 6, 12),
    ),
    "smoke": dict(
        task="masked_lm",
        optimizer="adamw",
        lr=5e-3,
        betas=(0.9, 0.98),
        weight_decay=0.01,
        schedule=schedule("onecycle", pct_start=0.1),
        grad_clip=1.0,
        batch_size=32,
        epochs=20,
        snapshots=(2, 5, 10),
    ),
}


def pretraining_spec(seed: int = 0) -> Spec:
    """The one pretraining run of the active profile, ``mlm``."""
    p = config.profile()
    return Spec(
        chapter=CHAPTER,
        name="mlm" if seed == 0 else f"mlm-s{seed}",
        seed=seed,
        data=pretraining_settings(**TEXT[p]),
        inputs={},
        model=model_settings(
            "masked_lm", MaskedLanguageModel, vocab_size=_vocab_size(), **SIZES[p]
        ),
        training=Training(**PRETRAINING[p]),
    )


# --- Three routes at a small budget -------------------------------------------------------------

# The learning curve measures one route to a better model: more pretraining. The two other routes
# (a larger model, another objective) are measured at a small budget, equal for the three,
# declared here before any of their runs:
#   "mlm"   the chapter's encoder and objective, pretrained for one epoch with its own schedule;
#   "wide"  an encoder 1.5 times as wide, heads of the same width (full: 96, 6 heads of 16),
#           the same objective;
#   "rtd"   replaced-token detection (ELECTRA): the chapter's encoder as the discriminator,
#           a generator of one layer sharing its word embeddings.
# Equal compute is equal arithmetic (:func:`flops_per_token` at the text's mean review length):
# each route gets the steps that one epoch of "mlm" pays for. Every route keeps the
# pretraining settings of PRETRAINING otherwise (one-cycle schedule over its own steps), and is
# fine-tuned with the pretrained arm's chosen pooling and learning rate at ROUTE_SEEDS. At this
# budget the points are drawn, with three seeds like the learning curve's, and compared with
# each other and with the curve, not tested. (Two seeds at first; the third was added to every
# route before any fine-tuning result was seen, when the runs proved quicker than planned.)
ROUTES = {
    "mlm": {},
    "wide": {"widen": 1.5},
    "rtd": {"objective": "replaced_token", "model": dict(generator_layers=1)},
}
ROUTE_SEEDS = {"full": (0, 1, 2), "smoke": (0,)}
# One epoch of the pretraining text, and its mean review length in tokens (CLS included), per
# profile: the budget of the routes (tests/test_pretraining.py checks both against the text).
EPOCH_STEPS = {"full": 1118, "smoke": 113}
MEAN_LENGTH = {"full": 232.0, "smoke": 35.5}


def flops_per_token(model: dict, length: float, mask_rate: float) -> float:
    """Floating-point operations of one pretraining step per real token, forward and backward
    (3 × forward), for the ``model`` section of a pretraining spec at sequence ``length``:
    the linear maps and attention of every layer (the generator's too, for replaced-token
    detection), the vocabulary-wide guesses at the chosen share ``mask_rate`` of the tokens,
    and the detector's head at every token."""
    d, v = model["d_model"], model["vocab_size"]
    hidden = model["ffn_mult"] * d
    layer = 4 * d * d + 2 * d * hidden + 2 * length * d  # q, k, v, out, MLP; scores, sum
    layers = model["n_layers"] + model.get("generator_layers", 0)
    guesses = mask_rate * (d * d + d * v)
    detector = d * d + d if "generator_layers" in model else 0
    return 3 * 2 * (layers * layer + guesses + detector)


def route_spec(route: str, seed: int = 0) -> Spec:
    """The pretraining run of ``route`` (:data:`ROUTES`), named ``route-<route>``, with the
    steps that one epoch of the "mlm" route pays for."""
    p = config.profile()
    if route not in ROUTES:
        raise KeyError(f"unknown route {route!r}; choose one of {', '.join(ROUTES)}.")
    changes = ROUTES[route]
    objective = changes.get("objective", "masked_lm")
    cls = MODELS[objective]
    sizes = deep_merge(SIZES[p], changes.get("model", {}))
    widen = changes.get("widen", 1)
    sizes.update(
        d_model=round(widen * sizes["d_model"]), n_heads=round(widen * sizes["n_heads"])
    )
    model = model_settings(objective, cls, vocab_size=_vocab_size(), **sizes)
    base = model_settings(
        "masked_lm", MaskedLanguageModel, vocab_size=_vocab_size(), **SIZES[p]
    )
    rate = PRETRAINING[p].get("mask_rate", MASK_RATE)
    ratio = flops_per_token(base, MEAN_LENGTH[p], rate) / flops_per_token(
        model, MEAN_LENGTH[p], rate
    )
    training = deep_merge(
        PRETRAINING[p],
        {"task": objective, "epochs": 1, "snapshots": (), "max_steps": None},
    )
    if route != "mlm":
        training["max_steps"] = round(EPOCH_STEPS[p] * ratio)
    return Spec(
        chapter=CHAPTER,
        name=f"route-{route}" if seed == 0 else f"route-{route}-s{seed}",
        seed=seed,
        data=pretraining_settings(**TEXT[p]),
        inputs={},
        model=model,
        training=Training(**training),
    )


def route_finetune_spec(route: str, seed: int = 0) -> Spec:
    """The fine-tuning run of ``route`` at ``seed``: the classifier with the route's encoder
    sizes, from the end of the route's pretraining, with the pretrained arm's chosen pooling
    and learning rate; its numbers only (``store_weights``)."""
    origin = route_spec(route)
    choice = chosen("pretrained")
    if choice is None:
        raise RecordError(
            f"the choice runs of the pretrained arm are not all recorded yet: run "
            f"python -m tme_lib.runs {CHAPTER}"
        )
    return finetune_spec(
        seed, -1, origin=origin, changes={"training.store_weights": False}, **choice
    ).replace(name=f"route-{route}-{choice['pooling']}-lr{choice['lr']:g}-s{seed}")


def _vocab_size() -> int:
    p = config.profile()
    if (
        p == "full"
    ):  # the specials and TEXT's max_size words (the vocabulary is that large)
        return 4 + TEXT[p]["max_size"]
    return len(load_pretraining_text(pretraining_settings(**TEXT[p])).vocab)


# Fine-tuning: AdamW, one-cycle schedule (10 % warm-up), a few epochs, the epoch kept chosen on
# validation; weights stored in half precision (the test scores them so). The run from scratch
# has the same budget.
FINETUNING = {
    "full": dict(
        optimizer="adamw",
        lr=3e-4,
        betas=(0.9, 0.98),
        weight_decay=0.01,
        schedule=schedule("onecycle", pct_start=0.1),
        grad_clip=1.0,
        batch_size=32,
        eval_batch_size=64,
        epochs=4,
        entropy_every=10,
        store_half=True,
    ),
    "smoke": dict(
        optimizer="adamw",
        lr=3e-3,
        betas=(0.9, 0.98),
        weight_decay=0.01,
        schedule=schedule("onecycle", pct_start=0.1),
        grad_clip=1.0,
        batch_size=32,
        eval_batch_size=64,
        epochs=6,
        store_half=True,
    ),
}


def finetune_spec(
    seed: int = 0,
    epoch: int | None = -1,
    pooling: str = "cls",
    lr: float | None = None,
    changes: dict | None = None,
    origin: Spec | None = None,
) -> Spec:
    """A fine-tuning run: from the snapshot of ``epoch`` of the pretraining run ``origin``
    (default: the chapter's; -1: the end of pretraining; ``None``: from scratch), with
    ``pooling`` and the learning rate ``lr``
    (default: the profile's), named ``pretrained-e<epoch>-<pooling>-lr<lr>-s<seed>`` or
    ``scratch-<pooling>-lr<lr>-s<seed>``; ``changes`` are dotted paths for
    :meth:`Spec.replace`. A run from an intermediate snapshot (a point of the learning curve)
    records its numbers but not its weights (``store_weights``), which keeps the chapter's
    committed weights small."""
    p = config.profile()
    base = origin or pretraining_spec()
    last = base.training.epochs
    epoch = last if epoch == -1 else epoch
    if epoch is not None and epoch not in (*base.training.snapshots, last):
        raise ValueError(
            f"pretraining keeps the weights of epochs {base.training.snapshots} and {last}, "
            f"not {epoch}."
        )
    start = (
        None
        if epoch is None
        else {"chapter": CHAPTER, "name": base.name, "key": base.key(), "epoch": epoch}
    )
    sizes = {k: base.model[k] for k in SIZES[p]}  # the encoder's, without a generator
    training = deep_merge(FINETUNING[p], {} if lr is None else {"lr": lr})
    if (
        epoch is not None and epoch != last
    ):  # a point of the learning curve: its numbers only
        training["store_weights"] = False
    arm = "scratch" if epoch is None else f"pretrained-e{epoch}"
    s = Spec(
        chapter=CHAPTER,
        name=f"{arm}-{pooling}-lr{training['lr']:g}-s{seed}",
        seed=seed,
        data=base.data,
        inputs={"pretraining": start},
        model=model_settings(
            "classifier",
            PretrainedClassifier,
            vocab_size=base.model["vocab_size"],
            pooling=pooling,
            **sizes,
        ),
        training=Training(**training),
    )
    return s.replace(changes) if changes else s


# --- The plan, declared before any fine-tuning run ----------------------------------------------

# Two arms: the encoder fine-tuned from the end of pretraining, and the same architecture from
# random weights with the same fine-tuning budget (epochs, schedule, batches). Each arm's
# pooling and learning rate are chosen on validation accuracy at seed 0 among CHOICES (the
# epoch kept is chosen on validation within every run); then the arm runs at the other seeds of
# the course's seed design with its choice (a run costs under 15 min on one core: five seeds).
ARMS = {"pretrained": -1, "scratch": None}
CURVE_SEEDS = {"full": (0, 1, 2), "smoke": (0,)}
CHOICES = {
    "full": dict(
        pooling=("cls", "mean"),
        lr={"pretrained": (1e-4, 3e-4, 1e-3), "scratch": (3e-4, 1e-3, 3e-3)},
    ),
    "smoke": dict(
        pooling=("cls", "mean"), lr={"pretrained": (3e-3,), "scratch": (3e-3,)}
    ),
}
# The learning curve: the pretrained arm's choice, fine-tuned from each snapshot; the end of
# pretraining is the pretrained arm itself and the run from scratch is point 0. The snapshots'
# points are drawn, not compared: each has three seeds (CURVE_SEEDS, the first three of the
# arms'), enough to show its spread; five would cost 8 more runs (about 2 CPU-hours). Fixed
# before any run of the curve.
# The comparisons the chapter reports, each a difference of mean test accuracy with its 95 %
# interval over the seeds both arms share (against a single deterministic fit, the interval of
# the arm's mean): declared here before the runs.
COMPARISONS = [
    (("pretraining", "pretrained"), ("pretraining", "scratch")),
    (("pretraining", "pretrained"), ("tme10", "self_attention_distance")),
    (("pretraining", "pretrained"), ("tme9", "attention_lstm")),
    (("pretraining", "pretrained"), ("tme9", "nb_bigram_lr")),
    (("beyond", "nb_plus_pretrained"), ("tme9", "nb_bigram_lr")),
    (("beyond", "nb_plus_pretrained"), ("beyond", "nb_plus_attention_lstm")),
]


def selection_plan() -> list[Spec]:
    """The seed-0 runs among which each arm's pooling and learning rate are chosen."""
    c = CHOICES[config.profile()]
    return [
        finetune_spec(0, ARMS[arm], pooling, lr)
        for arm in ARMS
        for pooling in c["pooling"]
        for lr in c["lr"][arm]
    ]


def chosen(arm: str) -> dict | None:
    """``{"pooling", "lr"}`` of the seed-0 run of ``arm`` with the best validation accuracy
    (the first in :data:`CHOICES` order on a tie), or ``None`` while one of its runs has no
    record."""
    c = CHOICES[config.profile()]
    candidates = [
        (pooling, lr, finetune_spec(0, ARMS[arm], pooling, lr))
        for pooling in c["pooling"]
        for lr in c["lr"][arm]
    ]
    found = [records.find_record(s) for _, _, s in candidates]
    if any(path is None for path in found):
        return None
    scores = [records.read_record(p).final["val_acc"] for p in found]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return {"pooling": candidates[best][0], "lr": candidates[best][1]}


def unchosen_runs() -> list[Spec]:
    """The choice runs that lost their arm's choice on validation. Their numbers make the
    choice; their weights nothing loads, so the repository does not keep them: they are listed
    in the chapter's ``results/runs/pretraining/weights_not_kept.txt``
    (:data:`~tme_lib.training.records.WEIGHTS_NOT_KEPT`), which keeps its weights under
    :data:`WEIGHTS_BUDGET_MB`."""
    out = []
    for arm, epoch in ARMS.items():
        choice = chosen(arm)
        if choice is not None:
            kept = finetune_spec(0, epoch, **choice).key()
            out += [
                s
                for s in selection_plan()
                if s.inputs["pretraining"]
                == finetune_spec(0, epoch).inputs["pretraining"]
                and s.key() != kept
            ]
    return out


def numbers_only_specs() -> list[Spec]:
    """The runs whose weights the repository does not keep, listed in the chapter's
    ``results/runs/pretraining/weights_not_kept.txt``: the choice runs that lost their choice
    (:func:`unchosen_runs`) and the routes' pretraining runs, whose weights only their own
    fine-tuning reads (the routes' fine-tuning runs keep none: ``store_weights``). Together
    they keep the chapter's committed weights under :data:`WEIGHTS_BUDGET_MB`."""
    return [*unchosen_runs(), *(route_spec(r) for r in ROUTES)]


def plan() -> list[Spec]:
    """The runs of the chapter, in the order they can run: pretraining, the choice runs (seed
    0), then, once an arm's choice is recorded, its other seeds and the learning curve; the
    routes' pretraining, and once the pretrained arm's choice is recorded, their fine-tuning.
    The
    run tool therefore trains the plan in stages: run it again after a stage is recorded."""
    out = [pretraining_spec(), *selection_plan()]
    seeds = SEEDS[config.profile()]
    for arm, epoch in ARMS.items():
        choice = chosen(arm)
        if choice is not None:
            out += [finetune_spec(seed, epoch, **choice) for seed in seeds[1:]]
    choice = chosen("pretrained")
    if choice is not None:
        snapshots = pretraining_spec().training.snapshots
        out += [
            finetune_spec(seed, epoch, **choice)
            for epoch in snapshots
            for seed in CURVE_SEEDS[config.profile()]
        ]
    out += [route_spec(r) for r in ROUTES]
    if choice is not None:
        out += [
            route_finetune_spec(r, seed)
            for seed in ROUTE_SEEDS[config.profile()]
            for r in ROUTES
        ]
    return out


def curve_point(s: Spec) -> bool:
    """Whether ``s`` is a point of the learning curve from an intermediate snapshot: drawn in
    the chapter's figure, compared with nothing, with :data:`CURVE_SEEDS`."""
    origin = s.inputs.get("pretraining") if s.inputs else None
    return origin is not None and origin["epoch"] in pretraining_spec().training.snapshots


def ready(arm: str) -> bool:
    """Whether the choice of ``arm`` is recorded, so that :func:`spec` can build its runs."""
    return chosen(arm) is not None


def spec(arm: str, seed: int = 0) -> Spec:
    """The fine-tuning run of ``arm`` ("pretrained" or "scratch") at ``seed``, with the arm's
    chosen pooling and learning rate: what other chapters (the fusions of "Beyond the bag of
    words") name as this chapter's model."""
    if arm not in ARMS:
        raise KeyError(f"unknown arm {arm!r}; choose one of {', '.join(ARMS)}.")
    choice = chosen(arm)
    if choice is None:
        raise RecordError(
            f"the choice runs of the {arm} arm are not all recorded yet: run "
            f"python -m tme_lib.runs {CHAPTER}"
        )
    return finetune_spec(seed, ARMS[arm], **choice)


def load_data(s: Spec) -> tuple:
    """The labelled reviews of ``s`` tokenised with the pretraining vocabulary (a CLS token
    first), as ``(corpus, None)``: the form of the other chapters' ``load_data``."""
    return text_of(s).corpus, None


def pretraining_specs() -> list[Spec]:
    """Every pretraining run of the chapter: the main one and the routes'."""
    return [pretraining_spec(), *(route_spec(r) for r in ROUTES)]


def pretraining_record(spec: Spec | None = None) -> tuple[RunRecord, Path]:
    """The checked record of the pretraining run (``spec``: default, this profile's) and its
    path; a message that says how to make it when there is none."""
    spec = spec or pretraining_spec()
    path = records.find_record(spec)
    if path is None:
        raise RecordError(
            f"The pretraining run {spec.label} (key {spec.key()}) has no record yet: "
            f"fine-tuning starts from it. Run: python -m tme_lib.runs {CHAPTER} --only "
            f"{spec.name}"
        )
    return records.read_record(path, spec), path


def encoder_state(origin: dict) -> dict:
    """The encoder's weights after epoch ``origin["epoch"]`` of the pretraining run whose key
    ``origin["key"]`` names (checked against this code's pretraining spec)."""
    known = {s.key(): s for s in pretraining_specs()}
    spec = known.get(origin["key"])
    if spec is None:
        raise RecordError(
            f"this fine-tuning run starts from the pretraining run {origin['key']}, but this "
            f"code's pretraining specs are {', '.join(known)}: build the spec again with "
            f"tme_lib.chapters.pretraining.finetune_spec."
        )
    record, path = pretraining_record(spec)
    if origin["epoch"] == spec.training.epochs:  # the record's own weights, checked
        model = MODELS[spec.model_name](**spec.model_kwargs)
        records.load_weights(record, path, model, spec)
        return model.encoder.state_dict()
    state = records.load_snapshot(record, path, origin["epoch"])
    return {
        k.removeprefix("encoder."): v.float()
        for k, v in state.items()
        if k.startswith("encoder.")
    }


def build_model(spec: Spec) -> nn.Module:
    """The model of ``spec``: the masked language model, or the classifier (its encoder loaded
    from the pretraining run its ``inputs`` name, if any)."""
    model = MODELS[spec.model_name](**spec.model_kwargs)
    if spec.training.task in PRETRAINING_TASKS:
        return model
    origin = spec.inputs.get("pretraining")
    if origin is not None:
        model.encoder.load_state_dict(encoder_state(origin))
    return model


@torch.no_grad()
def fill_in(
    model: MaskedLanguageModel, vocab, words: list[str], position: int, k: int = 5
) -> list[tuple[str, float]]:
    """The ``k`` words the model finds likeliest at ``position`` of the review ``words``
    (the word there is masked first), with their probabilities; special tokens are never
    proposed. Section "What the model learned to guess"."""
    from ..data.pretraining import CLS, FIRST_WORD, MASK

    ids = [CLS, *(vocab.stoi.get(w, 1) for w in words)]
    ids[position + 1] = MASK
    model.eval()
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    logits, _ = model(x, torch.ones_like(x, dtype=torch.bool))
    p = logits[0, position + 1].float().softmax(-1)
    p[:FIRST_WORD] = 0
    top = p.topk(k)
    return [
        (vocab.itos[i], round(v, 4))
        for v, i in zip(top.values.tolist(), top.indices.tolist())
    ]


def text_of(spec: Spec) -> PretrainingText:
    return load_pretraining_text(spec.data)


def run(s: Spec, progress: bool = True, retrain: bool = False, device=None) -> RunRecord:
    """Load the record of ``s`` if it exists, else pretrain or fine-tune it."""
    text = text_of(s)
    t = s.training
    if t.task in PRETRAINING_TASKS:
        return load_or_train(
            s, lambda: build_model(s), text, device, progress, retrain, fit=pretrain
        )
    return load_or_train(
        s,
        lambda: build_model(s),
        lambda: make_loaders(
            text.corpus,
            t.batch_size,
            s.seed,
            t.eval_batch_size,
            chunk_batches=t.chunk_batches,
        ),
        device,
        progress,
        retrain,
    )


# --- What the notebook reads --------------------------------------------------------------------


def plan_records(progress: bool = False, train: bool | None = None) -> list[RunRecord]:
    """The runs of :func:`plan`, stage after stage: once the choice runs are recorded the plan
    grows, and the new runs follow. ``train`` (default: in the smoke profile only) trains the
    runs that have no record; otherwise only the recorded runs are loaded, since the full plan
    takes hours (``python -m tme_lib.runs pretraining`` trains it, in the background)."""
    train = not config.is_full() if train is None else train
    done: dict[str, RunRecord] = {}
    while True:
        todo = [s for s in plan() if s.key() not in done]
        if not train:
            todo = [s for s in todo if records.find_record(s) is not None]
        if not todo:
            return list(done.values())
        for s in todo:
            done[s.key()] = run(s, progress=progress)


def missing_runs() -> list[str]:
    """The names of the runs of the current :func:`plan` that have no record yet."""
    return [s.name for s in plan() if records.find_record(s) is None]


def arm_records(
    records: list[RunRecord], arm: str, epoch: int | None = -1
) -> list[RunRecord]:
    """The runs of ``arm`` ("pretrained" or "scratch") with the arm's chosen pooling and
    learning rate, one per seed; for "pretrained", from the snapshot of ``epoch`` (-1: the end
    of pretraining). Empty while the choice is not recorded."""
    choice = chosen(arm)
    if choice is None:
        return []
    keys = {
        finetune_spec(seed, epoch if arm == "pretrained" else None, **choice).key()
        for seed in SEEDS[config.profile()]
    }
    return sorted((r for r in records if r.key in keys), key=lambda r: r.seed)


def choice_table(records: list[RunRecord]) -> pd.DataFrame:
    """The seed-0 runs among which each arm's pooling and learning rate were chosen: validation
    and test accuracy (%), the epoch kept, the choice marked with a tick."""
    keys = {s.key(): s for s in selection_plan()}
    rows = []
    for r in records:
        s = keys.get(r.key)
        if s is None:
            continue
        arm = "pretrained" if s.inputs["pretraining"] else "scratch"
        choice = chosen(arm) or {}
        rows.append(
            {
                "arm": arm,
                "pooling": s.model["pooling"],
                "lr": s.training.lr,
                "val %": 100 * r.final["val_acc"],
                "test %": 100 * r.final["test_acc"],
                "epoch": r.final["best_epoch"],  # the epoch kept, chosen on validation
                "chosen": "✓"
                if choice == {"pooling": s.model["pooling"], "lr": s.training.lr}
                else "",
            }
        )
    return pd.DataFrame(rows)


def curve_table(records: list[RunRecord], pretraining: RunRecord) -> pd.DataFrame:
    """The learning curve: for 0 (the arm from scratch) and every pretraining snapshot, the
    epochs and hours of pretraining, and the fine-tuned test accuracy (%) over the seeds."""
    hours = {e["epoch"]: e["seconds"] / 3600 for e in pretraining.history}
    last = pretraining_spec().training.epochs
    points = [(0, arm_records(records, "scratch"))]
    points += [
        (e, arm_records(records, "pretrained", e))
        for e in (*pretraining_spec().training.snapshots, last)
    ]
    rows = []
    for epoch, runs in points:
        if not runs:
            continue
        acc = 100 * np.array([r.final["test_acc"] for r in runs])
        rows.append(
            {
                "pretraining epochs": epoch,
                "pretraining hours": hours.get(epoch, 0.0),
                "seeds": len(runs),
                "test %": acc.mean(),
                "sd": acc.std(ddof=1) if len(acc) > 1 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def curve_forecast(curve: pd.DataFrame, target: float) -> dict | None:
    """What the learning curve's last step says of more pretraining, if every further doubling
    of it gave what the last one gave (a straight line in log-compute, an optimistic guess:
    such curves bend down): the gain per doubling between the last two points (``None`` with
    fewer than two points after 0), and, when it is positive, how many more doublings reach
    ``target`` % and the pretraining epochs and hours that would take."""
    points = curve[curve["pretraining epochs"] > 0]
    if len(points) < 2:
        return None
    before, last = points.iloc[-2], points.iloc[-1]
    per_doubling = (last["test %"] - before["test %"]) / np.log2(
        last["pretraining epochs"] / before["pretraining epochs"]
    )
    out = {
        "from": int(before["pretraining epochs"]),
        "to": int(last["pretraining epochs"]),
        "per_doubling": float(per_doubling),
        "doublings": None,
    }
    if per_doubling > 0:
        k = max(0.0, float((target - last["test %"]) / per_doubling))
        out.update(
            doublings=k,
            epochs=float(last["pretraining epochs"] * 2**k),
            hours=float(last["pretraining hours"] * 2**k),
        )
    return out


# The comparisons whose two arms share every seed's data order (the same batches in the same
# order, the same dropout draws up to the weights): paired by seed. The others are Welch's.
PAIRED = {((CHAPTER, "pretrained"), (CHAPTER, "scratch"))}
# Arms fitted once, deterministically (no seed): the same value stands at every seed.
DETERMINISTIC = {("tme9", "nb_bigram_lr")}


def comparison_table(
    records: list[RunRecord], others: dict[tuple, dict[int, float]]
) -> pd.DataFrame:
    """The comparisons of :data:`COMPARISONS` whose arms are known: this chapter's arms from
    ``records``, the others from ``others`` (``{(chapter, model): {seed: test %}}``; a fit of
    :data:`DETERMINISTIC` is given once and stands at every seed of the arm it is compared
    with, so the interval is that arm's). For each: the difference of
    mean test accuracy (points) over the shared seeds, its 95 % interval (paired by seed for
    :data:`PAIRED`, Welch otherwise), the raw verdict, and the verdict after Holm's correction
    over the comparisons of the table (the chapter's family)."""
    from ..training import metrics

    arms = dict(others)
    for arm in ARMS:
        arms[(CHAPTER, arm)] = {
            r.seed: 100 * r.final["test_acc"] for r in arm_records(records, arm)
        }
    rows = []
    for a, b in COMPARISONS:
        x, y = arms.get(a, {}), arms.get(b, {})
        if b in DETERMINISTIC and y:  # one fit stands at every seed of the other arm
            y = dict.fromkeys(x, next(iter(y.values())))
        rows.append(
            metrics.comparison_row(
                f"{a[1]} ({a[0]}) − {b[1]} ({b[0]})", x, y, paired=(a, b) in PAIRED
            )
        )
    return metrics.comparison_table(rows)


ROUTE_NAMES = {
    "mlm": "masked-LM (the chapter's)",
    "wide": "masked-LM, 1.5 × wider",
    "rtd": "replaced-token detection",
}


def route_table(records: list[RunRecord]) -> pd.DataFrame:
    """The routes at a small budget, one row per route whose pretraining is recorded: its
    encoder's parameters, its pretraining steps and their share of an epoch, its arithmetic
    relative to the budget, its recorded pretraining minutes, and the fine-tuned test accuracy
    (%) at each seed of :data:`ROUTE_SEEDS` recorded for every route (``seeds``) and their
    mean."""
    by_key = {r.key: r for r in records}
    p = config.profile()
    budget = EPOCH_STEPS[p] * flops_per_token(
        route_spec("mlm").model, MEAN_LENGTH[p], MASK_RATE
    )
    ready = chosen("pretrained") is not None
    tuned = {
        r: {
            seed: by_key.get(route_finetune_spec(r, seed).key()) if ready else None
            for seed in ROUTE_SEEDS[p]
        }
        for r in ROUTES
    }
    shared = [s for s in ROUTE_SEEDS[p] if all(tuned[r][s] for r in ROUTES)]
    rows = []
    for route in ROUTES:
        s = route_spec(route)
        pre = by_key.get(s.key())
        if pre is None:
            continue
        steps = s.training.max_steps or EPOCH_STEPS[p]
        encoder = TokenEncoder(s.model["vocab_size"], **{k: s.model[k] for k in SIZES[p]})
        row = {
            "route": ROUTE_NAMES[route],
            "encoder parameters": sum(t.numel() for t in encoder.parameters()),
            "steps": steps,
            "epoch share": steps / EPOCH_STEPS[p],
            "arithmetic": steps
            * flops_per_token(s.model, MEAN_LENGTH[p], MASK_RATE)
            / budget,
            "minutes": pre.seconds / 60,
        }
        for seed in shared:
            row[f"test % s{seed}"] = 100 * tuned[route][seed].final["test_acc"]
        if shared:
            row["test %"] = np.mean([row[f"test % s{seed}"] for seed in shared])
        rows.append(row)
    return pd.DataFrame(rows)


def review_attention(model: nn.Module, ids) -> torch.Tensor:
    """The attention weights ``[n_layers, n_heads, T, T]`` of the encoder of ``model`` (a
    masked language model or a classifier) on one review of token ids ``[T]`` (CLS first, no
    padding). Section "What the heads look at"."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(ids, dtype=torch.long, device=device)[None]
    with torch.no_grad():
        _, weights = model.encoder(x, torch.ones_like(x, dtype=torch.bool), True)
    return weights[0].cpu()


def planned_runs() -> int:
    """How many runs the complete plan has, once every stage is known: pretraining, the choice
    runs, each arm's other seeds, the learning curve and the routes (for the cost table)."""
    seeds = len(SEEDS[config.profile()])
    snapshots = len(pretraining_spec().training.snapshots)
    curve = snapshots * len(CURVE_SEEDS[config.profile()])
    routes = len(ROUTES) * (1 + len(ROUTE_SEEDS[config.profile()]))
    return 1 + len(selection_plan()) + len(ARMS) * (seeds - 1) + curve + routes


def write_tables(runs: list[RunRecord]) -> dict[str, pd.DataFrame]:
    """The chapter's results table, ``pretraining.csv``: one row per fine-tuning run (its arm,
    the pretraining epoch it starts from, its settings, validation and test accuracy, time),
    written once every run of the plan is recorded, as the run tool writes every table (while
    a choice is missing the plan itself is not complete)."""
    if not all(ready(arm) for arm in ARMS) or missing_runs():
        return {}
    rows = []
    for r in runs:
        spec = Spec.from_dict(r.spec)
        if spec.training.task in PRETRAINING_TASKS:
            continue
        origin = spec.inputs["pretraining"]
        rows.append(
            {
                "name": r.name,
                "arm": "scratch"
                if origin is None
                else origin["name"]
                if origin["name"].startswith("route-")
                else "pretrained",
                "pretraining_epoch": 0 if origin is None else origin["epoch"],
                "pooling": spec.model["pooling"],
                "lr": spec.training.lr,
                "seed": r.seed,
                "best_epoch": r.final["best_epoch"],
                "val_acc": r.final["val_acc"],
                "test_acc": r.final["test_acc"],
                "seconds": r.seconds,
                "code_version": r.code_version,
            }
        )
    return {"pretraining.csv": pd.DataFrame(rows)}
