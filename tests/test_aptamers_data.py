"""Aptamer chapter: encoding, validation, CSV loading, ViennaRNA labels, simulator."""

import numpy as np
import pytest

from tme_lib.chapters.aptamers import data, energy
from tme_lib.chapters.aptamers.sequences import decode, encode, load_csv, random_library
from tme_lib.chapters.aptamers.simulator import reverse_complement, simulate


def test_encode_maps_letters_to_ids_in_either_case_and_decode_inverts_it():
    ids = encode(["ACGTacgt"], length=8)
    assert ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    assert decode(ids) == ["ACGTACGT"]


@pytest.mark.parametrize(
    "bad, needle",
    [("ACGU", "'U' at position 3"), ("ACG", "3 letters"), ("AC-T", "'-' at position 2")],
)
def test_validation_names_the_offending_row(bad, needle):
    with pytest.raises(ValueError, match="row 1") as err:
        encode(["ACGT", bad], length=4)
    assert needle in str(err.value)


def test_label_rejects_bad_letters_before_computing_anything():
    with pytest.raises(ValueError, match="row 0"):
        energy.label(["ACGN" * 2], processes=1, progress=False)


def test_csv_loader_reads_targets_and_names_the_bad_line(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("sequence,target\nACGT,-1.5\ntttt,0.25\n")
    ids, y = load_csv(good, length=4)
    assert ids.tolist() == [[0, 1, 2, 3], [3, 3, 3, 3]] and y.tolist() == [-1.5, 0.25]
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,target\nACGT,-1.5\nACGX,0.3\n")
    with pytest.raises(ValueError, match="line 3"):
        load_csv(bad, length=4)
    short = tmp_path / "short.csv"
    short.write_text("sequence,target\nACGT,-1.5\nACGTA,0.3\n")
    with pytest.raises(ValueError, match="line 3.*5 letters"):
        load_csv(short, length=4)
    nan = tmp_path / "nan.csv"
    nan.write_text("sequence,target\nACGT,oops\n")
    with pytest.raises(ValueError, match="line 2.*not a finite number"):
        load_csv(nan, length=4)


def test_random_library_is_seeded_uniform_and_prefix_stable():
    a = random_library(25_000, seed=3, length=30)
    assert a.shape == (25_000, 30) and a.dtype == np.uint8
    assert np.array_equal(random_library(12_345, seed=3, length=30), a[:12_345])
    assert not np.array_equal(random_library(100, seed=4), a[:100])
    freq = np.bincount(a.ravel(), minlength=4) / a.size
    assert np.allclose(freq, 0.25, atol=0.01)


def test_labels_use_dna_parameters_even_in_worker_processes():
    seqs = decode(random_library(6, seed=0))
    # a stale RNA state in the parent must not leak
    energy.load_parameters("rna_turner2004")
    rna = energy.label(seqs, params="rna_turner2004", processes=1, progress=False)
    dna = energy.label(seqs, processes=1, progress=False)
    pooled = energy.label(seqs, processes=2, chunk=3, progress=False)
    energy.load_parameters("dna_mathews2004")
    by_hand = [energy.ensemble_free_energy(s) for s in seqs]
    assert np.allclose(dna, by_hand, atol=1e-4) and np.allclose(pooled, dna, atol=1e-4)
    assert np.abs(dna - rna).max() > 0.3  # same strands, other parameters, other energies
    assert (dna <= 1e-6).all()  # the unfolded strand (ΔG = 0) is always in the ensemble


def test_labelled_library_is_cached_and_reused_for_smaller_n(tmp_path, monkeypatch):
    monkeypatch.setenv("TME_CACHE_DIR", str(tmp_path))
    ids, y = data.labelled_library(40, seed=7, length=12, processes=1, progress=False)
    monkeypatch.setattr(
        data, "label", lambda *a, **k: pytest.fail("relabelled a cached library")
    )
    ids2, y2 = data.labelled_library(25, seed=7, length=12)
    assert np.array_equal(ids2, ids[:25]) and np.array_equal(y2, y[:25])


def test_reverse_complement():
    assert reverse_complement("AACG") == "CGTT"


def test_simulator_signal_matches_the_features_it_reports():
    sim = simulate(
        2_000,
        seed=0,
        motifs=("TTAGGC",),
        motif_effects=(-1.5,),
        stem="CGGTCA",
        stem_effect=-2.5,
        noise=0.0,
    )
    seqs = decode(sim.ids)
    has_motif = np.array(["TTAGGC" in s for s in seqs])
    motif_rows = sim.masks["motif0"].any(1)
    assert np.array_equal(motif_rows, has_motif)
    stem_rows = sim.masks["stem_left"].any(1)
    assert np.array_equal(stem_rows, sim.masks["stem_right"].any(1))
    for r in np.flatnonzero(stem_rows)[:50]:
        left = np.flatnonzero(sim.masks["stem_left"][r])
        right = np.flatnonzero(sim.masks["stem_right"][r])
        assert seqs[r][left[0] : left[0] + 6] == "CGGTCA"
        assert seqs[r][right[0] : right[0] + 6] == "TGACCG" and right[0] >= left[0] + 9
    expected = -1.5 * np.array([s.count("TTAGGC") for s in seqs]) - 2.5 * stem_rows
    assert np.allclose(sim.signal, expected) and np.allclose(sim.target, sim.signal)
    assert sim.noise_ceiling == pytest.approx(1.0)
    assert 0.2 < stem_rows.mean() < 0.3 and 0.4 < motif_rows.mean() < 0.6


def test_simulator_noise_ceiling_is_the_share_of_signal_variance():
    sim = simulate(4_000, seed=1, noise=1.0)
    residual_r2 = 1 - np.var(sim.target - sim.signal) / np.var(sim.target)
    assert sim.noise_ceiling == pytest.approx(residual_r2, abs=0.05)
    assert sim.noise_ceiling < 0.8
