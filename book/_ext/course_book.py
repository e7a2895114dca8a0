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


def setup(app):
    _author_year_style()
    app.add_transform(StripSolutionMarkers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
