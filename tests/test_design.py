"""The seed design of the course (``tme_lib.training.spec.SEEDS``), checked against the plans
and the committed records: an arm has five seeds when its runs are cheap, three when they are
costly, and the recorded cost of its runs says which."""

from __future__ import annotations

import re

import pytest

from tme_lib.chapters import CHAPTERS, chapter
from tme_lib.training.records import existing_records
from tme_lib.training.spec import CHEAP_RUN_SECONDS, COSTLY_SEEDS, SEEDS, Spec


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


def test_every_seeded_arm_has_one_of_the_two_seed_sets(full):
    arms = seeded_arms()
    assert len(arms) >= 15  # TME 9's arms, TME 10's variants and the aptamer transformer
    for arm, specs in arms.items():
        assert {s.seed for s in specs} in (
            set(SEEDS["full"]),
            set(COSTLY_SEEDS["full"]),
        ), arm


def test_the_recorded_cost_of_each_arm_matches_its_seed_set(full):
    """A cheap arm with three seeds, or a costly one with five, breaks the design. The cost of
    an arm is its fastest recorded run: a run slowed by another one beside it costs more."""
    checked = 0
    for arm, specs in seeded_arms().items():
        seconds = [run_cost(r) for r in existing_records(specs)]
        if not seconds:
            continue
        costly = {s.seed for s in specs} == set(COSTLY_SEEDS["full"])
        cost = min(seconds)  # the least disturbed measurement of the arm's cost
        assert (cost > CHEAP_RUN_SECONDS) == costly, (arm, cost, costly)
        checked += 1
    assert checked >= 10  # the committed records cover most arms
