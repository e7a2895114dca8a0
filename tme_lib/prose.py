"""Numbers in the chapters' prose, filled in from the records.

A result quoted in a sentence (an accuracy, an interval, a time, an entropy, a ratio) is never
typed: a code cell computes it from the records and names it,

    prose.put(lstm_test=f"{lstm.mean():.2f} %")

and the markdown quotes it by that name, inside a span that any Markdown viewer (Jupyter,
Colab, the book) shows as plain text:

    attention over LSTM states reaches <span data-value="lstm_test">89.51 %</span> ...

``python tools/execute_notebooks.py --profile full --inplace`` runs the notebook, collects what
its cells put (:envvar:`TME_PROSE_VALUES` names the file they go to) and rewrites every span
with it (:func:`fill`), in the notebook and in its paired ``.py`` source; the values are also
kept in the notebook's metadata, which ``tests/test_prose.py`` checks the spans against. A
number typed in prose outside a span fails that test unless it is a setting of the course (a
mask rate, a length cut), listed there.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

from . import config

SPAN = re.compile(
    r'<span data-value="(?P<name>[A-Za-z_][A-Za-z0-9_]*)">(?P<text>[^<]*)</span>'
)
METADATA = "tme_prose_values"  # the notebook metadata key holding the values
ENV = "TME_PROSE_VALUES"

VALUES: dict[str, str] = {}


def put(**values: str) -> None:
    """Name the texts that the markdown of this notebook quotes (``name=text``). Outside the
    book's execution tool this only keeps them in :data:`VALUES`."""
    for name, text in values.items():
        if not isinstance(text, str) or "<" in text or "\n" in text:
            raise ValueError(f"{name}: a quoted value is one line of text, got {text!r}")
        # a number never parts from its unit at the end of a line: "90.69 %", "4.7 ×"
        text = re.sub(r"(?<=\d) (?=[%×])", "\u00a0", text)
        values[name] = VALUES[name] = text
    target = os.environ.get(ENV)
    if target:
        path = Path(target)
        known = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**known, **values}, ensure_ascii=False, indent=1))


@contextmanager
def quoting():
    """The block of a notebook that puts the numbers its prose quotes. The smoke profile has
    too few runs for some of them (no second seed, no comparison): there the block stops at the
    first one missing, silently; in the full profile a missing number is an error."""
    try:
        yield
    except (KeyError, IndexError, ValueError, ZeroDivisionError):
        if config.profile() != "smoke":
            raise


def points(row) -> str:
    """A row of a comparison table as prose: "+0.48 points, 95 % interval [+0.11, +0.84]"."""
    return f"{row['difference']:+.2f} points, 95 % interval {row['95 % interval']}"


def span(values, digits: int = 1, unit: str = "") -> str:
    """The range of ``values`` as prose: "26 to 44 minutes" (one value: "26 minutes")."""
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    text = low if low == high else f"{low} to {high}"
    return f"{text} {unit}".strip()


def names(markdown: str) -> list[str]:
    """The names that ``markdown`` quotes, in order."""
    return [m["name"] for m in SPAN.finditer(markdown)]


def fill(markdown: str, values: dict[str, str]) -> str:
    """``markdown`` with every span's text replaced by its value; a span whose name has no
    value is an error that names it."""
    missing = [n for n in names(markdown) if n not in values]
    if missing:
        raise KeyError(
            f"the prose quotes {', '.join(sorted(set(missing)))}, which no cell puts: add "
            "prose.put(name=...) to the cell that computes it."
        )
    return SPAN.sub(
        lambda m: f'<span data-value="{m["name"]}">{values[m["name"]]}</span>', markdown
    )


def unfilled(markdown: str, values: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """The spans of ``markdown`` whose text differs from ``values``: (name, text, value)."""
    return [
        (m["name"], m["text"], values.get(m["name"]))
        for m in SPAN.finditer(markdown)
        if values.get(m["name"]) != m["text"]
    ]


def strip(markdown: str) -> str:
    """``markdown`` with its spans reduced to their text (for plain-text uses)."""
    return SPAN.sub(lambda m: m["text"], markdown)
