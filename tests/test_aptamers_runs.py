"""Aptamer chapter: the run definitions shared by the notebook and tools/run_aptamers.py."""

import numpy as np
import pytest

from tme_lib.aptamers import runs


@pytest.fixture
def tiny_sizes(monkeypatch):
    monkeypatch.setitem(runs.SIZES, "smoke", dict(n=300, n_val=50, n_test=50))
    monkeypatch.setitem(runs.PLANTED, "smoke", dict(runs.PLANTED["smoke"], n=200))


def test_energy_runs_share_one_split_and_record_their_training_size(tiny_sizes):
    cfg, build, loaders = runs.transformer_run()
    small, _, _ = runs.transformer_run(n_train=100)
    source, _, source_loaders = runs.source_run()
    assert (cfg.name, small.name, source.name) == ("transformer", "transformer_n100",
                                                   "source_transformer")
    assert cfg.data["n_train"] == 200 and small.data["n_train"] == 100
    assert len({cfg.hash(), small.hash(), source.hash()}) == 3
    assert cfg.task == "regression"
    ours_test = np.concatenate([b.y.numpy() for b in loaders().test])
    source_test = np.concatenate([b.y.numpy() for b in source_loaders().test])
    assert np.array_equal(ours_test, source_test)  # every model is scored on the same strands
    model = build()
    assert model.target_mean.item() == pytest.approx(cfg.model_kwargs["target_mean"])


def test_planted_run_trains_on_the_simulation_it_returns(tiny_sizes):
    cfg, build, loaders, sim = runs.planted_run()
    _, splits = runs.planted_data()
    assert cfg.data["source"] == "simulator" and cfg.data["n_train"] == 160
    assert np.array_equal(splits.test[1], sim.target[:20])
    assert len(loaders().train.x) == 160
