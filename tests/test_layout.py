"""The library's architecture and the provenance of the committed records."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from tme_lib import config
from tme_lib.chapters import CHAPTERS, chapter
from tme_lib.training import records

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tme_lib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ``tme_lib`` modules ``path`` imports (relative imports resolved), at any depth."""
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tme_lib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    here[: len(here) - node.level + 1] + ([base] if base else [])
                )
            if base.startswith("tme_lib"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in out if m in modules} - {module_name(path)}


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def chapter_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "chapters" else None


def test_no_chapter_imports_another():
    for module, deps in GRAPH.items():
        mine = chapter_of(module)
        for dep in deps:
            theirs = chapter_of(dep)
            assert not (mine and theirs and theirs != mine), f"{module} imports {dep}"


def test_shared_layers_never_import_a_chapter():
    for module, deps in GRAPH.items():
        if module.split(".")[1:2] and module.split(".")[1] in (
            "data",
            "blocks",
            "training",
            "config",
        ):
            assert not any(d.startswith("tme_lib.chapters") for d in deps), module


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}

    def visit(module, stack):
        state[module] = 1
        for dep in GRAPH.get(module, ()):
            if state.get(dep) == 1 and dep != module:
                # a package's __init__ importing its own submodules is not a cycle of modules
                if not (dep.startswith(module + ".") or module.startswith(dep + ".")):
                    pytest.fail("import cycle: " + " -> ".join([*stack, module, dep]))
            if dep not in state:
                visit(dep, [*stack, module])
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module, [])


def test_every_chapter_declares_a_plan_and_a_runner():
    import importlib

    for name, path in CHAPTERS.items():
        module = importlib.import_module(path)
        assert module.CHAPTER == name and callable(module.plan) and callable(module.run)


def committed_records() -> list[Path]:
    return sorted((ROOT / "results" / "runs").rglob("*.json"))


def git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_committed_records_are_tied_to_an_ancestor_commit_and_check_out():
    if git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone lacks the history the records point to")
    tracked = set(git("ls-files", "results/runs").stdout.split())
    for path in committed_records():
        if str(path.relative_to(ROOT)) not in tracked:
            continue  # a run still being trained here, not committed
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("code_version", "")
        assert re.fullmatch(r"[0-9a-f]{40}", version), (
            f"{path.name}: code version {version!r}"
        )
        ancestor = git("merge-base", "--is-ancestor", version, "HEAD")
        assert ancestor.returncode == 0, (
            f"{path.name}: {version} is not an ancestor of HEAD"
        )
        record = records.read_record(path)  # spec, key and file name agree
        assert data["spec"]["data"]["profile"] == "full"
        weights = path.with_suffix(".pt")
        if record.weights_sha256 is None:  # a metrics-only fit (scikit-learn)
            assert not weights.exists(), path.name
        elif records.weights_not_kept(path) and not weights.exists():
            continue  # its numbers only, on purpose (see the folder's listing)
        else:
            assert records.sha256sum(weights) == record.weights_sha256, path.name


def test_the_pretraining_chapter_keeps_the_weights_it_loads_within_its_budget(
    monkeypatch,
):
    """The weights left out are exactly those that no notebook loads (the choice runs that lost
    their choice, the routes' pretraining), and the chapter's committed weights fit its
    budget."""
    from tme_lib.chapters import pretraining

    monkeypatch.setenv("TME_PROFILE", "full")
    folder = ROOT / "results" / "runs" / "pretraining"
    listed = records.listed_without_weights(folder)
    assert listed == {records.record_file(s) for s in pretraining.numbers_only_specs()}
    assert not any((folder / name).with_suffix(".pt").exists() for name in listed)
    size = sum(p.stat().st_size for p in folder.glob("*.pt"))
    assert size < pretraining.WEIGHTS_BUDGET_MB * 1e6, f"{size / 1e6:.1f} MB"


def test_the_aptamer_chapter_leaves_out_only_weights_it_never_reads(monkeypatch):
    from tme_lib.chapters.aptamers import runs

    monkeypatch.setenv("TME_PROFILE", "full")
    folder = ROOT / "results" / "runs" / "aptamers"
    listed = records.listed_without_weights(folder)
    assert listed == {records.record_file(s) for s in runs.numbers_only_specs()}
    read = {s.key() for s in [*runs.transformer_specs(), *runs.planted_specs()]}
    assert not read & {s.key() for s in runs.numbers_only_specs()}
    for spec in [*runs.transformer_specs(), *runs.planted_specs()]:
        assert records.find_record(spec).with_suffix(".pt").exists(), spec.name


def test_no_committed_file_is_a_record_of_the_old_format():
    for path in committed_records():
        data = json.loads(path.read_text(encoding="utf-8"))
        assert "config" not in data and data.get("format") == records.FORMAT, path.name


def test_results_tables_are_written_by_the_run_tool_only_from_a_clean_tree(
    monkeypatch, tmp_path
):
    from tme_lib import runs

    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("TME_PROFILE", "full")
    monkeypatch.setattr(records, "code_version", lambda: ("c" * 40, False))
    assert tmp_path / "results" not in runs.table_dir().parents
    monkeypatch.setattr(records, "code_version", lambda: ("c" * 40, True))
    assert runs.table_dir() == tmp_path / "results"


def test_every_row_of_a_results_table_is_a_committed_record():
    """A results table is never stale: each row of ``results/<chapter>*.csv`` names a committed
    record of that chapter and repeats its test metric."""
    import pandas as pd

    results = ROOT / "results"
    checked = 0
    for table in sorted(results.glob("*.csv")):
        chapter = next(
            (
                c
                for c in ("tme9", "tme10", "aptamers", "data")
                if table.stem.startswith(c)
            ),
            None,
        )
        if chapter is None:  # notebook_times.csv
            continue
        finals = {
            r["spec"]["name"]: r["final"]
            for r in (
                json.loads(p.read_text())
                for p in (results / "runs" / chapter).glob("*.json")
            )
        }
        frame = pd.read_csv(table)
        column = "name" if "name" in frame else "model"
        for _, row in frame.iterrows():
            name = row[column]
            assert name in finals, f"{table.name}: {name} has no committed record"
            metric = "test_acc" if "test_acc" in row else "test_mse"
            assert row[metric] == pytest.approx(finals[name][metric], abs=1e-4), (
                f"{table.name}: {name} says {metric} {row[metric]}, its record "
                f"{finals[name][metric]}"
            )
            checked += 1
    assert checked >= 60


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_every_results_table_is_what_its_records_give_row_by_row_and_column_by_column(
    name, monkeypatch
):
    """Each ``results/*.csv`` that a chapter writes is, byte for byte, the table its
    ``write_tables`` builds from the committed records of its plan (read and checked, seals
    included): an edited value, a deleted row or a stale table fails. The results page is built
    from these tables."""
    monkeypatch.setenv("TME_PROFILE", "full")
    module = chapter(name)
    if not hasattr(module, "write_tables"):
        pytest.skip(f"{name} writes no results table")
    frames = module.write_tables(records.existing_records(module.plan()))
    for file, frame in frames.items():
        path = ROOT / "results" / file
        assert path.exists(), f"results/{file} is missing"
        expected = frame.to_csv(index=False, float_format="%.5g")
        assert path.read_text(encoding="utf-8") == expected, (
            f"results/{file} differs from the table its records give: regenerate it with "
            f"python -m tme_lib.runs {name}"
        )
