"""The experiment spec: it holds everything that determines a run, and its key hashes all of it."""

from __future__ import annotations

import inspect

import pytest

from tme_lib.chapters import CHAPTERS, chapter, tme10
from tme_lib.chapters.aptamers import runs as aptamer_runs
from tme_lib.data import vectors
from tme_lib.training import records
from tme_lib.training.bag_of_words import BagOfWords
from tme_lib.training.spec import (
    OPTIMIZERS,
    SCHEDULES,
    TASKS,
    VAL_ORDERS,
    Spec,
    Training,
    deep_merge,
    model_settings,
    schedule,
)

CHOICES = {"task": TASKS, "optimizer": OPTIMIZERS, "val_order": VAL_ORDERS}


def leaves(d, prefix=()):
    """Every (path, value) of a nested dict, lists and tuples counted as values."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from leaves(v, (*prefix, k))  # an empty section has no field to change
        else:
            yield (*prefix, k), v


def perturbed(path, value):
    """Another valid value for the field at ``path``."""
    if path[-1] in CHOICES:
        return next(c for c in CHOICES[path[-1]] if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if value is None:
        return 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, list):
        return [*value, value[-1] if value else 1]
    raise TypeError(f"no perturbation for {path}: {value!r}")


def with_change(spec: Spec, path, value) -> Spec:
    d = spec.to_dict()
    node = d
    for part in path[:-1]:
        node = node[part]
    if path[-2:] == (
        "schedule",
        "name",
    ):  # another schedule comes with its own parameters
        d["training"]["schedule"] = schedule(next(n for n in SCHEDULES if n != value))
    else:
        node[path[-1]] = perturbed(path, value)
    return Spec.from_dict(d)


SPECS = {
    "tme10 distance (text, one-cycle)": lambda: tme10.spec("self_attention_distance"),
    "aptamers planted (simulator)": aptamer_runs.planted_spec,
    "aptamers energy (ViennaRNA)": aptamer_runs.transformer_spec,
}


@pytest.mark.parametrize("name", SPECS)
def test_every_field_of_the_spec_changes_the_key(name):
    spec = SPECS[name]()
    paths = list(leaves(spec.to_dict()))
    assert len(paths) > 30  # the walk reached the nested sections
    for path, value in paths:
        changed = with_change(spec, path, value)
        assert changed.key() != spec.key(), f"changing {'.'.join(path)} kept the key"
    assert Spec.from_dict(spec.to_dict()) == spec


def test_spec_is_frozen_and_replace_refuses_unknown_paths():
    spec = tme10.spec("self_attention")
    with pytest.raises(AttributeError):
        spec.seed = 3
    assert (
        spec.replace({"training.lr": 0.5}).training.lr == 0.5 and spec.training.lr != 0.5
    )
    with pytest.raises(KeyError, match="training.learning_rate"):
        spec.replace({"training.learning_rate": 0.5})


def test_editing_a_variant_setting_never_loads_the_old_record(monkeypatch):
    old = tme10.spec("self_attention_distance")
    record = tme10.run(old, progress=False)
    assert records.find_record(old) is not None and record.model.distance_slope == 0.25
    monkeypatch.setitem(tme10.VARIANTS["self_attention_distance"], "distance_slope", 0.5)
    new = tme10.spec("self_attention_distance")
    assert new.key() != old.key() and records.find_record(new) is None
    assert tme10.run(new, progress=False).model.distance_slope == 0.5


def test_changing_the_word2vec_settings_changes_every_text_spec(monkeypatch):
    def with_vectors(c):  # the bag-of-words baselines read no vectors
        return [s.key() for s in chapter(c).plan() if s.inputs]

    before = {c: with_vectors(c) for c in ("data", "tme9", "tme10")}
    assert all(before.values())
    monkeypatch.setitem(vectors.WORD2VEC_DEFAULTS, "epochs", 6)
    for c, keys in before.items():
        after = with_vectors(c)
        assert not set(keys) & set(after), f"a {c} run kept its key with other vectors"


def test_changing_a_model_default_changes_the_spec(monkeypatch):
    before = tme10.spec("self_attention").key()
    signature = inspect.signature(tme10.SelfAttentionClassifier)
    params = [
        p.replace(default=0.3) if p.name == "dropout" else p
        for p in signature.parameters.values()
    ]
    monkeypatch.setattr(
        tme10.SelfAttentionClassifier,
        "__signature__",
        signature.replace(parameters=params),
        raising=False,
    )
    # dropout is set by the profile, so the key stays; a default nobody sets would change it:
    assert tme10.spec("self_attention").key() == before
    params = [p.replace(default="batch") if p.name == "norm" else p for p in params]
    monkeypatch.setattr(
        tme10.SelfAttentionClassifier,
        "__signature__",
        signature.replace(parameters=params),
        raising=False,
    )
    assert tme10.spec("self_attention").key() != before


@pytest.mark.parametrize("profile", ["smoke", "full"])
@pytest.mark.parametrize("name", CHAPTERS)
def test_model_section_names_every_constructor_argument(name, profile, monkeypatch):
    monkeypatch.setenv("TME_PROFILE", profile)
    module = chapter(name)
    from tme_lib.chapters.aptamers.baselines import BASELINES, fit_baseline

    for spec in module.plan():
        if (
            name == "aptamers" and spec.model_name in BASELINES
        ):  # a fit: the function's arguments
            wanted = set(inspect.signature(fit_baseline).parameters) - {
                "name",
                "train",
                "test",
            }
            assert set(spec.model_kwargs) == wanted, spec.label
            continue
        registry = {
            **module.MODELS,
            **{n: BagOfWords for n in getattr(module, "BAG_OF_WORDS", {})},
        }
        cls = registry[spec.model_name]
        wanted = set(inspect.signature(cls).parameters) - {"vectors"}
        wanted -= set(getattr(module, "FITTED", ()))
        assert set(spec.model_kwargs) == wanted, spec.label
        assert spec.data["profile"] == profile


@pytest.mark.parametrize("name", CHAPTERS)
def test_plans_have_distinct_names_and_keys(name):
    plan = chapter(name).plan()
    assert len({s.name for s in plan}) == len(plan) == len({s.key() for s in plan})


def test_model_settings_refuses_unknown_or_missing_arguments():
    class Model:
        def __init__(self, vectors, width, depth=2):
            pass

    assert model_settings("m", Model, width=3) == {"name": "m", "width": 3, "depth": 2}
    with pytest.raises(TypeError, match="height"):
        model_settings("m", Model, width=3, height=1)
    with pytest.raises(TypeError, match="width"):
        model_settings("m", Model)


def test_training_and_schedule_validate_their_values():
    with pytest.raises(ValueError, match="optimizer"):
        Training(optimizer="adagrad")
    with pytest.raises(ValueError, match="warmup"):
        schedule("onecycle", warmup=3)
    assert schedule("onecycle")["div_factor"] == 25.0


def test_deep_merge_recurses_and_copies():
    base = {"training": {"lr": 1, "schedule": {"name": "constant"}}, "data": {"n": 1}}
    out = deep_merge(base, {"training": {"lr": 2}})
    assert out == {
        "training": {"lr": 2, "schedule": {"name": "constant"}},
        "data": {"n": 1},
    }
    out["training"]["schedule"]["name"] = "x"
    assert base["training"]["schedule"]["name"] == "constant"
