"""Run records: load-or-train, stale configs, where records go in each profile."""

import json

import pytest
import torch

from tme_lib import config, records
from tme_lib.records import load_or_train, load_records, results_table
from tme_lib.train import TrainConfig

from test_train import BagOfTokens, make_loaders


def cfg(**kw):
    return TrainConfig(**{**dict(chapter="rec", name="bag", epochs=2, lr=0.05, entropy_sample=5), **kw})


def test_second_call_loads_the_record_and_weights(monkeypatch):
    first = load_or_train(cfg(), BagOfTokens, make_loaders(), device="cpu", progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("load_or_train retrained a run whose record exists")

    monkeypatch.setattr(records, "train", no_training)
    again = load_or_train(cfg(), BagOfTokens, make_loaders, device="cpu", progress=False)
    assert again.final == first.final
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_record_holds_what_regenerates_a_run():
    rec = load_or_train(cfg(name="meta"), BagOfTokens, make_loaders(), device="cpu", progress=False)
    saved = json.loads(records.record_path(cfg(name="meta")).read_text())
    for key in ("config", "config_hash", "code_version", "device", "seconds", "history", "final", "torch_version"):
        assert key in saved
    assert saved["config"]["seed"] == 0 and saved["config_hash"] == cfg(name="meta").hash()
    assert rec.n_params == 8 * 4 + 4 + 1


def test_changed_config_trains_anew_and_keeps_the_old_record(capsys):
    load_or_train(cfg(name="stale"), BagOfTokens, make_loaders(), device="cpu", progress=False)
    changed = cfg(name="stale", lr=0.01)
    assert changed.hash() != cfg(name="stale").hash()
    load_or_train(changed, BagOfTokens, make_loaders(), device="cpu", progress=False)
    assert "changed" in capsys.readouterr().out
    assert len(list(config.results_dir("rec").glob("stale-*.json"))) == 2


def test_smoke_records_never_land_in_results(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("TME_PROFILE", "smoke")
    assert tmp_path / "results" not in config.results_dir("rec").parents
    monkeypatch.setenv("TME_PROFILE", "full")
    assert config.results_dir("rec") == tmp_path / "results" / "runs" / "rec"


def test_profile_is_part_of_the_hash(monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "smoke")
    smoke = cfg().hash()
    monkeypatch.setenv("TME_PROFILE", "full")
    assert cfg().hash() != smoke


def test_results_table_has_one_row_per_run():
    for seed in (0, 1):
        load_or_train(cfg(name=f"tab-s{seed}", model="bag", seed=seed), BagOfTokens, make_loaders(),
                      device="cpu", progress=False)
    table = results_table([r for r in load_records("rec") if r.name.startswith("tab")])
    assert list(table["seed"]) == [0, 1] and set(table["model"]) == {"bag"}
    assert table["test_acc"].between(0, 1).all() and (table["epochs"] == 2).all()


def test_unknown_profile_is_rejected(monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke"):
        config.profile()


def test_device_kind_keeps_the_kind_of_a_device_description():
    assert records.device_kind("cpu (x86_64, 1 threads)") == "cpu"
    assert records.device_kind("cuda (NVIDIA H100 80GB HBM3)") == "cuda"
    assert records.device_kind("mps") == "mps"
