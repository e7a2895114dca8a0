"""Aptamer chapter: the runs declared once for the notebook and the run tool."""

import numpy as np
import pytest

from tme_lib.chapters.aptamers import data as aptamer_data
from tme_lib.chapters.aptamers import runs


@pytest.fixture
def tiny_sizes(monkeypatch):
    monkeypatch.setitem(aptamer_data.SIZES, "smoke", dict(n=300, n_val=50, n_test=50))
    monkeypatch.setitem(
        runs.PLANTED,
        "smoke",
        runs.deep_merge(runs.PLANTED["smoke"], dict(data=dict(n=200))),
    )


def test_energy_runs_share_one_split_and_record_their_training_size(tiny_sizes):
    ours, small, source = (
        runs.transformer_spec(),
        runs.transformer_spec(n_train=100),
        runs.source_spec(),
    )
    assert (ours.name, small.name, source.name) == (
        "transformer-s0",
        "transformer_n100-s0",
        "source_transformer",
    )
    assert ours.data["n_train"] == 200 and small.data["n_train"] == 100
    assert len({ours.key(), small.key(), source.key()}) == 3
    assert ours.training.task == "regression"
    splits, source_splits = runs.splits_of(ours.data), runs.splits_of(source.data)
    # scored on the same strands
    assert np.array_equal(splits.test[1], source_splits.test[1])
    model = runs.build_model(ours, splits)
    assert model.target_mean.item() == pytest.approx(splits.train[1].mean(), abs=1e-4)
    assert "target_mean" not in ours.model  # fitted on the data, saved with the weights


def test_planted_run_trains_on_the_simulation_its_spec_describes(tiny_sizes):
    spec = runs.planted_spec()
    sim, splits = runs.planted_data(spec)
    assert spec.data["source"] == "simulator" and spec.data["noise"] == 0.5
    assert np.array_equal(splits.test[1], sim.target[:20])
    assert len(splits.train[1]) == 160
    louder = spec.replace({"data.noise": 1.0})
    assert louder.key() != spec.key()
    assert not np.array_equal(runs.planted_data(louder)[0].target, sim.target)


def test_data_of_another_profile_is_refused(tiny_sizes, monkeypatch):
    spec = runs.transformer_spec()
    monkeypatch.setenv("TME_PROFILE", "full")
    with pytest.raises(ValueError, match="TME_PROFILE=smoke"):
        runs.splits_of(spec.data)
