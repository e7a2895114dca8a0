"""The run tool: plans listed, filtered, skipped when recorded, run by every executor."""

from __future__ import annotations

import pytest

from tme_lib import runs
from tme_lib.chapters import data_and_training, tme10
from tme_lib.training import records


def test_dry_run_lists_the_plan_and_trains_nothing(capsys):
    assert runs.main(["tme10", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for spec in tme10.plan():
        assert spec.name in out and spec.key() in out
    assert "to train" in out
    assert not any(records.find_record(s) for s in tme10.plan())


def test_only_selects_by_name_and_a_recorded_run_is_skipped(capsys, monkeypatch):
    runs.main(["tme10", "--only", "self_attention_pe-*", "self_attention-adamw-s0"])
    out = capsys.readouterr().out
    assert "5 runs in the plan, 2 selected, 2 to train" in out
    done = {s.name for s in tme10.plan() if records.find_record(s)}
    assert done == {"self_attention-adamw-s0", "self_attention_pe-adamw-s0"}
    runs.main(["tme10", "--only", "self_attention-adamw-s0"])
    out = capsys.readouterr().out
    assert "1 selected, 0 to train" in out
    assert "not written: 3 of the 5 runs" in out  # never a table from part of a plan
    assert not (runs.table_dir() / "tme10.csv").exists()
    # a plan whose runs are all recorded
    two = [s for s in tme10.plan() if s.name in done]
    monkeypatch.setattr(tme10, "plan", lambda: two)
    monkeypatch.setattr(tme10, "table_plan", lambda: two)
    runs.main(["tme10"])
    table = (runs.table_dir() / "tme10.csv").read_text()
    assert all(name in table for name in done)


def test_two_jobs_side_by_side_give_the_results_of_one(capsys):
    runs.main(["data"])
    spec = data_and_training.spec()
    alone = records.read_record(records.find_record(spec), spec).final
    runs.main(["data", "--jobs", "2", "--retrain"])
    assert records.read_record(records.find_record(spec), spec).final == alone


@pytest.mark.parametrize("executor", ["local", "debug"])
def test_submitit_executors_run_the_plan(executor, capsys):
    pytest.importorskip("submitit")
    runs.main(["data", "--executor", executor])
    assert "1 to train" in capsys.readouterr().out
    spec = data_and_training.spec()
    assert records.read_record(records.find_record(spec), spec).final["test_acc"] > 0.9


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        runs.main(["tme11"])
    with pytest.raises(SystemExit):
        runs.main(["data", "--jobs", "0"])
