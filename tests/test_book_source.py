"""What the built book hides from readers (built pages are checked when they exist)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html" / "notebooks"
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from course_book import strip_markers  # noqa: E402


def test_solution_markers_are_stripped_and_the_code_kept():
    source = (
        "def f(x):\n    # BEGIN SOLUTION\n    # HINT: add one\n    return x + 1\n"
        "    # END SOLUTION"
    )
    assert strip_markers(source) == "def f(x):\n    return x + 1"


def test_notebook_sources_carry_no_test_comments():
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        assert "# NBVAL_" not in path.read_text(), f"{path.name}: use an nbval-* cell tag"


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (make book)")
def test_built_pages_hide_markers_and_name_the_solution_toggle():
    for page in sorted(HTML.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for hidden in ("NBVAL", "BEGIN SOLUTION", "END SOLUTION", "# HINT:"):
            assert hidden not in text, f"{page.name} shows {hidden!r}"
        if "hide-input" in text:
            assert "Show solution" in text and "Show code cell" not in text, page.name


def test_every_bibliography_entry_is_cited_where_it_is_used():
    import re

    keys = re.findall(
        r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M
    )
    sources = [*(ROOT / "notebooks").glob("[0-9]*.py"), *(ROOT / "book").glob("*.md")]
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in sources if p.name != "bibliography.md"
    )
    cited = {
        k.strip()
        for group in re.findall(r"\{cite[a-z:]*\}`([^`]+)`", text)
        for k in group.split(",")
    }
    assert sorted(set(keys) - cited) == []
    assert sorted(cited - set(keys)) == []


def test_no_markdown_line_starts_with_a_percent_sign():
    """In MyST a line that starts with ``%`` is a comment: the book drops it silently (a wrapped
    "... accuracy in\n% over the seeds" loses its second line)."""
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                hidden = [
                    line for line in cell.source.splitlines() if line.startswith("%")
                ]
                assert not hidden, f"{path.name}: a MyST comment hides {hidden[0]!r}"


def test_no_wrapped_line_of_markdown_starts_a_quote():
    """A wrapped sentence whose next line starts with ``> 0`` becomes a block quote."""
    import re

    import nbformat

    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                quoted = [
                    line
                    for line in cell.source.splitlines()
                    if re.match(r"> ?[-+=<>0-9]", line)
                ]
                assert not quoted, f"{path.name}: a block quote starts {quoted[0]!r}"
