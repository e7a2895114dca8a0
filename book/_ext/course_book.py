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


def setup(app):
    app.add_transform(StripSolutionMarkers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
