"""The chapter's training runs, defined once for the notebook and ``tools/run_aptamers.py``.

Each ``*_run`` returns ``(TrainConfig, build_model, loaders)`` ready for
:func:`tme_lib.records.load_or_train`; ``loaders`` is a callable, so a run whose record exists
never builds them. Sizes depend on the profile: the smoke profile trains tiny models for a
couple of epochs, the full profile the runs reported in the book.
"""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np

from tme_lib import config
from tme_lib.aptamers.data import SIZES, Splits, energy_splits, split
from tme_lib.aptamers.models import AptamerTransformer, SourceTransformer
from tme_lib.aptamers.simulator import simulate
from tme_lib.records import load_records
from tme_lib.train import TrainConfig

CHAPTER = "aptamers"

# Our transformer on ViennaRNA ΔG, with the base-pair bias (``pair_channels``). Full: sized so
# that training fits in 30 minutes on one CPU thread (two passes over 500,000 strands rather than
# more passes over fewer: fresh strands are free); smoke: a few seconds.
OURS = {
    "full": dict(model=dict(d_model=64, n_layers=4, n_heads=4, conv_width=5, conv_layers=2,
                            pair_channels=16),
                 n_train=500_000, epochs=2, batch_size=256, lr=2e-3),
    "smoke": dict(model=dict(d_model=32, n_layers=2, n_heads=4, conv_width=5, conv_layers=1,
                             pair_channels=4),
                  n_train=None, epochs=4, batch_size=64, lr=3e-3),
}
# The source project's model (vocabulary 30, as published) under the CPU budget of ours: as
# many strands as it trains on in the time our main run took (measured: about 140 strands/s).
SOURCE = {
    "full": dict(model=dict(), n_train=80_000, epochs=2, batch_size=64, lr=5e-4),
    "smoke": dict(model=dict(d_model=32, dim_feedforward=64, n_heads=4), n_train=None, epochs=2,
                  batch_size=64, lr=3e-4),
}
# The planted-answer problem: one motif, one stem, noise 0.5 (see ``simulator``).
# Smaller training sets for the learning curve (our transformer, same epochs), and the sizes the
# baselines are refitted on (these plus the main training set).
CURVE_SIZES = {"full": (10_000, 50_000), "smoke": ()}
BASELINE_SIZES = {"full": (10_000, 50_000), "smoke": ()}
PLANTED = {
    "full": dict(n=40_000, model=dict(d_model=48, n_layers=2, n_heads=4, conv_width=3),
                 epochs=6, batch_size=128, lr=3e-3),
    "smoke": dict(n=3_000, model=dict(d_model=32, n_layers=2, n_heads=4, conv_width=3),
                  epochs=4, batch_size=64, lr=3e-3),
}


def _target_scaling(splits: Splits) -> dict:
    """Mean and standard deviation of the training targets, rounded so configs hash stably."""
    y = splits.train[1].astype(np.float64)
    return dict(target_mean=round(float(y.mean()), 4), target_scale=round(float(y.std()), 4))


def _energy_run(name: str, spec: dict, build, seed: int) -> tuple:
    sizes = SIZES[config.profile()]
    splits = energy_splits(spec["n_train"])  # cached after the first labelling
    model_kwargs = dict(spec["model"])
    if build is AptamerTransformer:
        model_kwargs.update(_target_scaling(splits))
    cfg = TrainConfig(
        chapter=CHAPTER, name=name, model_kwargs=model_kwargs,
        data=dict(source="viennarna", params="dna_mathews2004", library_seed=0, **sizes,
                  n_train=len(splits.train[1])),
        optimizer="adamw", lr=spec["lr"], weight_decay=0.01, batch_size=spec["batch_size"],
        epochs=spec["epochs"], seed=seed, task="regression", scheduler="onecycle", grad_clip=1.0,
    )
    return cfg, partial(build, **model_kwargs), lambda: splits.loaders(spec["batch_size"], seed)


def transformer_run(seed: int = 0, n_train: int | None = None) -> tuple:
    """Our :class:`AptamerTransformer` on the ViennaRNA ΔG library; with ``n_train``, the same
    run on a smaller training set (named ``transformer_n<n_train>``), for the learning curve."""
    spec = OURS[config.profile()]
    if n_train is None:
        return _energy_run("transformer", spec, AptamerTransformer, seed)
    return _energy_run(f"transformer_n{n_train}", dict(spec, n_train=n_train), AptamerTransformer,
                       seed)


# The base-pair bias, on and off, everything else equal (smaller runs than the main one).
ABLATION = {"full": dict(n_train=100_000, epochs=2), "smoke": dict(n_train=None, epochs=2)}


def ablation_runs(seed: int = 0) -> list[tuple]:
    """Our transformer with and without :class:`~tme_lib.aptamers.models.PairBias`, on the same
    strands, epochs and seed: ``ablation_pairs`` and ``ablation_no_pairs``."""
    spec = dict(OURS[config.profile()], **ABLATION[config.profile()])
    without = dict(spec, model={k: v for k, v in spec["model"].items() if k != "pair_channels"})
    return [_energy_run("ablation_pairs", spec, AptamerTransformer, seed),
            _energy_run("ablation_no_pairs", without, AptamerTransformer, seed)]


def curve_records() -> list:
    """Records of the learning-curve runs that exist (none are trained here)."""
    return [r for r in load_records(CHAPTER) if r.name.startswith("transformer_n")]


def baseline_sizes() -> list[int]:
    """Training-set sizes the baselines are fitted on: the curve sizes and the main one."""
    sizes = SIZES[config.profile()]
    main = OURS[config.profile()]["n_train"] or sizes["n"] - sizes["n_val"] - sizes["n_test"]
    return sorted({*BASELINE_SIZES[config.profile()], main})


def source_run(seed: int = 0) -> tuple:
    """The source project's :class:`SourceTransformer` on the same split."""
    return _energy_run("source_transformer", SOURCE[config.profile()], SourceTransformer, seed)


@lru_cache(maxsize=2)
def _planted(n: int, seed: int):
    sim = simulate(n, seed=seed)
    return sim, split(sim.ids, sim.target, n_val=n // 10, n_test=n // 10)


def planted_data(seed: int = 0):
    """The planted-answer simulation of the active profile and its splits: test = first tenth,
    validation = next tenth, train = the rest (computed once per size and seed)."""
    return _planted(PLANTED[config.profile()]["n"], seed)


def planted_run(seed: int = 0) -> tuple:
    """Our transformer on the planted-answer simulation; returns ``(cfg, build, loaders, sim)``."""
    spec = PLANTED[config.profile()]
    sim, splits = planted_data(seed)
    model_kwargs = dict(spec["model"], **_target_scaling(splits))
    cfg = TrainConfig(
        chapter=CHAPTER, name="transformer_planted", model_kwargs=model_kwargs,
        data=dict(source="simulator", n=spec["n"], seed=seed, noise=0.5,
                  n_train=len(splits.train[1])),
        optimizer="adamw", lr=spec["lr"], weight_decay=0.01, batch_size=spec["batch_size"],
        epochs=spec["epochs"], seed=seed, task="regression", scheduler="onecycle", grad_clip=1.0,
    )
    return (cfg, partial(AptamerTransformer, **model_kwargs),
            lambda: splits.loaders(spec["batch_size"], seed), sim)
