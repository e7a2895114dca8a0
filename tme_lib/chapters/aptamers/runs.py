"""The chapter's training runs, declared once for the notebook and the run tool.

Each run is a :class:`~tme_lib.training.spec.Spec`: its ``data`` section says which strands
(the ViennaRNA ΔG library, or the planted-answer simulation, with every setting of either), its
``model`` section every argument of the model. :func:`run` rebuilds data and model from the
spec alone, then loads the record or trains. Sizes depend on the profile: the smoke profile
trains tiny models for a couple of epochs, the full profile the runs reported in the book.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

from ... import config
from ...training.records import RunRecord, existing_records, load_or_fit, load_or_train
from ...training.spec import (
    COSTLY_SEEDS,
    Spec,
    Training,
    deep_merge,
    model_settings,
    schedule,
)
from ...training.spec import (
    SEEDS as CHEAP,
)
from .data import SIZES, Splits, labelled_library, split
from .energy import DEFAULT_PARAMS
from .models import AptamerTransformer, SourceTransformer
from .sequences import LENGTH
from .simulator import simulate

CHAPTER = "aptamers"
MODELS = {
    "aptamer_transformer": AptamerTransformer,
    "source_transformer": SourceTransformer,
}
# Set from the training targets when the model is built (standardised targets), and saved with
# the weights: statistics of the data, which the data section determines, not settings.
FITTED = ("target_mean", "target_scale")

# Our transformer on ViennaRNA ΔG, with the base-pair bias (``pair_channels``). Full: sized so
# that training fits in 30 minutes on one CPU thread (two passes over 500,000 strands rather than
# more passes over fewer: fresh strands are free); smoke: a few seconds.
OURS = {
    "full": dict(
        model=dict(
            d_model=64,
            n_layers=4,
            n_heads=4,
            conv_width=5,
            conv_layers=2,
            pair_channels=16,
        ),
        data=dict(n_train=500_000),
        training=dict(epochs=2, batch_size=256, lr=2e-3),
    ),
    "smoke": dict(
        model=dict(
            d_model=32,
            n_layers=2,
            n_heads=4,
            conv_width=5,
            conv_layers=1,
            pair_channels=4,
        ),
        data=dict(n_train=None),
        training=dict(epochs=4, batch_size=64, lr=3e-3),
    ),
}
# The source project's model (vocabulary 30, as published) under the CPU budget of ours: as
# many strands as it trains on in the time our main run took (measured: about 140 strands/s).
SOURCE = {
    "full": dict(
        model=dict(),
        data=dict(n_train=80_000),
        training=dict(epochs=2, batch_size=64, lr=5e-4),
    ),
    "smoke": dict(
        model=dict(d_model=32, dim_feedforward=64, n_heads=4),
        data=dict(n_train=None),
        training=dict(epochs=2, batch_size=64, lr=3e-4),
    ),
}
# Smaller training sets for the learning curve (our transformer, same epochs), and the sizes the
# baselines are refitted on (these plus the main training set).
CURVE_SIZES = {"full": (10_000, 50_000), "smoke": ()}
BASELINE_SIZES = {"full": (10_000, 50_000), "smoke": ()}
# The baselines' settings (fit_baseline's arguments): at most 500 boosting rounds, early stopping
# on a held-out tenth; the smoke profile stops at 100.
BASELINE_SETTINGS = {"full": dict(max_iter=500), "smoke": dict(max_iter=100)}
# The base-pair bias, on and off, everything else equal (smaller runs than the main one).
ABLATION = {
    "full": dict(data=dict(n_train=100_000), training=dict(epochs=2)),
    "smoke": dict(data=dict(n_train=None), training=dict(epochs=2)),
}
# The planted-answer problem: one motif, one stem, noise 0.5 (see ``simulator``).
PLANTED = {
    "full": dict(
        data=dict(n=40_000),
        model=dict(d_model=48, n_layers=2, n_heads=4, conv_width=3),
        training=dict(epochs=6, batch_size=128, lr=3e-3),
    ),
    "smoke": dict(
        data=dict(n=3_000),
        model=dict(d_model=32, n_layers=2, n_heads=4, conv_width=3),
        training=dict(epochs=4, batch_size=64, lr=3e-3),
    ),
}
TRAINING = dict(
    task="regression",
    optimizer="adamw",
    weight_decay=0.01,
    schedule=schedule("onecycle"),
    grad_clip=1.0,
    eval_batch_size=2_048,
)


def energy_data(n_train: int | None, seed: int = 0) -> dict:
    """The ``data`` section of a run on the ViennaRNA library of the active profile: library
    size and seed, strand length, energy parameters, split sizes."""
    sizes = SIZES[config.profile()]
    left = sizes["n"] - sizes["n_val"] - sizes["n_test"]
    return dict(
        source="viennarna",
        profile=config.profile(),
        params=DEFAULT_PARAMS,
        temperature=37.0,
        length=LENGTH,
        library_seed=seed,
        **sizes,
        n_train=left if n_train is None else n_train,
        standardise_targets=True,
    )


def planted_data_settings(n: int, seed: int = 0) -> dict:
    """The ``data`` section of a run on the planted-answer simulation: every argument of
    :func:`~tme_lib.chapters.aptamers.simulator.simulate` and the split sizes."""
    sim = model_settings("simulate", simulate, exclude=("n", "seed"))
    sim.pop("name")
    return dict(
        source="simulator",
        profile=config.profile(),
        n=n,
        seed=seed,
        **sim,
        n_val=n // 10,
        n_test=n // 10,
        standardise_targets=True,
    )


def _spec(name: str, model: str, settings: dict, data: dict, seed: int) -> Spec:
    """A run of the chapter. A name without its seed gets ``-s<seed>`` from seed 1 on (seed 0
    keeps the bare name its records were made with)."""
    s = deep_merge(dict(training=TRAINING), settings)
    if seed and not name.endswith(f"-s{seed}"):
        name = f"{name}-s{seed}"
    return Spec(
        chapter=CHAPTER,
        name=name,
        seed=seed,
        data=data,
        inputs={},
        model=model_settings(model, MODELS[model], exclude=FITTED, **s["model"]),
        training=Training(**s["training"]),
    )


def transformer_spec(seed: int = 0, n_train: int | None = None) -> Spec:
    """Our :class:`AptamerTransformer` on the ViennaRNA ΔG library, named ``transformer-s<seed>``;
    with ``n_train``, the same run on a smaller training set (``transformer_n<n_train>-s<seed>``),
    for the learning curve."""
    settings = OURS[config.profile()]
    name = "transformer" if n_train is None else f"transformer_n{n_train}"
    name += f"-s{seed}"
    n_train = settings["data"]["n_train"] if n_train is None else n_train
    return _spec(name, "aptamer_transformer", settings, energy_data(n_train), seed)


def ablation_specs(seed: int = 0) -> list[Spec]:
    """Our transformer with and without :class:`~tme_lib.chapters.aptamers.models.PairBias`, on
    the same strands, epochs and seed: ``ablation_pairs`` and ``ablation_no_pairs``."""
    settings = deep_merge(OURS[config.profile()], ABLATION[config.profile()])
    data = energy_data(settings["data"]["n_train"])
    without = deep_merge(settings, dict(model=dict(pair_channels=0)))
    return [
        _spec("ablation_pairs", "aptamer_transformer", settings, data, seed),
        _spec("ablation_no_pairs", "aptamer_transformer", without, data, seed),
    ]


def source_spec(seed: int = 0) -> Spec:
    """The source project's :class:`SourceTransformer` on the same split."""
    settings = SOURCE[config.profile()]
    return _spec(
        "source_transformer",
        "source_transformer",
        settings,
        energy_data(settings["data"]["n_train"]),
        seed,
    )


def planted_spec(seed: int = 0) -> Spec:
    """Our transformer on the planted-answer simulation."""
    settings = PLANTED[config.profile()]
    return _spec(
        "transformer_planted",
        "aptamer_transformer",
        settings,
        planted_data_settings(settings["data"]["n"], seed),
        seed,
    )


def curve_specs(seed: int = 0) -> list[Spec]:
    """The learning-curve runs: our transformer on the smaller training sets."""
    return [transformer_spec(seed, n) for n in CURVE_SIZES[config.profile()]]


# Seeds, by the course's seed design: our main transformer run (about 30 minutes each on one
# core) is a costly arm, three seeds; every other run costs under 15 minutes (the ablation pair,
# the source model, the planted run, the learning-curve points), five seeds each.
SEEDS = COSTLY_SEEDS
CHEAP_SEEDS = CHEAP


def transformer_specs() -> list[Spec]:
    """Our main run, one spec per seed of :data:`SEEDS`."""
    return [transformer_spec(seed) for seed in SEEDS[config.profile()]]


def planted_specs() -> list[Spec]:
    """The planted run, one spec per seed of :data:`CHEAP_SEEDS`."""
    return [planted_spec(seed) for seed in CHEAP_SEEDS[config.profile()]]


def baseline_spec(name: str, n_train: int | None = None) -> Spec:
    """Baseline ``name`` of :data:`~.baselines.BASELINES` fitted on the first ``n_train`` training
    strands (default: the main training set), named ``<name>_n<n_train>``: one deterministic fit
    (its ``training`` section is unused: scikit-learn fits it)."""
    from .baselines import fit_baseline

    n_train = transformer_spec().data["n_train"] if n_train is None else n_train
    data = energy_data(n_train)
    settings = model_settings(
        name,
        fit_baseline,
        exclude=("name", "train", "test"),
        **BASELINE_SETTINGS[config.profile()],
    )
    return Spec(
        chapter=CHAPTER,
        name=f"{name}_n{data['n_train']}",
        seed=0,
        data=data,
        inputs={},
        model=settings,
        training=Training(),
    )


def baseline_specs() -> list[Spec]:
    """Every baseline on each size of :func:`baseline_sizes`."""
    from .baselines import BASELINES

    return [baseline_spec(name, n) for n in baseline_sizes() for name in BASELINES]


def numbers_only_specs() -> list[Spec]:
    """The runs whose weights the repository does not keep: seeds 1 to 4 of the source model,
    of the ablation pair and of the learning-curve points, which the chapter uses for their
    numbers only (its comparisons); listed in ``results/runs/aptamers/weights_not_kept.txt``
    (:data:`~tme_lib.training.records.WEIGHTS_NOT_KEPT`). The main run's and the planted run's
    seeds keep theirs: the chapter reads their attention."""
    seeds = CHEAP_SEEDS[config.profile()][1:]
    return [
        *[source_spec(seed) for seed in seeds],
        *[s for seed in seeds for s in ablation_specs(seed)],
        *[s for seed in seeds for s in curve_specs(seed)],
    ]


def plan() -> list[Spec]:
    """Every run of the chapter, cheapest first (seed 0 of each before the others): the
    baselines' fits, then the training runs."""
    seeds = CHEAP_SEEDS[config.profile()]
    return [
        *baseline_specs(),
        *planted_specs(),
        *[s for seed in seeds for s in curve_specs(seed)],
        *[s for seed in seeds for s in ablation_specs(seed)],
        *[source_spec(seed) for seed in seeds],
        *transformer_specs(),
    ]


# The chapter's comparisons, each a difference of mean test MSE (lower is better) over the
# seeds the two arms share: the base-pair bias against none (paired: same strands, seed and
# batches), our transformer against the source project's model (Welch) and against the boosted
# trees (one deterministic fit), and each learning-curve point against the trees at the same
# size. All were written down after the seed-0 runs had been seen: they are exploratory, and the
# chapter says so (no family-wise correction makes a post-hoc comparison confirmatory).
EXPLORATORY = [
    ("ablation_pairs", "ablation_no_pairs"),
    ("transformer", "source_transformer"),
    ("transformer", "boosted_trees"),
    *[(f"transformer_n{n}", "boosted_trees") for n in CURVE_SIZES["full"]],
]
COMPARISONS: list = []  # none declared before its runs


def comparison_table(records: list[RunRecord], baselines: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of :data:`EXPLORATORY` on test MSE (the difference ``a − b``: below 0,
    ``a`` is better), over the recorded seeds; a baseline of ``baselines`` is one fit at the
    training size of the arm it is compared with."""
    from ...training import metrics

    def arm(name):
        runs = [r for r in records if r.name.rsplit("-s", 1)[0] == name]
        return {r.seed: r.final["test_mse"] for r in runs}, (
            runs[0].spec["data"]["n_train"] if runs else None
        )

    rows = []
    for a, b in EXPLORATORY:
        x, n = arm(a)
        if b in set(baselines["model"]):
            fit = baselines[(baselines["model"] == b) & (baselines["n_train"] == n)]
            y = dict.fromkeys(x, float(fit["test_mse"].iloc[0])) if len(fit) else {}
            paired = False
        else:
            y, _ = arm(b)
            paired = a.startswith("ablation")
        rows.append(metrics.comparison_row(f"{a} − {b}", x, y, paired=paired))
    return metrics.comparison_table([], rows)


# --- From a spec to data, model and record ---------------------------------------------


def splits_of(data: dict) -> Splits:
    """The splits a ``data`` section describes, labelled or simulated once per process."""
    if data["profile"] != config.profile():
        raise ValueError(
            f"these data settings are for the {data['profile']} profile; "
            f"set TME_PROFILE={data['profile']}."
        )
    return _splits(json.dumps(data, sort_keys=True))


@lru_cache(maxsize=4)
def _splits(key: str) -> Splits:
    data = json.loads(key)
    if data["source"] == "simulator":
        return _planted(key)[1]
    if data["params"] != DEFAULT_PARAMS or data["temperature"] != 37.0:
        raise ValueError(
            f"only {DEFAULT_PARAMS} at 37 °C is implemented, not "
            f"{data['params']} at {data['temperature']} °C."
        )
    ids, y = labelled_library(data["n"], seed=data["library_seed"], length=data["length"])
    return split(ids, y, data["n_val"], data["n_test"], data["n_train"])


@lru_cache(maxsize=2)
def _planted(key: str):
    data = json.loads(key)
    keys = {"n", "seed", *model_settings("simulate", simulate, exclude=("n", "seed"))} - {
        "name"
    }
    sim = simulate(
        **{
            k: v if not isinstance(v, list) else tuple(v)
            for k, v in data.items()
            if k in keys
        }
    )
    return sim, split(sim.ids, sim.target, n_val=data["n_val"], n_test=data["n_test"])


def planted_data(s: Spec | None = None):
    """The simulation of a planted run and its splits: test = first tenth, validation = next
    tenth, train = the rest."""
    s = s or planted_spec()
    return _planted(json.dumps(s.data, sort_keys=True))


def target_scaling(splits: Splits) -> dict:
    """Mean and standard deviation of the training targets, rounded."""
    y = splits.train[1].astype(np.float64)
    return dict(
        target_mean=round(float(y.mean()), 4), target_scale=round(float(y.std()), 4)
    )


def build_model(s: Spec, splits: Splits):
    """The model of ``s.model``; the regressor's target scaling comes from the training split."""
    cls = MODELS[s.model_name]
    fitted = target_scaling(splits) if cls is AptamerTransformer else {}
    return cls(**s.model_kwargs, **fitted)


def run(s: Spec, progress: bool = True, retrain: bool = False, device=None) -> RunRecord:
    """Load the record of ``s`` if it exists, else train it (a baseline: fit it)."""
    if s.model_name not in MODELS:
        return load_or_fit(s, lambda: _fit_baseline(s), retrain=retrain)
    splits = splits_of(s.data)
    t = s.training
    return load_or_train(
        s,
        lambda: build_model(s, splits),
        lambda: splits.loaders(t.batch_size, s.seed, t.eval_batch_size),
        device=device,
        progress=progress,
        retrain=retrain,
    )


def _fit_baseline(s: Spec) -> dict:
    """Fit the baseline of ``s`` with the thread count of every run (``TME_THREADS``)."""
    import torch
    from threadpoolctl import threadpool_limits

    from .baselines import fit_baseline

    splits = splits_of(s.data)
    settings = {k: v for k, v in s.model.items() if k != "name"}
    with threadpool_limits(limits=torch.get_num_threads()):
        out = fit_baseline(s.model_name, splits.train, splits.test, **settings)
    final = {k: out[k] for k in ("test_mse", "test_r2", "pearson", "spearman")}
    return dict(history=[], final=final, seconds=out["seconds"], n_params=out["params"])


def baseline_table() -> pd.DataFrame:
    """The recorded baselines, one row each: model, params, n_train, seconds, test scores."""
    rows = [
        {
            "model": r.model_name,
            "params": r.n_params,
            "n_train": r.spec["data"]["n_train"],
            "seconds": r.seconds,
            **r.final,
            "device": r.device,
        }
        for r in existing_records(baseline_specs())
    ]
    return pd.DataFrame(rows, columns=BASELINE_COLUMNS)


BASELINE_COLUMNS = [
    "model",
    "params",
    "n_train",
    "seconds",
    "test_mse",
    "test_r2",
    "pearson",
    "spearman",
    "device",
]


def curve_records() -> list[RunRecord]:
    """Records of the learning-curve runs that exist (none are trained here)."""
    return existing_records(curve_specs())


def baseline_sizes() -> list[int]:
    """Training-set sizes the baselines are fitted on: the curve sizes and the main one."""
    main = transformer_spec().data["n_train"]
    return sorted({*BASELINE_SIZES[config.profile()], main})


# --- Steps besides the training runs, and the table ------------------------------------


def steps() -> dict:
    """Work the run tool does besides the runs: label the library."""
    return {"label": lambda folder: splits_of(energy_data(None))}


TABLE_COLUMNS = [
    "model",
    "target",
    "params",
    "n_train",
    "epochs",
    "seconds",
    "device",
    "test_mse",
    "test_r2",
    "pearson",
    "spearman",
]


def write_tables(records: list[RunRecord]) -> dict[str, pd.DataFrame]:
    """``aptamers.csv``: one row per training run and per baseline fit."""
    rows = []
    for r in records:
        data = r.spec["data"]
        target = "planted" if data["source"] == "simulator" else "viennarna_dG"
        n_train = data.get("n_train") or data["n"] - data["n_val"] - data["n_test"]
        rows.append(
            {
                **r.final,
                "model": r.name,
                "target": target,
                "params": r.n_params,
                "n_train": n_train,
                "epochs": len(r.history) or None,  # None: a baseline's fit
                "seconds": r.seconds,
                "device": r.device,
            }
        )
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS).sort_values(
        ["target", "model", "n_train"]
    )
    return {"aptamers.csv": frame.round(4)}
