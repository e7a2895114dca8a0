"""The seed design of the course (``tme_lib.training.spec.SEEDS``), checked against the plans
and the committed records: an arm has five seeds when its runs are cheap, three when they are
costly, and the recorded cost of its runs says which."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tme_lib.chapters import CHAPTERS, chapter
from tme_lib.training.records import existing_records
from tme_lib.training.spec import CHEAP_RUN_SECONDS, COSTLY_SEEDS, SEEDS, Spec

ROOT = Path(__file__).resolve().parent.parent


def seeded_arms() -> dict[tuple[str, str], list[Spec]]:
    """The runs of every full-profile plan grouped by arm (the run's name without its seed),
    for the arms that have more than one seed."""
    arms: dict[tuple[str, str], list[Spec]] = {}
    for name in CHAPTERS:
        for s in chapter(name).plan():
            if isinstance(s, Spec):
                arms.setdefault((s.chapter, re.sub(r"-s\d+", "", s.name)), []).append(s)
    return {arm: specs for arm, specs in arms.items() if len(specs) > 1}


def run_cost(record) -> float:
    """The recorded seconds of a run; a fusion (chapter "beyond") reuses a trained attention model
    and has that model's seeds, so its cost includes the model's run."""
    attention = record.spec["model"].get("attention")
    if isinstance(attention, dict):
        (component,) = existing_records([Spec.from_dict(attention)])
        return record.seconds + component.seconds
    return record.seconds


@pytest.fixture
def full(monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "full")


def drawn_only(specs: list[Spec]) -> bool:
    """Whether an arm's runs are points of a figure that no comparison uses (the pretraining
    chapter's learning curve): the design gives them three seeds whatever their cost."""
    module = chapter(specs[0].chapter)
    return all(getattr(module, "curve_point", lambda s: False)(s) for s in specs)


def test_every_seeded_arm_has_one_of_the_two_seed_sets(full):
    arms = seeded_arms()
    assert len(arms) >= 15  # TME 9's arms, TME 10's variants and the aptamer transformer
    for arm, specs in arms.items():
        assert {s.seed for s in specs} in (
            set(SEEDS["full"]),
            set(COSTLY_SEEDS["full"]),
        ), arm


def test_the_recorded_cost_of_each_arm_matches_its_seed_set(full):
    """A cheap compared arm with three seeds breaks the design. A costly arm has three seeds,
    or five where the design declared five before its runs (TME 9's LSTM): seeds are never cut
    once an arm's runs have started. The cost of an arm is its fastest recorded run: a run
    slowed by another one beside it costs more."""
    checked = 0
    for arm, specs in seeded_arms().items():
        seconds = [run_cost(r) for r in existing_records(specs)]
        if not seconds:
            continue
        five = {s.seed for s in specs} == set(SEEDS["full"])
        cheap = min(seconds) <= CHEAP_RUN_SECONDS  # the least disturbed measurement
        if cheap and not drawn_only(specs):
            assert five, (arm, min(seconds))
        checked += 1
    assert checked >= 10  # the committed records cover most arms


def test_the_lstm_keeps_the_five_seeds_it_was_declared_with(full):
    specs = seeded_arms()[("tme9", "attention_lstm-adam")]
    assert {s.seed for s in specs} == set(SEEDS["full"])


# The commit at which each chapter's comparisons were declared in code (`git log -S` finds it:
# COMPARISONS for TME 9, TME 10 and pretraining, comparison_table's rows for beyond).
DECLARED_AT = {
    "tme9": "2d9a8a7",
    "tme10": "2d9a8a7",
    "beyond": "fa07c34",
    "pretraining": "d1aed9c",
}


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the repository's history")
@pytest.mark.parametrize("name", list(DECLARED_AT))
def test_every_compared_record_was_made_after_its_comparisons_were_declared(full, name):
    """Every record of an arm with seeds (the arms the comparisons use) was made at a commit
    that descends from the one declaring the chapter's comparisons: no comparison was written
    after its results. Comparisons added later are listed apart as exploratory."""
    declared = DECLARED_AT[name]
    assert git("cat-file", "-e", f"{declared}^{{commit}}").returncode == 0, declared
    assert (
        "comparison"
        in git(
            "show", f"{declared}:{chapter(name).__file__[len(str(ROOT)) + 1 :]}"
        ).stdout
    )
    arms = {arm: specs for arm, specs in seeded_arms().items() if arm[0] == name}
    assert arms, name
    checked = 0
    for specs in arms.values():
        for record in existing_records(specs):
            commit = record.code_version.removesuffix("-dirty")
            after = git("merge-base", "--is-ancestor", declared, commit).returncode == 0
            assert after, f"{record.name} was made at {commit[:10]}, before {declared}"
            checked += 1
    assert checked >= 2
