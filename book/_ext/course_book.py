"""Sphinx extension of the course book: what the reader should not see in code cells.

The solution cells carry the markers the student-version generator needs (``# BEGIN
SOLUTION``, ``# END SOLUTION``, ``# HINT: ...``, see ``tme_lib/exercises.py``); the book shows
the solution without them.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform

HIDDEN = ("# BEGIN SOLUTION", "# END SOLUTION", "# HINT:")


def strip_markers(text: str) -> str:
    return "\n".join(
        line for line in text.split("\n") if not line.strip().startswith(HIDDEN)
    )


class StripSolutionMarkers(SphinxTransform):
    default_priority = 500

    def apply(self, **kwargs) -> None:
        for block in self.document.findall(nodes.literal_block):
            text = block.astext()
            if any(marker in text for marker in HIDDEN):
                block.children = [nodes.Text(strip_markers(text))]
                block.rawsource = strip_markers(block.rawsource)


def _author_year_style():
    """A pybtex style whose bibliography labels read like the citations of the text, author
    and year ("Maas et al. 2011"), instead of the alpha style's letter keys ("MDP+11")."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = [
                    " ".join(p.last_names).replace("{", "").replace("}", "")
                    for p in people
                ]
                if not names:
                    who = entry.fields.get("organization") or entry.fields.get(
                        "howpublished"
                    )
                    who = str(who or entry.key).split(",")[0]
                elif len(names) == 1:
                    who = names[0]
                elif len(names) == 2:
                    who = f"{names[0]} and {names[1]}"
                else:
                    who = f"{names[0]} et al."
                yield f"{who} {entry.fields.get('year', '')}".strip()

    class AuthorYear(UnsrtStyle):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.formatting", "author_year", AuthorYear)


STUDENT_DIR = "_generated/student"
# The branch the book's workflow publishes the built book to (.github/workflows/book.yml): the
# student notebooks are there, under student/, for Colab to open from GitHub.
PAGES_BRANCH = "gh-pages"
PUBLISHED_STUDENT_DIR = "student"


def write_student_notebooks(app) -> None:
    """The student version of every chapter (``tme_lib.exercises.student_notebook``: solutions
    stubbed, outputs cleared) into ``book/_generated/student/``, where each chapter's download
    link points: the book offers the notebook a student completes, not the solutions."""
    from pathlib import Path

    import jupytext
    import nbformat

    from tme_lib.exercises import student_notebook

    book = Path(app.srcdir)
    out = book / STUDENT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted((book / "notebooks").glob("[0-9]*.py")):
        nbformat.write(student_notebook(jupytext.read(src)), out / f"{src.stem}.ipynb")


def publish_student_notebooks(app, exception) -> None:
    """Copy the student notebooks to ``<html>/student/``: the published book holds them, and
    its launch button opens them in Colab from the book's branch."""
    import shutil
    from pathlib import Path

    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / PUBLISHED_STUDENT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((Path(app.srcdir) / STUDENT_DIR).glob("*.ipynb")):
        shutil.copy(path, out / path.name)


def student_launch_buttons(app, pagename, templatename, context, doctree) -> None:
    """The theme's Colab button opens the solved notebook of ``notebooks/``; make it open the
    student version (published with the book, :func:`publish_student_notebooks`) and keep a
    second button for the solved one."""
    import re

    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = []
        for button in group["buttons"]:
            if button.get("text") == "Colab":
                solved = button["url"]
                student = re.sub(
                    r"/blob/[^/]+/(?:.*/)?([^/]+)\.ipynb$",
                    rf"/blob/{PAGES_BRANCH}/{PUBLISHED_STUDENT_DIR}/\1.ipynb",
                    solved,
                )
                buttons.append(
                    {
                        **button,
                        "text": "Colab: your version",
                        "tooltip": "Open the student version (exercises to do) in Colab",
                        "url": student,
                    }
                )
                buttons.append(
                    {
                        **button,
                        "text": "Colab: solved",
                        "tooltip": "Open this chapter with its solutions in Colab",
                        "url": solved,
                    }
                )
            else:
                buttons.append(button)
        group["buttons"] = buttons


def figure_alt_text(app, doctree, docname) -> None:
    """Every image of a figure gets its caption as alt text (myst-nb writes the file's path),
    so that a screen reader says what the figure shows."""
    for figure in doctree.findall(nodes.figure):
        captions = [c.astext() for c in figure.findall(nodes.caption)]
        if not captions:
            continue
        for image in figure.findall(nodes.image):
            image["alt"] = " ".join(captions[0].split())


def single_inline_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated inline scripts: two extensions both declare sphinx-thebe's settings
    (``const THEBE_JS_URL``), and the second declaration is an error in the console."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body")
        if body:
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    context["script_files"] = kept
    # the book's theme leaves the light/dark mode empty, which the theme's script reports as
    # an error on every page: follow the reader's system setting
    context.setdefault("default_mode", "auto")
    if not context["default_mode"]:
        context["default_mode"] = "auto"


def setup(app):
    _author_year_style()
    app.connect("doctree-resolved", figure_alt_text)
    app.connect("html-page-context", single_inline_scripts, priority=900)
    app.add_transform(StripSolutionMarkers)
    app.connect("builder-inited", write_student_notebooks)
    app.connect("build-finished", publish_student_notebooks)
    # after the theme's own launch buttons (priority 501)
    app.connect("html-page-context", student_launch_buttons, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
