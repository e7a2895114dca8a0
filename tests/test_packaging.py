"""The install paths agree: environment.yml installs what pyproject.toml declares."""

import re
import tomllib
from pathlib import Path

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


PIN = "torch==2.13.0"


def test_environment_yml_matches_pyproject():
    conda, project = _conda_pip_requirements(), _pyproject_requirements()
    assert conda.pop("torch") == PIN
    project.pop("torch")
    assert conda == project


def test_torch_is_pinned_exactly_in_every_install_path():
    """Any other torch request downloads a multi-GB build on the course machines: the Makefile
    and environment.yml pin it, and the README's command without make too. The package itself
    accepts a range (so that Colab keeps its own PyTorch), which must admit the pin."""
    assert f"TORCH_PIN := {PIN}" in (ROOT / "Makefile").read_text()
    assert '"$(TORCH_PIN)" -e ".[book,dev]"' in (ROOT / "Makefile").read_text()
    assert _conda_pip_requirements()["torch"] == PIN
    assert f'pip install "{PIN}" -e ".[book,dev]"' in (ROOT / "README.md").read_text()
    low = _pyproject_requirements()["torch"].removeprefix("torch>=")
    assert tuple(map(int, low.split("."))) <= (2, 13)


def test_jupyter_book_stays_below_2():
    # Jupyter Book 2 downloads its theme at build time and fails offline.
    assert "<2" in _pyproject_requirements()["jupyter-book"]


def test_environment_yml_installs_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


def test_the_licence_and_the_citation_ship(tmp_path):
    """LICENSE (MIT, as pyproject.toml declares) lands in the wheel; CITATION.cff names the
    same version and repository as pyproject.toml."""
    import subprocess
    import sys
    import zipfile

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    assert f"version: {project['version']}" in citation
    assert f'repository-code: "{project["urls"]["Repository"]}"' in citation
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tme_lib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names[-5:]
