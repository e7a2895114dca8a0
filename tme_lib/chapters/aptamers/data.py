"""The chapter's data sets and their train / validation / test loaders.

Taught in ``notebooks/03_aptamers`` (section "The data"). A labelled library of ``n`` strands is
split by position: the first ``n_test`` rows are the test set, the next ``n_val`` the validation
set, the rest the training pool. Libraries are prefix-stable (see
:func:`~tme_lib.chapters.aptamers.sequences.random_library`), so runs with different
training-set sizes
share one test set and every smaller training set is inside every larger one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from tme_lib import config
from tme_lib.chapters.aptamers.energy import DEFAULT_PARAMS, label
from tme_lib.chapters.aptamers.sequences import LENGTH, decode, random_library
from tme_lib.data.batching import TensorLoader

# Library sizes per profile: the smoke profile labels a few thousand strands in seconds.
SIZES = {
    "smoke": dict(n=4_000, n_val=500, n_test=1_000),
    "full": dict(n=1_000_000, n_val=10_000, n_test=50_000),
}


def _read_library(path):
    with np.load(path) as cached:
        return cached["ids"], cached["energy"]


def labelled_library(
    n: int,
    seed: int = 0,
    length: int = LENGTH,
    params: str = DEFAULT_PARAMS,
    processes: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random strands and their ΔG_ens: ``(ids uint8[n, length], float32[n])``.

    Cached in ``config.cache_dir()/aptamers`` under (params, length, seed, n); a cached library of
    the same (params, length, seed) and more strands is reused, since smaller libraries are its
    prefixes (see :func:`random_library`)."""
    folder = config.cache_dir() / "aptamers"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"dG-{params}-L{length}-seed{seed}"
    for path in sorted(folder.glob(f"{stem}-n*.npz")):
        if int(path.stem.rsplit("-n", 1)[1]) >= n:
            cached = config.read_cached(path, _read_library)
            if cached is not None:
                return cached[0][:n], cached[1][:n]
    ids = random_library(n, seed, length)
    energy = label(decode(ids), params, processes, progress=progress)
    path = folder / f"{stem}-n{n}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=ids, energy=energy)
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written cache
    return ids, energy


@dataclass
class Splits:
    """Token ids ``uint8[·, L]`` and targets ``float32[·]`` of each split."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]

    def loaders(
        self, batch_size: int, seed: int = 0, eval_batch_size: int = 2_048
    ) -> SimpleNamespace:
        """``.train`` (shuffled from ``seed``), ``.val`` and ``.test`` :class:`TensorLoader` s."""
        make = lambda split, bs, shuffle: TensorLoader(*split, bs, shuffle, seed)  # noqa: E731
        return SimpleNamespace(
            train=make(self.train, batch_size, True),
            val=make(self.val, eval_batch_size, False),
            test=make(self.test, eval_batch_size, False),
        )


def split(
    ids: np.ndarray, y: np.ndarray, n_val: int, n_test: int, n_train: int | None = None
) -> Splits:
    """Test = first ``n_test`` rows, validation = next ``n_val``, train = up to ``n_train`` of the
    rest (all of it when ``None``)."""
    if n_val + n_test >= len(ids):
        raise ValueError(
            f"{len(ids)} strands leave nothing to train on after {n_test} test "
            f"and {n_val} validation strands."
        )
    start = n_test + n_val
    stop = len(ids) if n_train is None else start + n_train
    if stop > len(ids):
        raise ValueError(
            f"n_train={n_train} asks for more strands than the {len(ids) - start} "
            "left for training; label a larger library."
        )
    return Splits(
        train=(ids[start:stop], y[start:stop]),
        val=(ids[n_test:start], y[n_test:start]),
        test=(ids[:n_test], y[:n_test]),
    )
