"""The experiment specification: everything that determines the result of one run.

A :class:`Spec` has the same shape in every chapter:

``chapter``, ``name``, ``seed``
    where its record goes (``results/runs/<chapter>/<name>-<key>.json``) and the seed of the
    initial weights, the batch order and the dropout masks.
``data``
    what the examples are: dataset and its version, profile, validation draw, vocabulary, cut
    (IMDB, see :func:`tme_lib.data.corpus.data_settings`), or library size and labelling
    parameters (aptamers).
``inputs``
    what the model reads besides the examples: the word vectors and all their training settings
    (:func:`tme_lib.data.vectors.vector_settings`); empty when there are none.
``model``
    the model's ``name`` in the chapter's registry and **every** constructor argument, defaults
    and variant settings written out (:func:`model_settings`): the model is built from this
    section alone.
``training``
    a :class:`Training`: optimizer, learning rate, schedule with all its parameters, epochs,
    patience, batch sizes, entropy penalty, evaluation order.

:meth:`Spec.key` hashes all of it; a run whose spec differs in any field gets another record.
Specs are frozen; :meth:`Spec.replace` returns a changed copy.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import Any

TASKS = ("classification", "regression", "masked_lm", "replaced_token")
OPTIMIZERS = ("adam", "adamw", "sgd")
VAL_ORDERS = ("length", "shuffled")

# The seed design of the course, fixed before the runs and shared by every chapter: five seeds
# for every compared arm whose run costs at most ``CHEAP_RUN_SECONDS`` on one core of the
# reference CPU (the fastest recorded ``seconds`` of the arm, runs side by side on two cores),
# three for the costlier arms (TME 9's LSTM, the aptamer transformer). Arms that are compared
# have the same seeds; a comparison uses the seeds its two arms share.
SEEDS = {"full": (0, 1, 2, 3, 4), "smoke": (0,)}
COSTLY_SEEDS = {"full": (0, 1, 2), "smoke": (0,)}
CHEAP_RUN_SECONDS = 15 * 60

# Every parameter of each learning-rate schedule, with PyTorch's defaults written out, so that a
# change of default in a later PyTorch (or here) changes the spec rather than the result.
SCHEDULES = {
    "constant": {},
    "cosine": {"eta_min": 0.0},
    "onecycle": {
        "pct_start": 0.3,
        "anneal_strategy": "cos",
        "div_factor": 25.0,
        "final_div_factor": 1e4,
        "three_phase": False,
        "cycle_momentum": True,
        "base_momentum": 0.85,
        "max_momentum": 0.95,
    },
}


def schedule(name: str = "constant", **params) -> dict:
    """A schedule with all its parameters: ``schedule("onecycle", pct_start=0.25)``."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule {name!r}: use one of {', '.join(SCHEDULES)}.")
    unknown = set(params) - set(SCHEDULES[name])
    if unknown:
        raise ValueError(
            f"schedule {name!r} has no parameter {', '.join(sorted(unknown))}; "
            f"it has {', '.join(SCHEDULES[name]) or 'none'}."
        )
    return {"name": name, **SCHEDULES[name], **params}


@dataclass(frozen=True)
class Training:
    """How a model is trained and evaluated (every field is part of the run's key)."""

    task: str = "classification"
    optimizer: str = "adam"  # adam, adamw or sgd
    lr: float = 1e-3  # the peak rate with the one-cycle schedule
    momentum: float = 0.0  # SGD only
    betas: tuple = (0.9, 0.999)  # Adam and AdamW only
    weight_decay: float = 0.0
    schedule: dict = field(default_factory=schedule)  # stepped once per batch
    grad_clip: float | None = None  # largest gradient norm, None for no clipping
    batch_size: int = 64
    eval_batch_size: int = 256
    epochs: int = 10
    # early stopping: epochs without a better validation score
    patience: int | None = None
    entropy_weight: float = 0.0  # λ in L + λ·(mean attention entropy)
    entropy_sample: int = 500  # per-example entropies kept per epoch for the histograms
    # Attention weights (for the entropies) on every k-th evaluation batch only; the other
    # batches use the model's fast path. Loss and accuracy always cover every batch.
    entropy_every: int = 1
    val_order: str = "length"  # or "shuffled" (see tme_lib.data.batching.make_loaders)
    # Fields added after records existed (see ADDED): a spec writes them only when they differ
    # from their default, so the keys of the older runs do not change.
    # Masked-language modelling (task "masked_lm", tme_lib.blocks.masked_lm): the share of real
    # words chosen, and how a chosen word is shown (mask token, random word, unchanged).
    mask_rate: float = 0.15
    mask_shares: tuple = (0.8, 0.1, 0.1)
    # epochs after which a half-precision copy of the weights is kept (pretraining)
    snapshots: tuple = ()
    # weights rounded to half precision before the test and stored so (the record's .pt is
    # half as large; the test scores the stored weights)
    store_half: bool = False
    # length buckets: training reviews are sorted by length within chunks of this many batches
    # (tme_lib.data.batching.BucketLoader)
    chunk_batches: int = 100
    # False: the record keeps the run's metrics only, no weights (runs that the book reads only
    # by their numbers, such as the points of a learning curve, so that the committed weights
    # stay small); such a record cannot restore its model.
    store_weights: bool = True
    # pretraining only: stop after this many steps (the schedule spans them), for runs whose
    # budget is a share of an epoch (the chapter's routes at equal compute); None: every epoch
    max_steps: int | None = None

    def total_steps(self, steps_per_epoch: int) -> int:
        """The optimizer steps of the run: ``max_steps``, or every batch of every epoch."""
        return max(1, self.max_steps or self.epochs * steps_per_epoch)

    def __post_init__(self):
        for name, value, allowed in (
            ("task", self.task, TASKS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("val_order", self.val_order, VAL_ORDERS),
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r}: use one of {', '.join(allowed)}.")
        schedule(**self.schedule)  # validates the name and the parameters
        for name in ("betas", "mask_shares", "snapshots"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if abs(sum(self.mask_shares) - 1) > 1e-9 or len(self.mask_shares) != 3:
            raise ValueError(
                f"mask_shares={self.mask_shares}: three shares (mask token, random word, "
                "unchanged) that sum to 1."
            )


# The fields of Training added after records existed, with the default that older specs had
# implicitly; Spec.to_dict leaves them out at that default.
ADDED = {
    "mask_rate": 0.15,
    "mask_shares": [0.8, 0.1, 0.1],
    "snapshots": [],
    "store_half": False,
    "chunk_batches": 100,
    "store_weights": True,
    "max_steps": None,
}


@dataclass(frozen=True)
class Spec:
    """One run, whole. See the module docstring for the sections."""

    chapter: str
    name: str
    seed: int
    data: dict
    inputs: dict
    model: dict
    training: Training

    def __post_init__(self):
        if "name" not in self.model:
            raise ValueError(
                f"{self.chapter}/{self.name}: the model section needs a 'name'."
            )
        for section in (
            "data",
            "inputs",
            "model",
        ):  # as stored in a record: tuples as lists
            try:
                plain = json.loads(json.dumps(getattr(self, section), allow_nan=False))
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"{self.chapter}/{self.name}: the {section} section must hold "
                    f"plain JSON values ({error})."
                ) from None
            object.__setattr__(self, section, plain)

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_kwargs(self) -> dict:
        """The constructor arguments of the model (the ``model`` section without its name)."""
        return {k: copy.deepcopy(v) for k, v in self.model.items() if k != "name"}

    @property
    def label(self) -> str:
        return f"{self.chapter}/{self.name}"

    def to_dict(self) -> dict:
        """A JSON-ready deep copy (tuples become lists)."""
        out = json.loads(json.dumps(dataclasses.asdict(self)))
        for name, default in ADDED.items():
            if out["training"][name] == default:
                del out["training"][name]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Spec:
        d = copy.deepcopy(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"a spec has no field {', '.join(sorted(unknown))}.")
        return cls(**{**d, "training": Training(**d["training"])})

    def key(self) -> str:
        """12 hex digits of the SHA-256 of the whole spec in canonical JSON."""
        text = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def data_order(self) -> str:
        """12 hex digits naming the training batches this run sees, in order: its data, seed
        and batching settings (``tme_lib.data.batching`` shuffles from the seed alone). Two
        arms whose runs share it at every seed are compared paired by seed."""
        t = self.training
        order = [self.data, self.seed, t.batch_size, t.chunk_batches, t.task]
        text = json.dumps(order, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def replace(self, changes: dict[str, Any] | None = None, **top) -> Spec:
        """A copy with fields changed: top-level ones by keyword (``name=...``), nested ones by
        dotted path (``{"training.lr": 0.01, "model.distance_slope": 1.0}``). A path must exist
        already: a typo raises instead of adding a field no code reads."""
        d = json.loads(
            json.dumps(dataclasses.asdict(self))
        )  # every field, ADDED ones too
        d.update(copy.deepcopy(top))
        for path, value in (changes or {}).items():
            *parents, last = path.split(".")
            node = d
            for part in parents:
                node = node[part]
            if last not in node:
                raise KeyError(f"{path!r} is not a field of the spec of {self.label}.")
            node[last] = copy.deepcopy(value)
        return Spec.from_dict(d)


def model_settings(
    name: str, cls: type, exclude: tuple[str, ...] = ("vectors",), **kwargs
) -> dict:
    """The ``model`` section for ``cls``: ``name`` and every constructor argument, its default
    written out unless ``kwargs`` sets it. ``exclude`` names the arguments that are not settings
    (the frozen ``vectors``, which the ``inputs`` section describes)."""
    parameters = inspect.signature(cls).parameters
    unknown = set(kwargs) - set(parameters)
    if unknown:
        raise TypeError(f"{cls.__name__} has no argument {', '.join(sorted(unknown))}.")
    out = {"name": name}
    for p in parameters.values():
        if p.name in exclude or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in kwargs:
            out[p.name] = kwargs[p.name]
        elif p.default is inspect.Parameter.empty:
            raise TypeError(f"{cls.__name__} needs a value for {p.name!r}.")
        else:
            out[p.name] = p.default
    return out


def deep_merge(*sections: dict) -> dict:
    """Later dicts override earlier ones, key by key, recursing into nested dicts: the one way
    chapters combine their settings (profile, optimizer, model, variant)."""
    out: dict = {}
    for section in sections:
        for k, v in section.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = deep_merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
    return out
