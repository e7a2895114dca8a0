"""Student notebooks read well in Jupyter and Colab: no MyST role or fenced directive left."""

from pathlib import Path

import jupytext
import pytest

from tme_lib.exercises import student_notebook
from tme_lib.plain_markdown import book_url, leftovers, plain, repository_url

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_student_notebook_keeps_myst_syntax(path):
    nb = student_notebook(jupytext.read(path))
    left = [x for c in nb.cells if c.cell_type == "markdown" for x in leftovers(c.source)]
    assert not left, left


def test_citations_become_author_and_year():
    assert plain("as {cite}`maas2011` showed") == "as (Maas et al. 2011) showed"
    assert plain("{cite:t}`bahdanau2015` proposed") == "Bahdanau et al. (2015) proposed"
    assert (
        plain("{cite}`maas2011,vaswani2017`") == "(Maas et al. 2011; Vaswani et al. 2017)"
    )


def test_pages_and_downloads_become_links_to_the_published_book():
    assert plain("{doc}`04_beyond_bag_of_words`") == (
        f"[04_beyond_bag_of_words]({book_url()}/notebooks/04_beyond_bag_of_words.html)"
    )
    link = plain("{download}`student version <../_generated/student/01_tme9.ipynb>`")
    assert link == f"[student version]({book_url()}/notebooks/01_tme9.html)"
    assert book_url() == "https://attention-hands-on.github.io/course"
    assert "see the [README](" + repository_url() in plain("see the README")


def test_a_directive_becomes_a_block_quote_with_its_title():
    text = "Before\n```{admonition} To remember\n:class: tip\n- one\n- two\n```\nAfter"
    assert plain(text) == "Before\n> **To remember**\n>\n> - one\n> - two\nAfter"
    assert plain("```{note}\nA remark.\n```") == "> **Note**\n>\n> A remark."


def test_leftovers_sees_what_jupyter_would_show_raw():
    assert leftovers("see {ref}`a-label` and\n```{warning}\nx\n```") == [
        "{ref}`a-label`",
        "```{warning}",
    ]
    assert leftovers("plain `code` and $x$") == []
