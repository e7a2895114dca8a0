"""Run records: load-or-train, where records go, and every way a record can lie."""

import json

import pytest
import torch
from test_train import BagOfTokens, make_loaders, make_spec

from tme_lib import config
from tme_lib.training import records
from tme_lib.training.records import RecordError, load_or_train, results_table


def spec(**kw):
    return make_spec(chapter="rec", **{**dict(epochs=2, entropy_sample=5), **kw})


def trained(s):
    return load_or_train(s, BagOfTokens, make_loaders(), device="cpu", progress=False)


def test_second_call_loads_the_record_and_weights(monkeypatch):
    first = trained(spec())

    def no_training(*args, **kwargs):
        raise AssertionError("load_or_train retrained a run whose record exists")

    monkeypatch.setattr(records, "train", no_training)
    again = load_or_train(spec(), BagOfTokens, make_loaders, device="cpu", progress=False)
    assert again.final == first.final
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_record_holds_the_whole_spec_and_the_hash_of_its_weights():
    s = spec(name="meta")
    rec = trained(s)
    path = records.find_record(s)
    saved = json.loads(path.read_text())
    assert saved["spec"] == s.to_dict() and saved["key"] == s.key()
    assert path.name == f"meta-{s.key()}.json"
    assert saved["weights_sha256"] == records.sha256sum(path.with_suffix(".pt"))
    for key in ("code_version", "device", "seconds", "history", "final", "torch_version"):
        assert key in saved
    assert rec.n_params == 8 * 4 + 4 + 1


def test_changed_spec_trains_anew_and_keeps_the_old_record(capsys):
    trained(spec(name="stale"))
    changed = spec(name="stale", lr=0.01)
    assert changed.key() != spec(name="stale").key()
    trained(changed)
    assert "changed" in capsys.readouterr().out
    assert len(list(records.write_dir("rec").glob("stale-*.json"))) == 2


def _broken(s, damage):
    trained(s)
    path = records.find_record(s)
    damage(path)
    return path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.with_suffix(".pt").unlink(), "has no weights file"),
        (lambda p: p.with_suffix(".pt").write_bytes(b"0" * 100), "SHA-256 differs"),
        (lambda p: p.write_text(p.read_text()[:200]), "cannot be read"),
        (
            lambda p: p.write_text(p.read_text().replace('"lr": 0.05', '"lr": 0.5')),
            "does not match its key",
        ),
    ],
)
def test_a_damaged_record_is_refused_with_a_message_that_names_it(damage, message):
    s = spec(name="damaged")
    path = _broken(s, damage)
    with pytest.raises(RecordError, match=message) as error:
        load_or_train(s, BagOfTokens, make_loaders(), device="cpu", progress=False)
    assert path.name in str(error.value) and "--retrain" in str(error.value)
    # the way out the message gives
    again = load_or_train(
        s, BagOfTokens, make_loaders(), device="cpu", progress=False, retrain=True
    )
    assert records.read_record(records.find_record(s), s).key == s.key()
    assert again.model is not None


def test_weights_listed_as_not_kept_leave_the_numbers_and_refuse_a_model(monkeypatch):
    kept, dropped = spec(name="kept"), spec(name="dropped", seed=1)
    trained(kept)
    first = trained(dropped)
    path = records.find_record(dropped)
    path.with_suffix(".pt").unlink()
    assert "missing" in records.record_problem(dropped)  # not listed: a missing file
    listing = path.parent / records.WEIGHTS_NOT_KEPT
    listing.write_text(f"# lost the choice\n{path.name}  # on validation\n")
    assert records.record_problem(dropped) is None
    assert records.record_problem(kept) is None
    monkeypatch.setattr(records, "train", lambda *a, **k: pytest.fail("retrained"))
    numbers = load_or_train(
        dropped, BagOfTokens, make_loaders, device="cpu", progress=False
    )
    assert numbers.model is None and numbers.final == first.final
    with pytest.raises(RecordError, match="not kept in the repository"):
        records.load_weights(numbers, path, BagOfTokens(), dropped)
    # a listed record whose weights are there but altered is still refused
    path.with_suffix(".pt").write_bytes(b"0" * 100)
    assert "altered" in records.record_problem(dropped)
    # a record not listed still needs its weights
    records.find_record(kept).with_suffix(".pt").unlink()
    with pytest.raises(RecordError, match="has no weights file"):
        load_or_train(kept, BagOfTokens, make_loaders, device="cpu", progress=False)


def test_weights_replaced_by_another_runs_are_refused():
    a, b = spec(name="a-run"), spec(name="b-run", seed=1)
    trained(a)
    trained(b)
    pa, pb = records.find_record(a), records.find_record(b)
    pa.with_suffix(".pt").write_bytes(pb.with_suffix(".pt").read_bytes())
    with pytest.raises(RecordError, match="SHA-256"):
        load_or_train(a, BagOfTokens, make_loaders(), device="cpu", progress=False)


def test_a_record_renamed_to_another_spec_is_refused():
    a, b = spec(name="same"), spec(name="same", lr=0.02)
    trained(a)
    pa = records.find_record(a)
    target = pa.with_name(records.record_file(b))
    pa.rename(target)
    pa.with_suffix(".pt").rename(target.with_suffix(".pt"))
    with pytest.raises(RecordError):
        load_or_train(b, BagOfTokens, make_loaders(), device="cpu", progress=False)


def test_where_records_go_in_each_profile_and_state_of_the_tree(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("TME_PROFILE", "smoke")
    assert tmp_path / "results" not in records.write_dir("rec", clean=True).parents
    monkeypatch.setenv("TME_PROFILE", "full")
    assert records.write_dir("rec", clean=True) == tmp_path / "results" / "runs" / "rec"
    scratch = records.write_dir("rec", clean=False)
    assert tmp_path / "results" not in scratch.parents and "scratch" in str(scratch)


def test_full_profile_run_with_uncommitted_changes_goes_to_scratch(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("TME_PROFILE", "full")
    monkeypatch.setattr(records, "code_version", lambda: ("a" * 40, False))
    rec = trained(spec(name="dirty"))
    assert "scratch folder" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
    assert rec.code_version.endswith("-dirty")
    monkeypatch.setattr(records, "code_version", lambda: ("b" * 40, True))
    assert records.find_record(spec(name="dirty")) is None  # never read at a clean commit
    rec = trained(spec(name="dirty"))
    assert rec.code_version == "b" * 40
    assert (
        records.find_record(spec(name="dirty")).parent
        == tmp_path / "results" / "runs" / "rec"
    )


def test_loaded_line_is_short_and_names_the_commit(capsys, monkeypatch):
    monkeypatch.setattr(records, "code_version", lambda: ("0123456789" + "a" * 30, True))
    trained(spec(name="line"))
    capsys.readouterr()
    trained(spec(name="line"))
    line = capsys.readouterr().out.strip()
    assert line.startswith("Loaded rec/line") and "code 0123456789)" in line
    assert "dirty" not in line and len(line) < 92


def test_results_table_has_one_row_per_run():
    recs = [trained(spec(name=f"tab-s{seed}", seed=seed)) for seed in (0, 1)]
    table = results_table(recs)
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


def test_records_loaded_together_are_announced_by_one_line(capsys, monkeypatch):
    monkeypatch.setattr(records, "code_version", lambda: ("0123456789" + "a" * 30, True))
    trained(spec(name="one"))
    trained(spec(name="two"))
    capsys.readouterr()
    with records.loaded_together():
        first, second = trained(spec(name="one")), trained(spec(name="two"))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Loaded 2 records")
    assert "code 0123456789)" in lines[0] and len(lines[0]) < 92
    assert (
        first.name == "one" and second.name == "two"
    )  # the records themselves are returned
    trained(spec(name="one"))  # outside the block: one line per record again
    assert capsys.readouterr().out.startswith("Loaded rec/one")


def test_profile_set_restores_the_previous_profile_or_its_absence(monkeypatch):
    import os

    monkeypatch.delenv("TME_PROFILE", raising=False)
    with config.profile_set("full"):
        assert config.profile() == "full"
    assert "TME_PROFILE" not in os.environ
    monkeypatch.setenv("TME_PROFILE", "smoke")
    with pytest.raises(RuntimeError), config.profile_set("full"):
        raise RuntimeError  # restored even when the block fails
    assert os.environ["TME_PROFILE"] == "smoke"
    with pytest.raises(ValueError, match="profile 'fast'"):
        with config.profile_set("fast"):
            pass
