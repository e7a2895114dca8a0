"""The install paths agree: environment.yml installs what pyproject.toml declares."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_torch_is_pinned_exactly():
    # Any other torch request downloads a multi-GB build on the course machines.
    assert _pyproject_requirements()["torch"] == "torch==2.13.0"


def test_jupyter_book_stays_below_2():
    # Jupyter Book 2 downloads its theme at build time and fails offline.
    assert "<2" in _pyproject_requirements()["jupyter-book"]


def test_environment_yml_installs_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
