"""Where does the attention go? Scores for the planted-answer simulation.

Taught in ``notebooks/03_aptamers`` (section "Does attention find the planted features?").
``weights`` are self-attention weights ``[N, layers, heads, L, L]`` (query, key), ``masks`` the
``bool[N, L]`` positions of a feature from :class:`~tme_lib.chapters.aptamers.simulator.Simulation`.

* **mass on a feature**: the share of attention that lands on the feature's positions,
  ``Σ_{j ∈ F} a_ij`` averaged over the queries ``i`` of strands that contain the feature; a head
  that ignores where the feature is gives it the *uniform share* ``|F| / L`` on average;
* **stem to stem**: the same share, but only for queries inside the left stem half and keys
  inside the right half — high when attention links the two halves that pair.

Both are returned per (layer, head), with the uniform share they are compared with.
:func:`planted_ratios` gives both, as multiples of the uniform share, with their controls, and
:func:`head_summary` the few numbers the chapter states for each seed (a claim about heads is
stated over the seeds, never from one run).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensors(weights, keys, queries=None):
    w = torch.as_tensor(weights, dtype=torch.float64)
    k = torch.as_tensor(np.asarray(keys), dtype=torch.float64)
    q = (
        torch.ones_like(k)
        if queries is None
        else torch.as_tensor(np.asarray(queries), dtype=torch.float64)
    )
    rows = (k.sum(1) > 0) & (q.sum(1) > 0)  # strands that have the feature
    return w[rows], k[rows], q[rows]


def attention_mass(weights, keys, queries=None) -> tuple[np.ndarray, float]:
    """``(share [layers, heads], uniform_share)``: mean over strands having the feature and over
    the selected queries (``queries`` mask, default all) of ``Σ_{j: keys[j]} a_ij``."""
    w, k, q = _as_tensors(weights, keys, queries)
    if len(w) == 0:
        raise ValueError("no strand contains the feature: nothing to measure.")
    on_keys = (w * k[:, None, None, None, :]).sum(-1)  # [N, layers, heads, L]
    per_strand = (on_keys * q[:, None, None, :]).sum(-1) / q.sum(1)[:, None, None]
    uniform = (k.sum(1) / k.shape[1]).mean().item()
    return per_strand.mean(0).numpy(), uniform


def attention_mass_control(weights, keys, queries=None, seed: int = 0) -> np.ndarray:
    """The negative control of :func:`attention_mass`: the same share ``[layers, heads]`` on
    strands that do *not* contain the feature, at the positions it occupies in strands that do
    (each strand without it borrows the key and query positions of a random strand with it).
    A head that finds the feature beats its control; a head that only prefers some positions
    gives both the same share."""
    k, q = (
        np.asarray(keys, dtype=bool),
        None if queries is None else np.asarray(queries, bool),
    )
    has = k.any(1) if q is None else k.any(1) & q.any(1)
    lacks = ~k.any(1)
    if not has.any() or not lacks.any():
        raise ValueError(
            "the control needs strands with the feature and strands without it."
        )
    donors = np.random.default_rng(seed).choice(
        np.flatnonzero(has), size=int(lacks.sum())
    )
    w = torch.as_tensor(weights)[torch.as_tensor(lacks)]
    share, _ = attention_mass(w, k[donors], None if q is None else q[donors])
    return share


def best_head(share: np.ndarray) -> tuple[int, int, float]:
    """``(layer, head, share)`` of the head that puts the most attention on the feature."""
    layer, head = np.unravel_index(int(np.argmax(share)), share.shape)
    return int(layer), int(head), float(share[layer, head])


def partner_attention(weights, pair_index) -> tuple[np.ndarray, float]:
    """``(share [layers, heads], uniform_share)``: the weight a query letter gives to the letter
    it pairs with in the strand's most stable structure, averaged over paired letters.

    ``pair_index`` is ``int[N, L]`` from :func:`tme_lib.chapters.aptamers.energy.partners` (−1 when
    unpaired); the uniform share is ``1 / L``."""
    w = torch.as_tensor(weights, dtype=torch.float64)  # [N, layers, heads, L, L]
    pairs = torch.as_tensor(np.asarray(pair_index), dtype=torch.long)
    paired = pairs >= 0
    if not paired.any():
        raise ValueError("no strand has a base pair: nothing to measure.")
    index = pairs.clamp_min(0)[:, None, None, :, None].expand(*w.shape[:-1], 1)
    to_partner = w.gather(-1, index).squeeze(-1)  # [N, layers, heads, L]
    share = (to_partner * paired[:, None, None, :]).sum((0, 3)) / paired.sum()
    return share.numpy(), 1.0 / w.shape[-1]


# The planted features the chapter measures: (key mask, query mask) names of Simulation.masks.
PLANTED_FEATURES = {
    "motif": ("motif0", None),
    "stem left → right": ("stem_right", "stem_left"),
}


def planted_ratios(weights, masks: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each of :data:`PLANTED_FEATURES`, ``(found, control)`` ``[layers, heads]``: the share
    of attention on the feature for strands that carry it (:func:`attention_mass`) and its
    control (:func:`attention_mass_control`), each divided by the uniform share."""
    out = {}
    for label, (keys, queries) in PLANTED_FEATURES.items():
        k, q = masks[keys], None if queries is None else masks[queries]
        share, uniform = attention_mass(weights, k, q)
        out[label] = share / uniform, attention_mass_control(weights, k, q) / uniform
    return out


def head_summary(found: np.ndarray, control: np.ndarray, threshold: float) -> dict:
    """What the chapter states of one run's heads, from ``found`` and ``control`` ratios
    ``[layers, heads]``: the best head (1-based layer and head), its ratio and its control's,
    and how many heads reach ``threshold`` × uniform with the feature and in the control."""
    layer, head, best = best_head(found)
    return {
        "best head": f"layer {layer + 1}, head {head + 1}",
        "best ×": best,
        "its control ×": float(control[layer, head]),
        f"heads ≥ {threshold:g}×": int((found >= threshold).sum()),
        f"control heads ≥ {threshold:g}×": int((control >= threshold).sum()),
        "heads": int(found.size),
    }
