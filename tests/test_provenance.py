"""What a record and a checkpoint are: a record is sealed whole, a checkpoint is resumed only by
the code that wrote it, ``--retrain`` never resumes. Each test builds its fault itself."""

import json

import pytest
import torch
from test_records import spec, trained
from test_train import BagOfTokens, Interrupt, InterruptingLoader, cfg, make_loaders

from tme_lib.training import provenance, records
from tme_lib.training.records import RecordError, load_or_train, seal_of
from tme_lib.training.trainer import checkpoint_path, train

CLEAN_A, CLEAN_B = ("a" * 40, True), ("b" * 40, True)
DIRTY_A = ("a" * 40, False)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["final"].__setitem__("val_acc", d["final"]["val_acc"] + 0.01),
        lambda d: d["history"][0].__setitem__("train_loss", 0.1),
        lambda d: d.__setitem__("seconds", d["seconds"] * 2),
        lambda d: d.__setitem__("code_version", "f" * 40),
        lambda d: d.__setitem__("device", "cuda (a faster one)"),
    ],
    ids=["val_acc", "history", "seconds", "code_version", "device"],
)
def test_an_edited_number_breaks_the_seal(change):
    s = spec(name="sealed")
    trained(s)
    path = records.find_record(s)
    records.read_record(path, s)  # intact: accepted
    _edit(path, change)
    with pytest.raises(RecordError, match="does not match its seal"):
        records.read_record(path, s)


def test_weights_swapped_with_their_hash_updated_break_the_seal():
    a, b = spec(name="swap-a"), spec(name="swap-b", seed=1)
    trained(a)
    trained(b)
    pa, pb = records.find_record(a), records.find_record(b)
    pa.with_suffix(".pt").write_bytes(pb.with_suffix(".pt").read_bytes())
    other = json.loads(pb.read_text())["weights_sha256"]
    _edit(pa, lambda d: d.__setitem__("weights_sha256", other))
    with pytest.raises(RecordError, match="seal"):
        load_or_train(a, BagOfTokens, make_loaders(), device="cpu", progress=False)


def test_a_resealed_record_is_accepted_so_the_seal_is_over_its_content():
    s = spec(name="resealed")
    trained(s)
    path = records.find_record(s)
    data = json.loads(path.read_text())
    data["seconds"] += 1
    data["seal"] = seal_of(data)
    path.write_text(json.dumps(data))
    assert records.read_record(path, s).seconds == data["seconds"]


def test_an_unsealed_record_of_the_older_format_is_refused():
    s = spec(name="unsealed")
    trained(s)
    path = records.find_record(s)
    _edit(path, lambda d: (d.pop("seal"), d.__setitem__("format", 2)))
    with pytest.raises(RecordError, match="format 2"):
        records.read_record(path, s)


def _interrupted(c, code):
    loaders = make_loaders()
    loaders.train = InterruptingLoader(loaders.train)
    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        train(c, BagOfTokens(), loaders, device="cpu", progress=False, code=code)
    assert checkpoint_path(c).exists()


def test_the_checkpoint_names_the_spec_and_the_code_that_wrote_it():
    c = cfg(name="stamped")
    _interrupted(c, DIRTY_A)
    stamp = torch.load(checkpoint_path(c), weights_only=False)["stamp"]
    assert stamp == {"key": c.key(), "commit": "a" * 40, "clean": False}


@pytest.mark.parametrize(
    "before, after, resumes",
    [
        (CLEAN_A, CLEAN_A, True),
        (DIRTY_A, CLEAN_A, False),  # uncommitted changes, then reverted: start again
        (CLEAN_A, CLEAN_B, False),  # another commit
        (CLEAN_A, DIRTY_A, False),
    ],
    ids=["same-code", "dirty-then-clean", "other-commit", "clean-then-dirty"],
)
def test_a_checkpoint_is_resumed_only_by_the_code_that_wrote_it(
    before, after, resumes, capsys
):
    c = cfg(name="provenance")
    _interrupted(c, before)
    capsys.readouterr()
    torch.manual_seed(0)
    out = train(
        c, BagOfTokens(), make_loaders(), device="cpu", progress=False, code=after
    )
    said = capsys.readouterr().out
    assert ("Resuming" in said) == resumes
    assert ("not by this code" in said) == (not resumes)
    assert [e["epoch"] for e in out["history"]] == [1, 2, 3, 4]
    if not resumes:
        assert checkpoint_path(c).with_suffix(".stale").exists()


def test_a_record_never_names_a_commit_that_did_not_make_every_epoch(monkeypatch, capsys):
    """The reliability case: interrupted with uncommitted changes, reverted, run again: the
    record (whose code is clean) comes from a run that started again."""
    s = spec(name="mixed", epochs=4)
    _interrupted(s, DIRTY_A)
    monkeypatch.setattr(records, "code_version", lambda: CLEAN_A)
    capsys.readouterr()
    rec = trained(s)
    assert "Resuming" not in capsys.readouterr().out
    assert rec.code_version == "a" * 40 and len(rec.history) == 4


def test_retrain_ignores_the_checkpoint(monkeypatch, capsys):
    s = spec(name="retrain-ckpt", epochs=4)
    monkeypatch.setattr(records, "code_version", lambda: CLEAN_A)
    _interrupted(s, CLEAN_A)
    capsys.readouterr()
    rec = load_or_train(
        s, BagOfTokens, make_loaders(), device="cpu", progress=False, retrain=True
    )
    said = capsys.readouterr().out
    assert "Resuming" not in said and "checkpoint was deleted" in said
    assert len(rec.history) == 4


def test_two_processes_never_share_a_temporary_checkpoint_name(tmp_path, monkeypatch):
    from tme_lib.training import trainer

    names = []
    real_save = torch.save
    monkeypatch.setattr(
        trainer.torch, "save", lambda obj, f: (names.append(str(f)), real_save(obj, f))
    )
    folder = tmp_path / "ckpt"
    folder.mkdir()
    trainer.save_checkpoint(folder / "x.pt", {"key": "k"}, {})
    monkeypatch.setattr(trainer.os, "getpid", lambda: 4242)
    trainer.save_checkpoint(folder / "x.pt", {"key": "k"}, {})
    assert names[0] != names[1] and "4242" in names[1]
    assert [p.name for p in folder.iterdir()] == ["x.pt"]


def test_describe_says_when_code_is_uncommitted():
    assert provenance.describe(CLEAN_A) == "a" * 10
    assert provenance.describe(DIRTY_A).endswith("with uncommitted changes")
