"""Aptamer chapter: attention scores on planted features and on base-pair partners."""

import numpy as np
import pytest
import torch

from tme_lib.chapters.aptamers.analysis import (
    attention_mass,
    best_head,
    partner_attention,
)
from tme_lib.chapters.aptamers.energy import partners


def test_partners_of_a_dot_bracket_structure():
    assert partners("((.))..(.)").tolist() == [4, 3, -1, 1, 0, -1, -1, 9, -1, 7]


def _weights(n=4, length=10, layers=2, heads=3):
    return torch.full((n, layers, heads, length, length), 1.0 / length)


def test_uniform_attention_gets_exactly_the_uniform_share():
    keys = np.zeros((4, 10), bool)
    keys[:2, 3:6] = True  # two strands carry a 3-letter feature; the others are ignored
    share, uniform = attention_mass(_weights(), keys)
    assert uniform == pytest.approx(0.3) and np.allclose(share, 0.3)


def test_attention_mass_finds_the_head_that_looks_at_the_feature():
    w = _weights()
    keys = np.zeros((4, 10), bool)
    keys[:, 2:4] = True
    w[:, 1, 2] = 0.0
    # layer 2, head 3 puts everything on the feature's first letter
    w[:, 1, 2, :, 2] = 1.0
    share, uniform = attention_mass(w, keys)
    assert best_head(share) == (1, 2, pytest.approx(1.0)) and uniform == pytest.approx(
        0.2
    )
    assert share[0, 0] == pytest.approx(0.2)


def test_attention_mass_only_counts_the_selected_queries():
    w = _weights(n=1)
    keys = np.zeros((1, 10), bool)
    keys[0, 7:9] = True
    queries = np.zeros((1, 10), bool)
    queries[0, 0:2] = True
    w[0, 0, 0, 0:2] = 0.0
    w[0, 0, 0, 0:2, 7] = 1.0  # only the selected queries look at the keys
    share, _ = attention_mass(w, keys, queries)
    assert share[0, 0] == pytest.approx(1.0)
    all_queries, _ = attention_mass(w, keys)
    assert all_queries[0, 0] < 0.5
    with pytest.raises(ValueError, match="no strand"):
        attention_mass(w, np.zeros((1, 10), bool))


def test_partner_attention_reads_the_weight_on_the_pairing_letter():
    w = _weights(n=1, length=6, layers=1, heads=2)
    pair_index = partners("((..))")[None]
    for i, j in enumerate(pair_index[0]):
        if j >= 0:
            w[0, 0, 1, i] = 0.0
            # head 2 attends from every paired letter to its partner
            w[0, 0, 1, i, j] = 1.0
    share, uniform = partner_attention(w, pair_index)
    assert uniform == pytest.approx(1 / 6)
    assert share[0, 1] == pytest.approx(1.0) and share[0, 0] == pytest.approx(1 / 6)


def test_the_control_separates_a_head_that_finds_the_feature_from_a_positional_one():
    from tme_lib.chapters.aptamers.analysis import attention_mass_control

    n, length = 40, 10
    keys = np.zeros((n, length), dtype=bool)
    keys[: n // 2, 2:4] = True  # half the strands carry the feature, at positions 2-3
    w = np.full((n, 2, 1, length, length), 1.0 / length)
    w[:, 0, 0] = 0.0
    w[:, 0, 0, :, 2] = 1.0  # layer 1: always position 2, feature or not (positional)
    # layer 2: on the feature where there is one, uniform elsewhere
    for s in range(n // 2):
        w[s, 1, 0] = 0.0
        w[s, 1, 0, :, 2:4] = 0.5
    share, uniform = attention_mass(w, keys)
    control = attention_mass_control(w, keys)
    assert share[0, 0] == pytest.approx(1.0) and control[0, 0] == pytest.approx(1.0)
    assert share[1, 0] == pytest.approx(1.0) and control[1, 0] == pytest.approx(0.2)
    assert uniform == pytest.approx(0.2)


def test_planted_ratios_and_the_head_summary_name_the_head_that_finds_the_feature():
    from tme_lib.chapters.aptamers.analysis import head_summary, planted_ratios

    n, length = 40, 10
    masks = {
        name: np.zeros((n, length), bool)
        for name in ("motif0", "stem_left", "stem_right")
    }
    masks["motif0"][: n // 2, 2:4] = True
    masks["stem_left"][::2, 0:2] = True
    masks["stem_right"][::2, 6:8] = True
    w = np.full((n, 2, 3, length, length), 1.0 / length)
    for s in range(n // 2):  # layer 2, head 3 finds the motif where there is one
        w[s, 1, 2] = 0.0
        w[s, 1, 2, :, 2:4] = 0.5
    ratios = planted_ratios(w, masks)
    found, control = ratios["motif"]
    assert found[1, 2] == pytest.approx(5.0) and control[1, 2] == pytest.approx(1.0)
    assert found[0, 0] == pytest.approx(1.0)  # uniform attention is 1 × its share
    summary = head_summary(found, control, threshold=2)
    assert summary["best head"] == "layer 2, head 3" and summary[
        "best ×"
    ] == pytest.approx(5)
    assert summary["heads ≥ 2×"] == 1 and summary["control heads ≥ 2×"] == 0
    assert summary["heads"] == 6
    stem, stem_control = ratios["stem left → right"]
    assert stem[0, 0] == pytest.approx(1.0) and stem_control[0, 0] == pytest.approx(1.0)
    assert stem[1, 2] == pytest.approx(0.5)  # the motif head looks away on half the stems
