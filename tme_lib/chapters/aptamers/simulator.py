"""A planted-answer simulator: strands whose target is a known function of planted features.

Taught in ``notebooks/03_aptamers`` (section "A problem whose answer we know"). On real free
energies we cannot say where a model should look; here we can. Each strand is uniformly random,
then features are written into it:

* each **motif** ``m`` is planted (with probability ``plant_prob``) at a random place and adds
  ``effect_m`` to the target every time it occurs in the final strand;
* a **stem** is a segment ``s`` and its reverse complement ``s'``; each half is planted on its
  own (probability ``plant_prob``), and the target gains ``stem_effect`` only when ``s`` is
  followed, at least ``min_loop`` letters later, by ``s'`` — a hairpin, an interaction that no
  sum of per-letter or per-motif terms can express;
* the target is ``signal + ε``, ``ε ~ N(0, noise²)``.

The signal is computed from the final strand, chance occurrences included, so it is an exact
function of the sequence: the best possible predictor is the signal itself and its expected
R² (the *noise ceiling*) is ``var(signal) / (var(signal) + noise²)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tme_lib.chapters.aptamers.sequences import LENGTH, decode, encode, random_library

_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reverse_complement(seq: str) -> str:
    """The strand that pairs with ``seq`` (read 5'→3'): complement each letter, reverse."""
    return seq.upper().translate(_COMPLEMENT)[::-1]


@dataclass
class Simulation:
    """Strands, targets and where every feature sits.

    ``ids`` ``uint8[n, L]``; ``target``, ``signal`` ``float32[n]``; ``masks`` maps a feature
    name (``motif0``, ``motif1``, …, ``stem_left``, ``stem_right``) to a ``bool[n, L]`` that is
    True on the letters of every occurrence that counted in the signal; ``noise_ceiling`` is
    the best achievable R²."""

    ids: np.ndarray
    target: np.ndarray
    signal: np.ndarray
    masks: dict
    noise_ceiling: float


def _occurrences(seq: str, motif: str) -> list[int]:
    """Start of every (possibly overlapping) occurrence of ``motif`` in ``seq``."""
    starts, i = [], seq.find(motif)
    while i >= 0:
        starts.append(i)
        i = seq.find(motif, i + 1)
    return starts


def _plant(
    row: np.ndarray,
    segment: str,
    taken: np.ndarray,
    rng,
    lo: int = 0,
    hi: int | None = None,
) -> None:
    """Write ``segment`` into ``row`` at a random free start in ``[lo, hi]`` (if there is one)."""
    k = len(segment)
    hi = len(row) - k if hi is None else hi
    free = [p for p in range(lo, hi + 1) if not taken[p : p + k].any()]
    if free:
        p = free[rng.integers(len(free))]
        row[p : p + k] = encode([segment], k)[0]
        taken[p : p + k] = True


def simulate(
    n: int,
    seed: int = 0,
    length: int = LENGTH,
    motifs: tuple[str, ...] = ("TTAGGC",),
    motif_effects: tuple[float, ...] = (-1.5,),
    stem: str = "CGGTCA",
    stem_effect: float = -2.5,
    min_loop: int = 3,
    plant_prob: float = 0.5,
    noise: float = 0.5,
) -> Simulation:
    """Draw ``n`` strands with planted motifs and stem halves (see the module docstring)."""
    if len(motifs) != len(motif_effects):
        raise ValueError(
            f"{len(motifs)} motifs but {len(motif_effects)} effects; give one each."
        )
    for feature in (*motifs, stem):
        encode([feature], len(feature))  # A, C, G, T only
    mate = reverse_complement(stem)
    if 2 * len(stem) + min_loop + sum(map(len, motifs)) > length:
        raise ValueError(f"the features do not fit in strands of length {length}.")
    rng = np.random.default_rng([seed, 1])
    ids = random_library(n, seed, length).copy()
    masks = {f"motif{i}": np.zeros((n, length), bool) for i in range(len(motifs))}
    masks["stem_left"] = np.zeros((n, length), bool)
    masks["stem_right"] = np.zeros((n, length), bool)
    signal = np.zeros(n)
    k = len(stem)
    for r in range(n):
        taken = np.zeros(length, bool)
        if rng.random() < plant_prob:
            _plant(ids[r], stem, taken, rng, hi=length - 2 * k - min_loop)  # room for s'
        if rng.random() < plant_prob:
            left = np.flatnonzero(taken)
            _plant(
                ids[r], mate, taken, rng, lo=left[-1] + 1 + min_loop if left.size else 0
            )
        for motif in motifs:
            if rng.random() < plant_prob:
                _plant(ids[r], motif, taken, rng)
        seq = decode(ids[r : r + 1])[0]
        for i, (motif, effect) in enumerate(zip(motifs, motif_effects)):
            for p in _occurrences(seq, motif):
                signal[r] += effect
                masks[f"motif{i}"][r, p : p + len(motif)] = True
        pairs = [
            (a, b)
            for a in _occurrences(seq, stem)
            for b in _occurrences(seq, mate)
            if b >= a + k + min_loop
        ]
        if pairs:
            signal[r] += stem_effect
            for a, b in pairs:
                masks["stem_left"][r, a : a + k] = True
                masks["stem_right"][r, b : b + k] = True
    target = signal + noise * rng.standard_normal(n)
    var = signal.var()
    ceiling = float(var / (var + noise**2)) if var + noise**2 > 0 else float("nan")
    return Simulation(
        ids, target.astype(np.float32), signal.astype(np.float32), masks, ceiling
    )
